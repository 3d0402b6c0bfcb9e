"""`raptor distill`: meta-imitation of many teachers into the 2084-parameter student (spec 5.2).

Per epoch, every teacher's airframe flies `episodes_per_teacher` episodes, all airframes in one batch: the teacher
flies during the first `bc_epochs` (behaviour cloning), the student afterwards (DAgger, on-policy). At every
visited state each teacher labels, from its teacher observation, its own airframe's states with its deterministic
action; the student learns them from the student observation of the same state. The dataset is rebuilt every
epoch in preallocated tensors (T x episodes); the student trains on whole episodes (BPTT over <= 500 steps from
the learned h0, padded steps masked), batch 64, Adam, MSE. The best student is selected on held-out airframes
that no teacher trained on (hover scenario success, then return), never on the training airframes.

What differs from the reference, and why (spec 7):
- Hover episodes by default; `targets` adds setpoint steps, figure-eights and Langevin targets, cycled per epoch.
  The student sees p - p_des and v - v_des (EnvConfig.student_target_relative), so a moving target is observable to
  it; the reference's student saw absolute p and v, which made Langevin labels noise to it (surprise 8).
- Starts cover any yaw: `any_yaw_fraction` of episodes get a uniform yaw on top of the reference tilt, because the
  published policy fails beyond ~110 deg of initial yaw (teachers need the same starts: raptor train --any-yaw).
- Starts within +-0.5 m for every airframe (the reference's post-training init, surprise 7).
- The steady-state offset correction is kept: each teacher's mean hover position (steps 250-499 of its own
  episodes) is subtracted from the student's position input in the dataset.
- Learning rate 1e-3 (reference 1e-4 for 1000 epochs): CPU-scale runs have ~100 epochs.
- A training-only auxiliary loss (`disturbance_aux_weight`): a linear head on the GRU output predicts the
  episode's disturbance force, which the teachers see and the student must infer from its history. The head is
  dropped at export (the student keeps 2084 parameters); it makes the hidden state carry that estimate sooner.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from raptor.distill.collect import Dataset, collect
from raptor.errors import ConfigError
from raptor.fileio import atomic_write_text, check_writable_folder, load_checked, read_json, save_checked
from raptor.metrics import summarize
from raptor.options import Flag, resume_changes
from raptor.policy import Policy
from raptor.policy import load as load_policy
from raptor.policy.feedforward import SetpointLead
from raptor.policy.heading import HeadingGovernor
from raptor.policy.io import default_metadata, save_policy
from raptor.policy.network import RaptorPolicyNet
from raptor.rl.run import deferred_interrupts
from raptor.rl.teachers import TeacherSet
from raptor.sim import mdp
from raptor.sim.airframe import Airframe
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.scenarios import rollout, scenario_config

DISTILL_TARGETS = ("hover", "step", "figure_eight", "langevin", "thrown")


@dataclass(frozen=True)
class DistillConfig:
    epochs: int = 100
    bc_epochs: int = 10
    episodes_per_teacher: int = 10
    episode_steps: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-3
    # Cosine decay of the learning rate over all epochs down to learning_rate * final_lr_fraction (1: constant).
    final_lr_fraction: float = 1.0
    # Passes over each epoch's dataset (the reference: 1). The rollouts cost ~2x one pass on CPU, so a few passes
    # buy more gradient steps per second; the data stays on-policy (rebuilt every epoch).
    passes: int = 1
    any_yaw_fraction: float = 0.5
    offset_correction: bool = True
    # Weight of an auxiliary loss during training only: a linear head on the GRU output predicts the episode's
    # disturbance force (in units of 0.1 g). The deployed student is unchanged (2084 parameters); the head makes
    # its hidden state carry the estimate the teachers' labels depend on. 0 disables it (the reference's loss).
    disturbance_aux_weight: float = 0.05
    # Start from this policy file's weights instead of a fresh network (fine-tune a student on these teachers).
    init_from: str | None = None
    holdout: str = "sampled:32:4242"  # selection airframes, disjoint from the teachers' (another sampler seed)
    holdout_episodes: int = 10
    eval_every: int = 5
    only_passed: bool = True  # distill only teachers that pass the quality bar
    max_teacher_termination: float = 1.0  # with only_passed=False: skip teachers that crash more often than this
    teacher_ids: str | None = None  # which teachers of the run ("0-63", "0-9,12"; None: all), e.g. for scaling studies
    # These teachers (of teacher_ids) are listed twice: their airframes fly twice the episodes of the others, e.g. the
    # reference sampler's class weighted up against the race class without leaving the race class out.
    teacher_repeat: str | None = None
    # The target the episodes fly to, cycled per epoch: hover (the origin), step (one 0.5 m setpoint jump at 1-3 s),
    # figure_eight, langevin, thrown (the origin from raptor eval's thrown starts: any attitude, 3 m/s, 10 rad/s,
    # ended only by its 3 m crash box). The student sees p - p_des and v - v_des; teachers label from their
    # target-relative observation, so moving targets need no other change.
    targets: tuple[str, ...] = ("hover",)
    # Label moving targets with the teachers' view of the target's acceleration as a push (-m a_des in the force
    # channel of the privileged observation): memoryless teachers track a figure-eight without their ~0.3 m lag
    # (docs/distillation.md). No effect on hover targets.
    target_feedforward: bool = True
    # The deployment-side setpoint lead (raptor.policy.feedforward) the student learns with: its position input is
    # led by the target's acceleration, p_err - clip(a_des / k, lead_max_m), in the collected data and whenever it
    # flies (DAgger, held-out selection); the student's file carries the same lead, so every runtime applies it.
    # 0: no lead (a student that must infer the target's motion from its history).
    lead_gain_s2: float = 0.0
    lead_max_m: float = 0.3
    device: str = "cpu"
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.bc_epochs < 0 or self.episodes_per_teacher <= 0 or self.batch_size <= 0:
            raise ConfigError("distill: epochs, episodes_per_teacher and batch_size must be positive")
        if not 0 <= self.any_yaw_fraction <= 1:
            raise ConfigError("distill: any_yaw_fraction must be in [0, 1]")
        if self.passes <= 0 or not 0 < self.final_lr_fraction <= 1:
            raise ConfigError("distill: passes must be positive and final_lr_fraction in (0, 1]")
        if not (self.lead_gain_s2 >= 0 and self.lead_max_m > 0):
            raise ConfigError(f"--lead must be >= 0 (1/s^2; 0: none) and --lead-max > 0 (m), got {self.lead_gain_s2}, "
                              f"{self.lead_max_m}")
        if not self.disturbance_aux_weight >= 0:
            raise ConfigError(f"--disturbance-aux must be >= 0, got {self.disturbance_aux_weight}")
        object.__setattr__(self, "targets", tuple(self.targets))  # JSON gives a list
        bad = [t for t in self.targets if t not in DISTILL_TARGETS]
        if not self.targets or bad:
            raise ConfigError(f"--targets: choose from {', '.join(DISTILL_TARGETS)} (got {', '.join(bad) or 'none'})")

    def lr_at(self, epoch: int) -> float:
        """Cosine from learning_rate at epoch 0 to learning_rate * final_lr_fraction at the last epoch."""
        frac = epoch / max(self.epochs - 1, 1)
        f = self.final_lr_fraction
        return self.learning_rate * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    @property
    def lead(self) -> SetpointLead | None:
        return SetpointLead(self.lead_gain_s2, self.lead_max_m) if self.lead_gain_s2 > 0 else None


# ----------------------------------------------------------------------------------------------------------------
# Student sequences


def student_sequence(net: RaptorPolicyNet, obs: torch.Tensor, hidden: bool = False):
    """obs (T, B, 22) from the learned h0 -> raw actions (T, B, 4), with PyTorch's fused GRU (same gate layout);
    hidden=True: (actions, GRU outputs (T, B, 16))."""
    x = torch.relu(net.input_layer(obs))
    h0 = net.gru.h0.expand(1, obs.shape[1], -1).contiguous()
    g = net.gru
    out, _ = torch._VF.gru(x, h0, [g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh], True, 1, 0.0, net.training,
                           False, False)
    return (net.output_layer(out), out) if hidden else net.output_layer(out)


AUX_SCALE = 10.0  # disturbance targets in 0.1 g (RMS over sampled airframes ~0.06 g, up to ~0.5 g)


def train_epoch(net: RaptorPolicyNet, opt: torch.optim.Optimizer, data: Dataset, batch_size: int,
                gen: torch.Generator, aux: torch.nn.Linear | None = None, aux_weight: float = 0.0) -> float:
    """One pass over the episodes in batches of `batch_size`; returns the mean imitation loss (MSE). With `aux`,
    adds aux_weight * MSE of the head's disturbance prediction from the GRU output (training only)."""
    E = data.student_obs.shape[1]
    perm = torch.randperm(E, generator=gen).to(data.student_obs.device)
    bs = min(batch_size, E)
    losses = []  # tensors: one device sync per epoch, not per batch
    for i in range(0, E - bs + 1, bs):  # the partial final batch is dropped (as the reference)
        idx = perm[i:i + bs]
        m = data.mask[:, idx].to(data.labels.dtype)
        pred, h = student_sequence(net, data.student_obs[:, idx].float(), hidden=True)
        err = ((pred - data.labels[:, idx].float()) ** 2).mean(-1)
        loss = (err * m).sum() / m.sum().clamp(min=1)
        total = loss
        if aux is not None and aux_weight > 0:
            target = (AUX_SCALE * data.disturbance[idx].float())[None]  # (1, bs, 3)
            aerr = ((aux(h) - target) ** 2).mean(-1)
            total = loss + aux_weight * (aerr * m).sum() / m.sum().clamp(min=1)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(loss.detach())
    return float(torch.stack(losses).mean()) if losses else 0.0


def holdout_metrics(net: RaptorPolicyNet, airframes: list[Airframe], episodes: int, device: str,
                    lead: SetpointLead | None = None) -> dict:
    policy = Policy(net, {"name": "student"}, device=device).with_lead(lead)
    out = {}
    for scenario in ("hover", "recovery"):
        s = summarize(rollout(policy, airframes, scenario, episodes, seed=99, device=device,
                              trajectories=False))["overall"]
        out[scenario] = {k: s[k] for k in ("success_rate", "termination_rate", "mean_return",
                                           "final_position_error_mean")}
    net.train()
    return out


def selection_score(m: dict) -> float:
    return m["hover"]["success_rate"] + 0.25 * m["recovery"]["success_rate"] + 1e-5 * m["hover"]["mean_return"]


# ----------------------------------------------------------------------------------------------------------------


def read_stored(out: Path) -> tuple[DistillConfig, dict]:
    """The config a distillation was started with (resumes keep it) and its config.json (teachers, teachers_dir)."""
    stored = read_json(out / "config.json", "distillation config", "start again in a new --out")
    d = dict(stored["config"])
    d.setdefault("disturbance_aux_weight", 0.0)  # runs started before the auxiliary loss existed
    d.setdefault("target_feedforward", False)  # ... and before the feedforward labels
    d.setdefault("lead_gain_s2", 0.0)  # ... and before the setpoint lead
    return DistillConfig(**d), stored


def stored_config(out: Path) -> DistillConfig:
    """The config a distillation was started with (resumes keep it)."""
    return read_stored(out)[0]


def read_log(out: Path) -> list[dict]:
    """The epochs of the distillation in `out` so far (empty before its first)."""
    log_file = out / "log.json"
    return read_json(log_file, "distillation log", "rerun with --resume") if log_file.is_file() else []


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} CPU-h" if seconds >= 360 else f"{seconds / 60:.0f} CPU-min"


def progress_text(log: list[dict], epochs: int) -> str:
    """'N/M epochs' of a distillation's log (read_log), and for one under way the CPU time left at its recent pace
    (the median epoch of its last 50 on the machine that ran them; BC epochs and resumes, where wall_s restarts,
    aside)."""
    steps = [b["wall_s"] - a["wall_s"] for a, b in zip(log, log[1:])
             if b["wall_s"] > a["wall_s"] and b.get("phase") == a.get("phase")][-50:]
    text = f"{len(log)}/{epochs} epochs"
    if steps and len(log) < epochs:
        per = sorted(steps)[len(steps) // 2]
        text += f"; about {hours((epochs - len(log)) * per)} left ({per:.0f} s per epoch lately)"
    return text


def status_lines(out: Path) -> list[str]:
    """`raptor distill --status`: where a distillation stands, its best held-out student and how to go on."""
    if not (out / "config.json").is_file():
        raise ConfigError(f"'{out}' holds no distillation (no config.json); give the --out of a raptor distill run")
    cfg, stored = read_stored(out)
    log = read_log(out)
    lines = [f"{out}: {len(stored['teachers'])} teachers of {stored['teachers_dir']}, targets "
             f"{','.join(cfg.targets)}, {cfg.bc_epochs} behaviour-cloning epochs then DAgger",
             f"progress: {progress_text(log, cfg.epochs)}"]
    held = [e for e in log if "holdout" in e]
    if held:
        best = max(held, key=lambda e: selection_score(e["holdout"]))
        h, r = best["holdout"]["hover"], best["holdout"]["recovery"]
        where = ("student.safetensors" if len(log) >= cfg.epochs else
                 "in the checkpoint; written to student.safetensors at the end")
        last = held[-1]["holdout"]["hover"]
        lines.append(f"held-out {cfg.holdout}: best hover {100 * h['success_rate']:.1f} % (recovery "
                     f"{100 * r['success_rate']:.1f} %) at epoch {best['epoch']} ({where}); latest hover "
                     f"{100 * last['success_rate']:.1f} % at epoch {held[-1]['epoch']}")
    if len(log) < cfg.epochs:
        lines.append(f"continue with: raptor distill --teachers {stored['teachers_dir']} --out {out} --resume")
    else:
        lines.append("finished: student.safetensors (best held-out), last.safetensors (the last epoch)")
    return lines


RESUME_FIELDS = ("epochs", "device", "threads")  # where and how long a resumed distillation runs; the rest is recipe


def resume_overrides(stored: DistillConfig, given: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """The flags given with --resume that apply to the stored recipe ({field: value}, and one line each), or a
    ConfigError in one line for the first that would change the recipe (never dropped without a word)."""
    options = {fl.field: fl.option for fl in DISTILL_FLAGS}
    changes, lines = resume_changes(stored, given, DISTILL_FLAGS, RESUME_FIELDS, "distillation",
                                    f"a resume takes {', '.join(options[f] for f in RESUME_FIELDS)}")
    return {k: v for k, (_, v) in changes.items()}, lines


def target_config(env_cfg: EnvConfig, mode: str) -> EnvConfig:
    """The episodes of one distillation target: a setpoint mode, or 'thrown': the origin from the starts of raptor
    eval's thrown scenario (raptor.sim.scenarios), ended only by its crash box, as it is judged."""
    if mode != "thrown":
        return dataclasses.replace(env_cfg, target=mode)
    thrown = scenario_config("thrown")
    return dataclasses.replace(env_cfg, target="hover", crash_box_m=thrown.crash_box_m, init=thrown.init)


def distill(teachers_dir: str, out: str, cfg: DistillConfig = DistillConfig(), resume: bool = False,
            progress: bool = True, epochs: int | None = None, device: str | None = None) -> dict:
    """Run (or resume) a distillation; returns the final log entry. Writes OUT/student.safetensors (best on the
    held-out airframes), OUT/last.safetensors, OUT/log.json, OUT/config.json and OUT/checkpoint.pt. A resume keeps
    the stored recipe; `device` (where it runs, e.g. a committed CPU run continued on a GPU) applies to it."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    outp = Path(out)
    ckpt = outp / "checkpoint.pt"
    if outp.exists() and (outp / "config.json").exists() and not resume:
        raise ConfigError(f"'{out}' already holds a distillation; continue it with --resume or choose another --out")
    fresh_resume = False  # --resume of a run stopped before its first checkpoint: start it again, same config
    if resume and not ckpt.is_file() and not ckpt.with_name(ckpt.name + ".prev").is_file():
        if not (outp / "config.json").is_file():
            raise ConfigError(f"nothing to resume in '{out}' (no checkpoint.pt); start it without --resume")
        fresh_resume = True
    check_writable_folder(outp)
    stored_ids = None
    if resume:
        cfg, stored = read_stored(outp)
        stored_ids = stored["teachers"]
    if epochs is not None:  # a resumed run can be extended
        cfg = dataclasses.replace(cfg, epochs=epochs)
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    warm = None  # the warm start, read before anything is written (a resume takes the checkpoint's weights)
    if cfg.init_from is not None and not resume:
        warm = load_policy(cfg.init_from).net
    teachers = TeacherSet(teachers_dir, cfg.only_passed, cfg.max_teacher_termination, cfg.teacher_ids,
                          repeat=cfg.teacher_repeat).to(cfg.device)
    if resume and not fresh_resume:
        if list(teachers.ids) != list(stored_ids):
            raise ConfigError(f"'{teachers_dir}' now gives {teachers.K} teachers, not the {len(stored_ids)} this "
                              f"distillation started on (its per-teacher data would not line up); resume with the "
                              f"teachers it started on, or distill the new set into another --out")
    holdout = resolve_airframes(cfg.holdout)
    train_keys = {a.dynamics_key for a in teachers.airframes} | {a.name for a in teachers.airframes}
    if any(a.dynamics_key in train_keys or a.name in train_keys for a in holdout):
        raise ConfigError("the held-out airframes overlap the teachers' airframes; choose another --holdout seed")
    atomic_write_text(outp / "config.json", json.dumps({"config": dataclasses.asdict(cfg), "teachers": teachers.ids,
                                                        "teachers_dir": str(teachers_dir)}, indent=1))
    init = mdp.InitialStateConfig(max_position_m=0.5, any_yaw_fraction=cfg.any_yaw_fraction)
    env_cfg = EnvConfig(observation="student", target="hover", init=init, device=cfg.device, check_inputs=False,
                        episode_steps=cfg.episode_steps)
    env = BatchedQuadrotorEnv(teachers.airframes, cfg.episodes_per_teacher, env_cfg, seed=cfg.seed)
    envs = {"hover": env}  # one env per target mode (the offsets are measured on hover)
    for mode in cfg.targets:
        if mode not in envs:
            envs[mode] = BatchedQuadrotorEnv(teachers.airframes, cfg.episodes_per_teacher,
                                             target_config(env_cfg, mode), seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    net = RaptorPolicyNet().to(cfg.device)
    if warm is not None:
        net.load_state_dict(warm.state_dict())
    aux = torch.nn.Linear(net.gru.h0.shape[0], 3).to(cfg.device)  # training only, never exported
    params = list(net.parameters()) + (list(aux.parameters()) if cfg.disturbance_aux_weight > 0 else [])
    opt = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-7)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    state = {"epoch": 0, "log": [], "best": None, "best_score": -math.inf, "offsets": None}
    if resume and not fresh_resume:
        st = load_checked(ckpt, map_location=cfg.device, what="distillation checkpoint",
                          fix=f"start again in a new --out (or delete {outp} and rerun without --resume)")
        net.load_state_dict(st["net"])
        if "aux" in st:
            aux.load_state_dict(st["aux"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        state = st["state"]
    offsets = state["offsets"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, initial=state["epoch"], unit="epoch", desc=f"distill {teachers.K} teachers")
    t_start = time.perf_counter()
    with deferred_interrupts() as stop:  # Ctrl-C or SIGTERM: the epoch under way finishes and is kept
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"]
            bc = epoch < cfg.bc_epochs
            if offsets is None and cfg.offset_correction:  # the teachers' steady-state hover offsets, once
                probe = collect(env, teachers, None, cfg.episode_steps, None, seed=cfg.seed + 10**6)
                alive = ~probe.terminated
                w = alive.to(probe.final_position.dtype).reshape(teachers.K, -1)
                pos = probe.final_position.mean(0).reshape(teachers.K, -1, 3)
                offsets = (pos * w[..., None]).sum(1) / w.sum(1).clamp(min=1)[:, None]
                state["offsets"] = offsets
            data = collect(envs[cfg.targets[epoch % len(cfg.targets)]], teachers, None if bc else net,
                           cfg.episode_steps, offsets, seed=cfg.seed + epoch, feedforward=cfg.target_feedforward,
                           lead=cfg.lead)
            net.train()
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(epoch)
            loss = sum(train_epoch(net, opt, data, cfg.batch_size, gen, aux, cfg.disturbance_aux_weight)
                       for _ in range(cfg.passes)) / cfg.passes
            entry = {"epoch": epoch, "phase": "bc" if bc else "dagger", "loss": loss,
                     "rollout_return": float(data.returns.mean()),
                     "rollout_terminated": float(data.terminated.float().mean()),
                     "rollout_failed": float(data.failed().float().mean()),
                     "wall_s": round(time.perf_counter() - t_start, 1)}
            if not bc and ((epoch - cfg.bc_epochs) % cfg.eval_every == 0 or epoch == cfg.epochs - 1):
                m = holdout_metrics(net, holdout, cfg.holdout_episodes, cfg.device, cfg.lead)
                entry["holdout"] = m
                score = selection_score(m)
                if score > state["best_score"]:
                    state["best_score"] = score
                    state["best"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    state["best_epoch"] = epoch
            state["log"].append(entry)
            state["epoch"] = epoch + 1
            save_checked({"net": net.state_dict(), "aux": aux.state_dict(), "opt": opt.state_dict(),
                               "gen": gen.get_state(), "state": state}, ckpt)
            atomic_write_text(outp / "log.json", json.dumps(state["log"], indent=1))
            if bar is not None:
                bar.update(1)
                h = entry.get("holdout", {}).get("hover")
                bar.set_postfix(loss=f"{loss:.4f}", ret=f"{entry['rollout_return']:.0f}",
                                **({"holdout": f"{100 * h['success_rate']:.0f}%"} if h else {}))
            if stop:
                if bar is not None:
                    bar.close()
                print(f"raptor distill: interrupted after epoch {state['epoch']} of {cfg.epochs}; checkpoint written "
                      f"({ckpt}); continue with --resume", file=sys.stderr, flush=True)
                raise KeyboardInterrupt
    if bar is not None:
        bar.close()
    tw = [a.thrust_to_weight for a in teachers.airframes]
    meta = default_metadata("raptor distill", {"distill": dataclasses.asdict(cfg)}, teachers=len(set(teachers.ids)),
                            teachers_dir=str(teachers_dir), best_epoch=state.get("best_epoch"),
                            # the teachers' thrust-to-weight range: raptor eval's envelope notes (policy.io)
                            training_envelope={"thrust_to_weight": [round(min(tw), 2), round(max(tw), 2)]},
                            # flown in the reference-heading frame (raptor.policy.heading), as the shipped default
                            deployment={"heading": HeadingGovernor().to_metadata(),
                                        **({"lead": cfg.lead.to_metadata()} if cfg.lead else {})},
                            **({"init_from": cfg.init_from} if cfg.init_from else {}))
    save_policy(outp / "last.safetensors", net, {**meta, "name": "last"})
    if state["best"] is not None:
        best = RaptorPolicyNet()
        best.load_state_dict(state["best"])
        save_policy(outp / "student.safetensors", best, {**meta, "name": "student"})
    else:
        save_policy(outp / "student.safetensors", net, {**meta, "name": "student"})
    return state["log"][-1] if state["log"] else {}


# ----------------------------------------------------------------------------------------------------------------
# CLI


# The options of `raptor distill` that set DistillConfig fields: type and default from the dataclass (raptor.options).
DISTILL_FLAGS = (
    Flag("epochs", help="epochs in all; the first --bc-epochs are behaviour cloning"),
    Flag("bc_epochs", help="of --epochs, the first N are behaviour cloning on teacher rollouts; DAgger after"),
    Flag("episodes_per_teacher", help="episodes per teacher per epoch"),
    Flag("learning_rate", "--lr", help="Adam learning rate"),
    Flag("batch_size", help="episodes per gradient step (on a GPU with ~1000 teachers, larger batches keep an epoch "
                            "to seconds)"),
    Flag("final_lr_fraction", "--final-lr", metavar="FRACTION",
         help="cosine-decay the learning rate to this fraction of --lr by the last epoch"),
    Flag("passes", help="training passes over each epoch's data"),
    Flag("eval_every", help="DAgger epochs between held-out evaluations"),
    Flag("any_yaw_fraction", "--any-yaw", metavar="FRACTION", help="fraction of episodes with any initial yaw"),
    Flag("targets", metavar="LIST", help="targets the episodes fly to, cycled per epoch: hover,step,figure_eight,"
                                         "langevin,thrown (the origin from thrown starts)"),
    Flag("holdout", help="selection airframes (disjoint from the teachers')"),
    Flag("target_feedforward", help="label moving targets without the teachers' target acceleration in their force "
                                    "channel (the teachers then lag a figure-eight by ~0.3 m)"),
    Flag("lead_gain_s2", "--lead", metavar="K",
         help="learn with the setpoint lead p_err - a_des / K (1/s^2; 0: none), the lead the student's file then "
              "carries (raptor.policy.feedforward)"),
    Flag("lead_max_m", "--lead-max", metavar="M", help="the largest lead per axis (m)"),
    Flag("disturbance_aux_weight", "--disturbance-aux", metavar="WEIGHT",
         help="weight of the training-only loss that predicts the episode's disturbance from the GRU state (0: the "
              "reference's loss)"),
    Flag("init_from", metavar="POLICY",
         help="start from this policy's weights (a policy file or 'default') instead of a fresh network; the "
              "disturbance loss is then off unless --disturbance-aux is given (its fresh head would disturb the "
              "trained student)"),
    Flag("teacher_ids", "--ids", help="which teachers of the run, e.g. 0-63 or 0-9,12 (default: all)"),
    Flag("teacher_repeat", "--repeat-ids", metavar="IDS",
         help="these teachers fly twice the episodes of the others (weights a class up), e.g. 200-455"),
    Flag("max_teacher_termination", help="with --include-failed: skip teachers whose hover termination rate is "
                                         "above this"),
    Flag("device", help="cpu | cuda"),
    Flag("seed", help="seed of the student's initialization and episodes"),
    Flag("threads", help="torch CPU threads (0: torch's default)"),
)
