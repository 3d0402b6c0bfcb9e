"""`raptor train`: one RL teacher per airframe, in an output directory that survives kills and resumes.

Layout of OUT:
    run.json                      the run: airframe spec, ids, backend, algorithm, configs, retrain attempts
                                  (and the ids added by --resume --ids)
    airframes.json                the run's airframes (ids in their metadata)
    teachers/NNNN/                one finished teacher: teacher.safetensors (deterministic actor),
                                  airframe.json, curve.json (learning curve), eval.json (written last: the
                                  marker that the teacher is finished)
    checkpoints/*.pt              trainer state of unfinished shards (written atomically; removed when done)
    tensorboard/                  scalars, with --tensorboard

Teachers are trained in shards of `--teachers-per-shard` airframes (the batched backend trains a shard in one
process; the ray backend runs shards on workers; sb3 trains one airframe per shard). A finished teacher is never
trained or written again; `--resume` continues every unfinished shard from its last checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from raptor.errors import ConfigError, RaptorError
from raptor.fileio import (
    atomic_write_text,
    check_writable_folder,
    load_checked,
    read_checked,
    read_json,
    save_checked,
)
from raptor.rl.ppo import BatchedPPO, PPOConfig, TeacherActors
from raptor.rl.teacher import (
    QualityBar,
    calibrate_gain,
    calibrate_offsets,
    evaluate_teachers,
    merge_candidates,
    reference_termination,
    save_teacher,
    teacher_score,
    trimmed_copy,
)
from raptor.sim import mdp
from raptor.sim.airframe import Airframe, default_trajectory, load_airframes, resolve_airframes, save_airframes
from raptor.sim.env import EnvConfig
from raptor.validate import check_device, check_fits, check_seed

RUN_FORMAT = "raptor-teachers"
RUN_VERSION = 1
BACKENDS = ("batched", "sb3", "ray")
ALGOS = ("ppo", "sac")


@dataclass(frozen=True)
class TrainConfig:
    """How teachers are trained. `steps` counts env steps per teacher."""

    backend: str = "batched"
    algo: str = "ppo"
    steps: int = 5_000_000
    device: str = "cpu"
    seed: int = 0
    teachers_per_shard: int = 16
    eval_every_steps: int = 500_000  # selection evaluations (hover, `eval_episodes`), keep the best snapshot
    eval_episodes: int = 100
    checkpoint_every_s: float = 60.0
    init_min_position_m: float = 0.5  # teachers also start within +-0.5 m: the hover scenario and distillation
    # ... and no farther (None: the airframe's own range, up to ~2 m on large frames, the reference's). Teachers are
    # judged and distilled from +-0.5 m starts; trained from 2 m they learn to fly fast toward the target and cross
    # the 2 m/s termination speed from the judged starts (on 4.3-4.8 kg benchmark frames: 2-3 % crashes and a slow
    # altitude drift, both gone with the cap).
    init_max_position_m: float | None = 0.5
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    # Trim each teacher's steady-state hover offset into its first-layer bias before every evaluation
    # (raptor.rl.teacher.calibrate_offsets): the selection and the final teacher see the trimmed actor.
    calibrate: bool = True
    calibration_episodes: int = 16
    # Before the final evaluation, each teacher's feedback around its hover command is scaled by the gain of this
    # list that scores best on `gain_episodes` hover episodes of its own (raptor.rl.teacher.calibrate_gain); (1.0,)
    # keeps the trained actor as it is.
    feedback_gains: tuple[float, ...] = (1.0, 1.1, 1.2, 1.3, 1.4)
    gain_episodes: int = 500
    any_yaw_fraction: float = 0.0  # fraction of training starts with any yaw (the reference: tilt <= 1 rad only)
    # Fraction of training episodes whose target moves (the reference's Langevin target process, raptor.sim.mdp); None
    # keeps each airframe's own trajectory mixture (the sampled airframes: the reference's [0.5, 0.5]; the named
    # airframes' files: hover only).
    langevin_fraction: float | None = None
    # Multiplies the linear and angular velocity ranges of the training starts (the evaluation keeps the spec's):
    # > 1 trains the recovery from faster starts than the teacher is judged on, where slow-motor airframes crash.
    start_velocity_scale: float = 1.0
    # What the teachers see: "privileged" (the teacher observation plus the episode's disturbance force, 29) or
    # "teacher" (the reference's 26). See raptor.sim.mdp.observe_privileged.
    observation: str = "privileged"
    # Training episodes end (truncated, bootstrapped from the critic) after this many steps: shorter than the
    # evaluation's 500 puts more of the data on the recovery from the start states, where teachers crash.
    train_episode_steps: int = 200
    # Training seconds per shard (None: no limit): at the limit the shard stops, takes a last selection evaluation
    # and finalizes its teachers with their best snapshots (eval.json records the steps actually trained).
    time_limit_s: float | None = None
    # Independent seeds trained per teacher in the shard (batched and ray backends): each airframe gets this many
    # networks, and the one ranked best by the selection evaluations (never the final evaluation's starts) is
    # finalized. PPO teachers of one airframe differ by seed: eight raptor061 seeds at 4M steps scored 0.72-0.87
    # (success - termination) in the same selection evaluation. The pick is ranked on few episodes, so its judged
    # result is typically lower (raptor061's first-ranked: 0.87 in selection, 0.81 judged).
    candidates: int = 1
    # With candidates > 1: instead of keeping the first-ranked candidate, train one actor per teacher to imitate the
    # mean action of all its candidates, each trimmed and gain-calibrated first (raptor.rl.teacher.merge_candidates,
    # DAgger: merge_rounds rounds of merge_envs hover episodes). Seeds crash on different starts; their mean on fewer.
    merge_candidates: bool = False
    merge_rounds: int = 12
    merge_envs: int = 1024
    ppo: PPOConfig = field(default_factory=PPOConfig)
    bar: QualityBar = field(default_factory=QualityBar)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}")
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm '{self.algo}'; choose one of {', '.join(ALGOS)}")
        if self.backend in ("batched", "ray") and self.algo != "ppo":
            raise ConfigError(f"the {self.backend} backend trains PPO teachers (--algo ppo); "
                              "SAC is available as the stable-baselines3 reference (--backend sb3 --algo sac)")
        if self.observation not in ("privileged", "teacher"):
            raise ConfigError(f"unknown teacher observation '{self.observation}'; choose privileged or teacher")
        if self.steps <= 0 or self.teachers_per_shard <= 0 or self.eval_episodes <= 0 or self.candidates <= 0:
            raise ConfigError("--steps, --teachers-per-shard, --eval-episodes and --candidates must be positive")
        if self.merge_candidates and self.candidates < 2:
            raise ConfigError("--merge-candidates needs --candidates 2 or more")
        if self.merge_rounds <= 0 or self.merge_envs <= 0:
            raise ConfigError("merge_rounds and merge_envs must be positive")
        if self.candidates > 1 and self.backend == "sb3":
            raise ConfigError("--candidates needs the batched or ray backend (sb3 trains one network per run)")
        if not self.feedback_gains or not all(g > 0 for g in self.feedback_gains) or self.gain_episodes <= 0:
            raise ConfigError(f"--feedback-gains must be positive numbers, e.g. 1,1.2,1.4 (got {self.feedback_gains})")
        if not self.init_min_position_m > 0:
            raise ConfigError(f"--start-position must be positive, got {self.init_min_position_m}")
        if self.init_max_position_m is not None and not self.init_max_position_m >= self.init_min_position_m:
            raise ConfigError(f"init_max_position_m ({self.init_max_position_m}) must be >= init_min_position_m "
                              f"({self.init_min_position_m}) or None")
        if not self.start_velocity_scale > 0:
            raise ConfigError(f"--start-scale must be positive, got {self.start_velocity_scale}")
        if self.langevin_fraction is not None and not 0.0 <= self.langevin_fraction <= 1.0:
            raise ConfigError(f"--langevin must be a fraction in [0, 1], got {self.langevin_fraction}")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ConfigError(f"--time-limit must be a positive number of seconds, got {self.time_limit_s}")
        check_seed(self.seed)

    def check_machine(self) -> None:
        """What depends on this machine: the device exists, and one shard's envs fit in its memory (checked
        before a run folder is made)."""
        check_device(self.device)
        envs = self.ppo.envs_per_teacher * self.teachers_per_shard * self.candidates
        check_fits(envs * ENV_BYTES_ESTIMATE, self.device, f"a shard of {envs:,} envs ({self.teachers_per_shard} "
                   f"teachers x {self.candidates} candidates x {self.ppo.envs_per_teacher:,} envs)",
                   "use fewer --envs or --teachers-per-shard")

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("ppo", "bar")}
        d["ppo"] = self.ppo.to_json()
        d["bar"] = dataclasses.asdict(self.bar)
        d["feedback_gains"] = list(self.feedback_gains)
        return d

    @staticmethod
    def from_json(d: dict) -> TrainConfig:
        d = dict(d)
        d["ppo"] = PPOConfig.from_json(d["ppo"])
        d["bar"] = QualityBar(**d["bar"])
        d.setdefault("observation", "teacher")  # runs written before the privileged observation existed
        d.setdefault("train_episode_steps", 500)  # ... and before training episodes were shortened
        d.setdefault("init_max_position_m", None)  # ... and before training starts were capped at +-0.5 m
        d["feedback_gains"] = tuple(d.get("feedback_gains", (1.0,)))  # ... and before the gain calibration
        return TrainConfig(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}})


# Memory of one PPO env, measured to within a factor of ~2: the rollout buffer (horizon 32 x observation, action,
# log-prob, value, reward, flags) and the simulator state, float32 on the CPU (about 7 KB).
ENV_BYTES_ESTIMATE = 8 * 1024


def parse_ids(text: str | None, n: int) -> list[int]:
    """'0-9,12,20-21' -> [0, ..., 9, 12, 20, 21]; None -> all n."""
    if text is None:
        return list(range(n))
    ids: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ConfigError(f"bad --ids '{text}': the range {part} is empty (write {b}-{a})")
                ids.extend(range(a, b + 1))
            else:
                ids.append(int(part))
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"bad --ids '{text}': use e.g. 0-999 or 0-9,12") from None
    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ConfigError(f"--ids {bad[:5]} out of range: the airframe spec has {n} airframes (ids 0-{n - 1})")
    return sorted(set(ids))


def training_env_config(cfg: TrainConfig) -> EnvConfig:
    """The env teachers train in: the airframe's own targets (hover and Langevin), short episodes, and starts
    widened by any_yaw_fraction and start_velocity_scale (the final evaluation keeps the spec's)."""
    init = mdp.InitialStateConfig(any_yaw_fraction=cfg.any_yaw_fraction, linear_velocity_scale=cfg.start_velocity_scale,
                                  angular_velocity_scale=cfg.start_velocity_scale)
    return EnvConfig(observation=cfg.observation, target="airframe", device=cfg.device, check_inputs=False,
                     episode_steps=cfg.train_episode_steps, init=init)


def teacher_airframe(a: Airframe, cfg: TrainConfig) -> Airframe:
    """The airframe a teacher trains on: its own parameters, with starts covering at least +-init_min_position_m and
    at most +-init_max_position_m (None: no cap)."""
    p = json.loads(json.dumps(a.parameters))
    init = p["mdp"]["init"]
    init["max_position"] = max(float(init["max_position"]), cfg.init_min_position_m)
    if cfg.init_max_position_m is not None:
        init["max_position"] = min(init["max_position"], cfg.init_max_position_m)
    if cfg.langevin_fraction is not None:
        trajectory = p.setdefault("trajectory", default_trajectory())
        trajectory["mixture"] = [1.0 - cfg.langevin_fraction, cfg.langevin_fraction]
    return Airframe(a.name, p, dict(a.meta))


# ----------------------------------------------------------------------------------------------------------------
# The run directory


class RunDir:
    def __init__(self, out: str | os.PathLike) -> None:
        self.root = Path(out)

    run_file = property(lambda self: self.root / "run.json")
    airframes_file = property(lambda self: self.root / "airframes.json")
    checkpoints = property(lambda self: self.root / "checkpoints")

    def teacher_dir(self, i: int) -> Path:
        return self.root / "teachers" / f"{i:04d}"

    def finished(self, i: int) -> bool:
        return (self.teacher_dir(i) / "eval.json").is_file()

    def read_run(self) -> dict:
        if not self.run_file.is_file():
            raise ConfigError(f"'{self.root}' is not a raptor train directory (no run.json); "
                              "start one with raptor train --airframes SPEC --out DIR")
        try:
            run = json.loads(self.run_file.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"'{self.run_file}' is corrupt ({err}); it is written atomically, so restore it "
                              "from a backup or start a new --out") from None
        if run.get("format") != RUN_FORMAT:
            raise ConfigError(f"'{self.run_file}' is not a raptor train run (format {run.get('format')!r})")
        return run

    def write_run(self, run: dict) -> None:
        atomic_write_text(self.run_file, json.dumps(run, indent=1))

    def airframes(self) -> list[Airframe]:
        return load_airframes(self.airframes_file)

    lock_file = property(lambda self: self.root / "training.lock")

    @contextlib.contextmanager
    def lock(self):
        """Mark the run as being trained by this process (pid, host) while the block runs; --status reads it."""
        atomic_write_text(self.lock_file, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                      "started": time.time()}))
        try:
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)

    def trainer_alive(self) -> bool | None:
        """True: a live process on this host trains the run; False: the one that did is gone; None: no lock."""
        try:
            lock = json.loads(self.lock_file.read_text())
            pid, host = int(lock["pid"]), str(lock["host"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if host != socket.gethostname():
            return True  # another machine's process (ray, a shared disk): assume it lives
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@contextlib.contextmanager
def deferred_interrupts():
    """SIGINT and SIGTERM set a flag (the yielded list turns true) instead of stopping a training iteration half
    way; the loop checks it between iterations. A second Ctrl-C stops at once."""
    hit: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        if hit:
            raise KeyboardInterrupt
        hit.append(signum)

    if threading.current_thread() is not threading.main_thread():
        yield hit
        return
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield hit
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def attempt_ids(run: dict) -> list[int]:
    """The ids the run's current attempt trains: all of them first, then those of the last retrain or addition."""
    attempts = run.get("retrain_attempts", [])
    return attempts[-1]["ids"] if attempts else run["ids"]


def shard_plan(run: dict, cfg: TrainConfig) -> list[tuple[str, list[int], int]]:
    """(key, ids, seed) of every shard of the current attempt; keys are stable across resumes."""
    attempt = len(run.get("retrain_attempts", []))
    ids = attempt_ids(run)
    per = 1 if cfg.backend == "sb3" else cfg.teachers_per_shard
    plan = []
    for j in range(0, len(ids), per):
        chunk = ids[j:j + per]
        key = f"a{attempt}-" + hashlib.sha1(json.dumps(chunk).encode()).hexdigest()[:10]
        plan.append((key, chunk, cfg.seed + 1000 * attempt + j))
    return plan


# ----------------------------------------------------------------------------------------------------------------
# The batched trainer of one shard


def train_shard_batched(rd: RunDir, cfg: TrainConfig, key: str, ids: list[int], seed: int, airframes: list[Airframe],
                        progress: bool = True, tensorboard: bool = False,
                        on_checkpoint: Callable[[], None] | None = None) -> list[dict]:
    """Train (or continue) the teachers `ids` together; write each finished teacher; return their evals."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ckpt_path = rd.checkpoints / f"{key}.pt"
    state = None
    if ckpt_path.is_file() or ckpt_path.with_name(ckpt_path.name + ".prev").is_file():
        state = load_checked(ckpt_path, map_location=cfg.device, what="training checkpoint",
                             fix=f"delete {ckpt_path} (and its .prev) to restart these teachers from scratch")
        if state.get("ids") != ids or state.get("candidates", 1) != cfg.candidates:
            raise ConfigError(f"checkpoint '{ckpt_path}' belongs to teachers {state.get('ids')} with "
                              f"{state.get('candidates', 1)} candidates each, not {ids} with {cfg.candidates}; "
                              "delete it to restart this shard")
    todo = [i for i in ids if not rd.finished(i)]
    if not todo:
        return []
    C = cfg.candidates
    slots = [i for i in ids for _ in range(C)]  # network k trains airframe slots[k] (candidate k % C)
    afs = [teacher_airframe(airframes[i], cfg) for i in slots]
    ppo = BatchedPPO(afs, cfg.ppo, training_env_config(cfg), seed=seed)
    K = len(slots)
    best = {"score": [-math.inf] * K, "actor": [ppo.actor.teacher_state(k) for k in range(K)],
            "steps": [0] * K}
    curves: list[list[dict]] = [[] for _ in slots]
    elapsed = 0.0
    if state is not None:
        ppo.load_state_dict(state["ppo"])
        best, curves, elapsed = state["best"], state["curves"], float(state["elapsed_s"])
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(rd.root / "tensorboard" / key))
    per_iter = cfg.ppo.steps_per_iteration
    total_iters = math.ceil(cfg.steps / per_iter)
    eval_every = max(1, round(cfg.eval_every_steps / per_iter))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_iters, initial=ppo.iteration, unit="it", leave=False,
                   desc=f"teachers {ids[0]}-{ids[-1]}" if K > 1 else f"teacher {ids[0]}")

    def tag(k: int) -> str:
        return f"{slots[k]:04d}" + (f"c{k % C}" if C > 1 else "")

    def save_checkpoint() -> None:
        save_checked({"ids": ids, "candidates": C, "ppo": ppo.state_dict(), "best": best, "curves": curves,
                            "elapsed_s": elapsed, "config": cfg.to_json()}, ckpt_path)
        if on_checkpoint:
            on_checkpoint()

    def selection_eval() -> None:
        actors = ppo.deterministic_actors()
        if cfg.calibrate:  # the trained actor keeps learning untrimmed; the snapshot is trimmed
            actors = trimmed_copy(actors, afs, cfg.calibration_episodes, seed=seed + 11, device=cfg.device)
        mlp = actors.mlp
        m = evaluate_teachers(actors, afs, cfg.eval_episodes, seed=seed + 7, device=cfg.device)
        for k in range(K):
            score = teacher_score(m[k])
            curves[k].append({"steps": ppo.env_steps, "wall_s": round(elapsed, 2),
                              **{n: m[k][n] for n in ("success_rate", "termination_rate", "mean_return",
                                                      "mean_action_change", "final_position_error_mean")}})
            if score > best["score"][k]:
                best["score"][k], best["steps"][k] = score, ppo.env_steps
                best["actor"][k] = mlp.teacher_state(k)
            if writer:
                for n in ("success_rate", "termination_rate", "mean_return", "mean_action_change"):
                    writer.add_scalar(f"{tag(k)}/eval/{n}", m[k][n], ppo.env_steps)
        line = (f"teachers {ids[0]}-{ids[-1]}: {ppo.env_steps:,} steps each, {elapsed:.0f} s; selection eval: "
                f"success {100 * sum(x['success_rate'] for x in m) / K:.1f} %, terminated "
                f"{100 * sum(x['termination_rate'] for x in m) / K:.1f} % (means over {K} "
                + (f"networks, {C} per teacher)" if C > 1 else "teachers)"))
        if bar is not None:
            bar.write(line)
        else:
            print(line, flush=True)

    def out_of_time() -> bool:
        return cfg.time_limit_s is not None and elapsed >= cfg.time_limit_s

    last_ckpt = time.monotonic()
    with deferred_interrupts() as stop:
        while ppo.iteration < total_iters and not out_of_time():
            if stop:  # Ctrl-C or SIGTERM between two iterations: nothing since the last checkpoint is lost
                save_checkpoint()
                print(f"raptor train: interrupted; checkpoint written ({ckpt_path}); continue with "
                      f"raptor train --out {rd.root} --resume", file=sys.stderr, flush=True)
                raise KeyboardInterrupt
            t0 = time.perf_counter()
            stats = ppo.iterate()
            if ppo.device.type == "cuda":
                torch.cuda.synchronize()
            elapsed += time.perf_counter() - t0
            if writer:
                for k in range(K):
                    writer.add_scalar(f"{tag(k)}/train/episode_return", float(stats.episode_return[k]), ppo.env_steps)
                    writer.add_scalar(f"{tag(k)}/train/std", float(stats.std[k]), ppo.env_steps)
            # an interval boundary just before the end is left to the final evaluation (one line, not two)
            boundary = ppo.iteration % eval_every == 0 and total_iters - ppo.iteration >= max(1, eval_every // 2)
            if boundary or ppo.iteration == total_iters or out_of_time():
                selection_eval()
            if bar is not None:
                bar.update(1)
                ret = stats.episode_return[torch.isfinite(stats.episode_return)]
                bar.set_postfix(ret=f"{float(ret.mean()) if len(ret) else float('nan'):.0f}",
                                std=f"{float(stats.std.mean()):.3f}")
            if time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
                save_checkpoint()
                last_ckpt = time.monotonic()
    if bar is not None:
        bar.close()
    save_checkpoint()  # the trained state is safe before the (slower) final evaluation
    if C > 1:  # the final evaluation sees each teacher's first-ranked candidate, or all of them merged into one
        everyone = best["actor"]
        best, curves = best_candidates(best, curves, C)
        if cfg.merge_candidates:
            best["actor"] = merged_actors(cfg, ids, airframes, everyone, best["actor"], seed)
            for c in best["candidates"]:
                c["merged"] = True
    results = finalize_teachers(rd, cfg, ids, airframes, best, curves, elapsed, ppo.env_steps)
    if writer:
        writer.close()
    ckpt_path.unlink(missing_ok=True)
    ckpt_path.with_name(ckpt_path.name + ".prev").unlink(missing_ok=True)
    return results


def merged_actors(cfg: TrainConfig, ids: list[int], airframes: list[Airframe], everyone: list[dict],
                  picked: list[dict], seed: int) -> list[dict]:
    """Each teacher's candidates (C consecutive snapshots of `everyone`), trimmed and gain-calibrated, merged into
    one actor that starts from the first-ranked (`picked`): raptor.rl.teacher.merge_candidates."""
    from raptor.rl.batched import BatchedMLP
    from raptor.rl.ppo import ACT_DIM

    sizes = (int(everyone[0]["layer0.weight"].shape[1]), *cfg.ppo.actor_hidden, ACT_DIM)
    cands = BatchedMLP(len(everyone), sizes).to(cfg.device)
    for k, st in enumerate(everyone):
        cands.load_teacher_state(k, st)
    afs = [teacher_airframe(airframes[i], cfg) for i in ids]
    slots = [a for a in afs for _ in range(cfg.candidates)]
    if cfg.calibrate:
        calibrate_offsets(cands, slots, cfg.calibration_episodes, seed=seed + 13, device=cfg.device, iterations=1)
    calibrate_gain(cands, slots, cfg.feedback_gains, cfg.gain_episodes, seed=seed + 17, device=cfg.device)
    init = BatchedMLP(len(ids), sizes).to(cfg.device)
    for k, st in enumerate(picked):
        init.load_teacher_state(k, st)
    merge_candidates(cands, init, afs, cfg.merge_rounds, cfg.merge_envs, cfg.train_episode_steps, seed=seed + 19,
                     device=cfg.device)
    return [init.teacher_state(k) for k in range(len(ids))]


def best_candidates(best: dict, curves: list[list[dict]], C: int) -> tuple[dict, list[list[dict]]]:
    """Of every C consecutive networks (one teacher's candidates), the one with the highest selection score: its
    snapshot, steps and curve, and which it was with every candidate's score (for eval.json)."""
    groups = [range(j, j + C) for j in range(0, len(best["score"]), C)]
    pick = [max(g, key=lambda k: best["score"][k]) for g in groups]
    return ({"score": [best["score"][k] for k in pick], "actor": [best["actor"][k] for k in pick],
             "steps": [best["steps"][k] for k in pick],
             "candidates": [{"chosen": k - g.start, "selection_scores": [round(best["score"][i], 5) for i in g]}
                            for g, k in zip(groups, pick)]},
            [curves[k] for k in pick])


def finalize_teachers(rd: RunDir, cfg: TrainConfig, ids: list[int], airframes: list[Airframe],
                      best: dict, curves: list[list[dict]], elapsed_s: float,
                      trained_steps: int | None = None) -> list[dict]:
    """Final evaluation of the best snapshots (>= bar.episodes episodes, fresh starts) and the teacher files."""
    from raptor.rl.batched import BatchedMLP
    from raptor.rl.ppo import ACT_DIM

    K = len(ids)
    obs_dim = int(best["actor"][0]["layer0.weight"].shape[1])
    mlp = BatchedMLP(K, (obs_dim, *cfg.ppo.actor_hidden, ACT_DIM)).to(cfg.device)
    for k in range(K):
        mlp.load_teacher_state(k, best["actor"][k])
    timings: dict[str, float] = {}
    out = write_teachers(rd, cfg, ids, TeacherActors(mlp), mlp, airframes, curves, best["steps"], elapsed_s, "ppo",
                         trained_steps, extra=best.get("candidates"), timings=timings)
    print(f"teachers {ids[0]}-{ids[-1]}: finalized in {sum(timings.values()):.1f} s after {elapsed_s:.0f} s of "
          "training (" + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")", flush=True)
    return out


def write_teachers(rd: RunDir, cfg: TrainConfig, ids: list[int], actors, mlp, airframes: list[Airframe],
                   curves: list[list[dict]], best_steps: list[int], elapsed_s: float, algo: str,
                   trained_steps: int | None = None, extra: list[dict] | None = None,
                   timings: dict | None = None) -> list[dict]:
    """Evaluate (bar.episodes hover episodes, starts disjoint from the selection's) and write each unfinished
    teacher; `extra[k]` (if given) is merged into teacher k's eval.json; `timings` (if given) receives the wall
    seconds of each phase (trim, gain, evaluation, published, files)."""
    eval_seed = 1_000_003  # final evaluation starts, disjoint from the selection evaluations
    steps_trained = int(trained_steps or cfg.steps)
    plain = [airframes[i] for i in ids]
    clock = _PhaseClock(cfg.device)
    offsets = torch.zeros(len(ids), 3, dtype=torch.float64)
    if cfg.calibrate:  # once more on starts of its own (the selection's trim used fewer episodes)
        offsets = calibrate_offsets(mlp, [teacher_airframe(a, cfg) for a in plain],
                                    2 * cfg.calibration_episodes, seed=eval_seed + 1, device=cfg.device,
                                    iterations=1, output=actors.output)
    clock.lap("trim")
    gains = calibrate_gain(mlp, [teacher_airframe(a, cfg) for a in plain], cfg.feedback_gains,  # own starts,
                           cfg.gain_episodes, seed=eval_seed + 5, device=cfg.device, output=actors.output)  # after trim
    clock.lap("gain")
    metrics = evaluate_teachers(actors, plain, cfg.bar.episodes, seed=eval_seed, device=cfg.device)
    clock.lap("evaluation")
    ref, missing = reference_termination(plain, cfg.bar.episodes, seed=eval_seed, device=cfg.device)
    clock.lap("published")
    results = []
    for k, i in enumerate(ids):
        if rd.finished(i):
            continue
        d = rd.teacher_dir(i)
        d.mkdir(parents=True, exist_ok=True)
        verdict = cfg.bar.judge(metrics[k], ref[k])
        a = airframes[i]
        meta = {"id": i, "airframe": a.name, "algo": algo, "backend": cfg.backend, "steps": int(best_steps[k]),
                "trained_steps": steps_trained, "output": actors.output,
                "hover_trim_m": [round(float(x), 5) for x in offsets[k]], "feedback_gain": gains[k]}
        save_teacher(d / "teacher.safetensors", mlp, k, meta)
        atomic_write_text(d / "airframe.json", json.dumps(a.to_json(), indent=1))
        atomic_write_text(d / "curve.json", json.dumps(curves[k]))
        ev = {"id": i, "airframe": a.name, "steps": steps_trained, "selected_steps": int(best_steps[k]),
              "train_wall_s": round(elapsed_s, 1), "episodes": cfg.bar.episodes, "scenario": "hover",
              "seed": eval_seed, "hover_trim_m": meta["hover_trim_m"], "feedback_gain": gains[k], **metrics[k],
              "reference_termination_rate": ref[k], **verdict, **(extra[k] if extra else {})}
        if missing is not None:
            ev["reference_missing"] = missing
        atomic_write_text(d / "eval.json", json.dumps(ev, indent=1))  # last: marks the teacher finished
        results.append(ev)
    clock.lap("files")
    if timings is not None:
        timings.update(clock.laps)
    return results


class _PhaseClock:
    """Wall seconds of consecutive phases (device-synchronized on CUDA, so each phase owns its kernels)."""

    def __init__(self, device: str) -> None:
        self.cuda = str(device).startswith("cuda")
        self.laps: dict[str, float] = {}
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.t, 3)
        self.t = now


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def start_or_resume(out: str, airframe_spec: str | None, ids_text: str | None, cfg: TrainConfig | None,
                    resume: bool, retrain_failed: bool = False) -> tuple[RunDir, dict, TrainConfig]:
    rd = RunDir(out)
    if rd.run_file.exists():
        if not (resume or retrain_failed):
            raise ConfigError(f"'{out}' already holds a training run; continue it with --resume, or choose another "
                              "--out")
        run = rd.read_run()
        if airframe_spec is not None and airframe_spec != run["airframe_spec"]:
            raise ConfigError(f"'{out}' trains airframes '{run['airframe_spec']}', not '{airframe_spec}'; resume "
                              f"without --airframes (or with that spec), or start another --out")
        stored = TrainConfig.from_json(run["config"])
        if cfg is not None and cfg.backend != stored.backend:
            stored = replace(stored, backend=cfg.backend, teachers_per_shard=cfg.teachers_per_shard,
                             device=cfg.device, threads=cfg.threads)
            run["config"] = stored.to_json()
            rd.write_run(run)
        if ids_text is not None and resume:
            extend_run(rd, run, parse_ids(ids_text, len(rd.airframes())))
        return rd, run, stored
    if resume or retrain_failed:
        raise ConfigError(f"nothing to resume: '{out}' holds no run.json; start with --airframes SPEC --out {out}")
    if airframe_spec is None:
        raise ConfigError("--airframes is required to start a run (named, NAME,..., FILE, sampled:N:SEED)")
    cfg = cfg or TrainConfig()
    cfg.check_machine()
    all_afs = resolve_airframes(airframe_spec)
    ids = parse_ids(ids_text, len(all_afs))
    if not ids:
        raise ConfigError(f"--ids '{ids_text}' selects no airframe")
    check_writable_folder(rd.root)
    afs = [Airframe(a.name, a.parameters, {**a.meta, "id": i}) for i, a in enumerate(all_afs)]
    save_airframes(rd.airframes_file, afs, {"spec": airframe_spec})
    run = {"format": RUN_FORMAT, "version": RUN_VERSION, "airframe_spec": airframe_spec, "ids": ids,
           "config": cfg.to_json(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "retrain_attempts": []}
    rd.write_run(run)
    return rd, run, cfg


def extend_run(rd: RunDir, run: dict, ids: list[int]) -> list[int]:
    """`--resume --ids`: add the ids the run does not have yet, trained with the run's stored recipe (steps, bar,
    seed) as an attempt of their own, so the finished shards keep their keys and are never retrained. Refused while
    the current attempt has unfinished teachers (their checkpoints belong to its shards). Returns the ids added."""
    new = sorted(set(ids) - set(run["ids"]))
    if not new:
        return []
    unfinished = [i for i in attempt_ids(run) if not rd.finished(i)]
    if unfinished:
        raise ConfigError(f"cannot add teachers {new[:5]}{'...' if len(new) > 5 else ''} yet: teachers "
                          f"{unfinished[:5]}{'...' if len(unfinished) > 5 else ''} of the run are unfinished; finish "
                          f"them first (raptor train --out {rd.root} --resume), then resume with --ids")
    run["ids"] = sorted(set(run["ids"]) | set(new))
    attempts = run.setdefault("retrain_attempts", [])
    attempts.append({"attempt": len(attempts) + 1, "ids": new, "added": True,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    rd.write_run(run)
    return new


def mark_failed_for_retraining(rd: RunDir, run: dict, cfg: TrainConfig) -> list[int]:
    """Archive the teachers below the bar and open a new attempt for them (more steps, another seed)."""
    failed = [s["id"] for s in status(rd) if s["state"] == "finished" and not s["passed"]]
    if not failed:
        return []
    attempt = len(run.get("retrain_attempts", [])) + 1
    for i in failed:
        d = rd.teacher_dir(i)
        archive = rd.root / "archive" / f"attempt{attempt - 1}" / f"{i:04d}"
        archive.parent.mkdir(parents=True, exist_ok=True)
        if archive.exists():
            shutil.rmtree(archive)
        os.replace(d, archive)
    run.setdefault("retrain_attempts", []).append({"attempt": attempt, "ids": failed,
                                                   "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    rd.write_run(run)
    return failed


_DAMAGED_TEACHER_FIX = "delete that teacher's folder and run raptor train --out DIR --resume to train it again"


def _attempt_rank(ev: dict) -> tuple[bool, float]:
    return bool(ev.get("passed")), teacher_score(ev)


def keep_best_attempts(rd: RunDir) -> list[int]:
    """A retrain never makes a teacher worse: where an archived attempt of a finished teacher ranks above the
    current one (passes the bar, then success - termination), swap them. Returns the ids swapped back.

    Two renames: a crash between them leaves both attempts in archive/ and the teacher pending (retrained by the
    next --resume or --retrain-failed), never lost."""
    archive = rd.root / "archive"
    if not archive.is_dir():
        return []
    swapped = []
    by_id: dict[int, list[Path]] = {}
    for d in archive.glob("*/[0-9][0-9][0-9][0-9]"):  # attemptN/ and superseded*/
        if (d / "eval.json").is_file():
            by_id.setdefault(int(d.name), []).append(d)
    for i, dirs in sorted(by_id.items()):
        if not rd.finished(i):
            continue
        current = read_json(rd.teacher_dir(i) / "eval.json", "teacher evaluation", _DAMAGED_TEACHER_FIX)
        ranked = [(_attempt_rank(read_json(d / "eval.json", "teacher evaluation", _DAMAGED_TEACHER_FIX)), str(d), d)
                  for d in dirs]
        best_rank, _, best = max(ranked)
        if best_rank <= _attempt_rank(current):
            continue
        n = 0
        while (archive / f"superseded{n}" / f"{i:04d}").exists():
            n += 1
        slot = archive / f"superseded{n}" / f"{i:04d}"
        slot.parent.mkdir(parents=True, exist_ok=True)
        os.replace(rd.teacher_dir(i), slot)
        os.replace(best, rd.teacher_dir(i))
        swapped.append(i)
    return swapped


def train(out: str, airframe_spec: str | None = None, ids_text: str | None = None, cfg: TrainConfig | None = None,
          resume: bool = False, retrain_failed: bool = False, progress: bool = True, tensorboard: bool = False,
          address: str | None = None, retrain_steps: int | None = None,
          retrain_eval_episodes: int | None = None, retrain_candidates: int | None = None,
          retrain_start_position: float | None = None, retrain_merge_candidates: bool | None = None) -> list[dict]:
    rd, run, cfg = start_or_resume(out, airframe_spec, ids_text, cfg, resume, retrain_failed)
    # A retrain round may change the training length and the selection evaluation's size (failed teachers often
    # need a longer run; the best of ~20 snapshots ranked on 100 episodes tends to lose 2-4 points in the final
    # 500-episode evaluation, and on raptor061 still ~3 when ranked on 500 fixed starts).
    over = {k: v for k, v in (("steps", retrain_steps), ("eval_episodes", retrain_eval_episodes),
                              ("candidates", retrain_candidates), ("init_min_position_m", retrain_start_position),
                              ("init_max_position_m", retrain_start_position),
                              ("merge_candidates", retrain_merge_candidates)) if v is not None}
    if retrain_failed and over:
        cfg = replace(cfg, **over)
        run["config"] = cfg.to_json()
        rd.write_run(run)
    if retrain_failed:
        failed = mark_failed_for_retraining(rd, run, cfg)
        if progress:
            print(f"retraining {len(failed)} teachers below the bar: {failed}")
        run = rd.read_run()
    airframes = rd.airframes()
    plan = [(k, ids, s) for k, ids, s in shard_plan(run, cfg) if any(not rd.finished(i) for i in ids)]
    results: list[dict] = []
    with rd.lock():
        if cfg.backend == "ray":
            from raptor.rl.ray_backend import train_ray

            results = train_ray(rd, cfg, plan, address=address, progress=progress)
        elif cfg.backend == "sb3":
            from raptor.rl.sb3_backend import train_shard_sb3

            for key, ids, seed in plan:
                results += train_shard_sb3(rd, cfg, key, ids, seed, airframes, progress=progress)
        else:
            for key, ids, seed in plan:
                results += train_shard_batched(rd, cfg, key, ids, seed, airframes, progress=progress,
                                               tensorboard=tensorboard)
    swapped = keep_best_attempts(rd)
    if swapped and progress:
        print(f"kept the earlier, better attempt of teachers {swapped} (the retrain ranked lower)")
    return results


def status(rd: RunDir) -> list[dict]:
    """One row per teacher of the run: finished ones with their evaluation, the others pending/training."""
    run = rd.read_run()
    names = {}
    try:
        names = {i: a.name for i, a in enumerate(rd.airframes())}
    except Exception:  # noqa: BLE001 - status must work even when the airframe file is damaged
        pass
    progress: dict[int, int] = {}
    damaged: list[str] = []
    if rd.checkpoints.is_dir():
        for f in [*rd.checkpoints.glob("*.pt"), *rd.checkpoints.glob("*/state.pt")]:  # batched, sb3
            st, why = None, None
            for candidate in (f, f.with_name(f.name + ".prev")):  # a resume would fall back to .prev too
                try:
                    st = read_checked(candidate)
                    break
                except ValueError as e:
                    why = why or str(e)
            if st is None:
                damaged.append(f"{f} ({why})")
                continue
            for i in st.get("ids", []):
                progress[i] = int(st["ppo"]["env_steps"]) if "ppo" in st else int(st.get("env_steps", 0))
    alive = rd.trainer_alive()
    active = "training" if alive else "interrupted"  # a checkpoint and no live trainer: resume it
    rows = []
    for i in run["ids"]:
        ev_file = rd.teacher_dir(i) / "eval.json"
        if ev_file.is_file():
            try:
                ev = read_json(ev_file, "teacher evaluation")
                row = {"id": i, "airframe": ev["airframe"], "state": "finished", "steps": ev["steps"],
                       "success_rate": ev["success_rate"], "termination_rate": ev["termination_rate"],
                       "mean_return": ev["mean_return"], "mean_action_change": ev["mean_action_change"],
                       "reference_termination_rate": ev.get("reference_termination_rate"),
                       "passed": bool(ev["passed"])}
            except (ConfigError, RaptorError, KeyError, TypeError):
                row = _open_row(i, names.get(i, "?"), f"damaged: {ev_file.name} (delete the teacher's folder and "
                                                      "--resume to retrain it)", 0)
            rows.append(row)
        elif i in progress:
            rows.append(_open_row(i, names.get(i, "?"), active, progress[i]))
        else:
            state = "training" if alive and not damaged else ("damaged checkpoint" if damaged else "pending")
            rows.append(_open_row(i, names.get(i, "?"), state, 0))
    if damaged:
        for r in rows:
            if r["state"] == "damaged checkpoint":
                r["note"] = "; ".join(damaged)
    return rows


def _open_row(i: int, airframe: str, state: str, steps: int) -> dict:
    return {"id": i, "airframe": airframe, "state": state, "steps": steps, "success_rate": None,
            "termination_rate": None, "mean_return": None, "mean_action_change": None,
            "reference_termination_rate": None, "passed": None}


def status_table(rows: list[dict]) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    lines = ["| id | airframe | state | steps | success | terminated (published) | mean return | mean abs da | bar |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = r["reference_termination_rate"]
        verdict = "-" if r["passed"] is None else ("pass" if r["passed"] else "**FAIL**")
        lines.append(f"| {r['id']} | {r['airframe']} | {r['state']} | {r['steps']:,} | {pct(r['success_rate'])} | "
                     f"{pct(r['termination_rate'])} ({pct(ref)}) | "
                     f"{'-' if r['mean_return'] is None else format(r['mean_return'], '.1f')} | "
                     f"{'-' if r['mean_action_change'] is None else format(r['mean_action_change'], '.4f')} | "
                     f"{verdict} |")
    done = [r for r in rows if r["state"] == "finished"]
    passed = sum(1 for r in done if r["passed"])
    lines.append("")
    lines.append(f"{len(done)}/{len(rows)} finished, {passed} pass the bar, {len(done) - passed} below it"
                 + (" (retrain them with --retrain-failed)" if len(done) > passed else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# CLI


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one RL teacher per airframe (batched, sb3 or ray backend)")
    p.add_argument("--airframes", default=None, help="named | NAME,... | FILE | sampled:N:SEED")
    p.add_argument("--ids", default=None, help="which airframes of the spec, e.g. 0-999 or 0-9,12 (default all); "
                                                 "with --resume, the ids the run lacks are added and trained "
                                                 "with its stored recipe")
    p.add_argument("--out", default=None, help="output directory (teachers, checkpoints, run.json)")
    p.add_argument("--algo", default=None, help="ppo (batched, ray, sb3) | sac (sb3) (default ppo)")
    p.add_argument("--backend", default=None, help="batched | sb3 | ray (default batched)")
    p.add_argument("--device", default=None, help="cpu | cuda (default cpu)")
    p.add_argument("--steps", type=int, default=None, help="env steps per teacher (default 5,000,000 for PPO, "
                                                           "300,000 for sb3 SAC)")
    p.add_argument("--envs", type=int, default=None, help="PPO envs per teacher (default 256)")
    p.add_argument("--teachers-per-shard", type=int, default=None, help="teachers trained together (default 16)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--checkpoint-every", type=float, default=None, metavar="SECONDS",
                   help="seconds between checkpoints (default 60)")
    p.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                   help="env steps between selection evaluations (default 500,000; sb3 SAC 10,000)")
    p.add_argument("--eval-episodes", type=int, default=None, metavar="N",
                   help="hover episodes per teacher in each selection evaluation (default 100; with "
                        "--retrain-failed it applies to that round)")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="independent seeds trained per teacher; the best by the selection evaluations is kept "
                        "(default 1; batched and ray backends; with --retrain-failed it applies to that round)")
    p.add_argument("--merge-candidates", action="store_true",
                   help="with --candidates N: train one actor per teacher on the mean action of its N candidates "
                        "(gain-calibrated) instead of keeping the first-ranked (also per --retrain-failed round)")
    p.add_argument("--any-yaw", type=float, default=None, metavar="FRACTION",
                   help="fraction of training starts with a uniform random yaw (default 0: the reference's starts)")
    p.add_argument("--langevin", type=float, default=None, metavar="FRACTION",
                   help="fraction of training episodes that track a moving (Langevin) target instead of hovering "
                        "(default: each airframe's own mixture: 0.5 for sampled airframes, the reference's; 0 for the "
                        "named airframes' files)")
    p.add_argument("--start-scale", type=float, default=None, metavar="FACTOR",
                   help="multiply the training starts' linear and angular velocity ranges (default 1: the spec's; "
                        "the final evaluation always uses the spec's starts)")
    p.add_argument("--start-position", type=float, default=None, metavar="METERS",
                   help="training starts within +-METERS of the target on every axis (default 0.5, the hover "
                        "scenario's; larger trains the recovery from the box's edge; evaluations keep 0.5; with "
                        "--retrain-failed it applies to that round)")
    p.add_argument("--feedback-gains", default=None, metavar="LIST",
                   help="gains tried on each finished teacher's feedback around hover, the best on its own hover "
                        "episodes kept (default 1,1.1,1.2,1.3,1.4; 1 keeps the trained actor)")
    p.add_argument("--observation", default=None, choices=("privileged", "teacher"),
                   help="what teachers see: privileged = the teacher observation + the disturbance force (default), "
                        "teacher = the reference's 26 values")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="training seconds per shard; at the limit its teachers are finalized with their best "
                        "snapshot so far (default: train all --steps)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--retrain-failed", action="store_true", help="retrain the finished teachers below the bar")
    p.add_argument("--status", metavar="DIR", default=None, help="list the teachers of a run and exit")
    p.add_argument("--json", action="store_true", help="with --status: JSON instead of a table")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars to OUT/tensorboard")
    p.add_argument("--address", default=None, help="ray backend: cluster address (auto) or none for a local one")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs and batch jobs)")
    p.set_defaults(func=_cmd_train)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    backend = args.backend or "batched"
    algo = args.algo or "ppo"
    default_steps = 300_000 if algo == "sac" else 5_000_000
    ppo = PPOConfig() if args.envs is None else replace(PPOConfig(), envs_per_teacher=args.envs)
    kw = {"backend": backend, "algo": algo, "steps": default_steps if args.steps is None else args.steps, "ppo": ppo}
    for name in ("device", "seed", "teachers_per_shard", "threads"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if algo == "sac":
        kw["eval_every_steps"] = 10_000
    if args.eval_every is not None:
        kw["eval_every_steps"] = args.eval_every
    if args.eval_episodes is not None:
        kw["eval_episodes"] = args.eval_episodes
    if args.candidates is not None:
        kw["candidates"] = args.candidates
    if args.merge_candidates:
        kw["merge_candidates"] = True
    if args.any_yaw is not None:
        kw["any_yaw_fraction"] = args.any_yaw
    if args.langevin is not None:
        kw["langevin_fraction"] = args.langevin
    if args.observation is not None:
        kw["observation"] = args.observation
    if args.start_scale is not None:
        kw["start_velocity_scale"] = args.start_scale
    if args.feedback_gains is not None:
        try:
            kw["feedback_gains"] = tuple(float(x) for x in args.feedback_gains.split(","))
        except ValueError:
            raise ConfigError(f"bad --feedback-gains '{args.feedback_gains}': use e.g. 1,1.2,1.4") from None
    if args.start_position is not None:
        kw["init_min_position_m"] = kw["init_max_position_m"] = args.start_position
    if args.checkpoint_every is not None:
        kw["checkpoint_every_s"] = args.checkpoint_every
    if args.time_limit is not None:
        kw["time_limit_s"] = args.time_limit
    return TrainConfig(**kw)


def _resume_with_envs(rd: RunDir, envs: int) -> None:
    """--resume --envs N: a run that has not trained anything yet (e.g. stopped because its envs did not fit) takes
    the new size; a run with progress keeps its recipe, and saying otherwise is refused rather than ignored."""
    run = rd.read_run()
    stored = TrainConfig.from_json(run["config"])
    if envs == stored.ppo.envs_per_teacher:
        return
    started = any(rd.finished(i) for i in run["ids"]) or (rd.checkpoints.is_dir() and any(rd.checkpoints.iterdir()))
    if started:
        raise ConfigError(f"'{rd.root}' trains with --envs {stored.ppo.envs_per_teacher} and has progress; a resume "
                          "keeps its recipe: drop --envs, or start another --out")
    new = replace(stored, ppo=replace(stored.ppo, envs_per_teacher=envs))
    new.check_machine()
    run["config"] = new.to_json()
    rd.write_run(run)


def _cmd_train(args: argparse.Namespace) -> int:
    if args.status:
        rows = status(RunDir(args.status))
        print(json.dumps(rows, indent=1) if args.json else status_table(rows))
        return 0
    if not args.out:
        raise ConfigError("--out DIR is required (or --status DIR)")
    if (args.resume or args.retrain_failed) and args.envs is not None:
        _resume_with_envs(RunDir(args.out), args.envs)
    cfg = None if (args.resume or args.retrain_failed) and args.backend is None else config_from_args(args)
    t0 = time.perf_counter()
    train(args.out, args.airframes, args.ids, cfg, resume=args.resume, retrain_failed=args.retrain_failed,
          progress=not args.no_progress, tensorboard=args.tensorboard, address=args.address,
          retrain_steps=args.steps if args.retrain_failed else None,
          retrain_eval_episodes=args.eval_episodes if args.retrain_failed else None,
          retrain_candidates=args.candidates if args.retrain_failed else None,
          retrain_start_position=args.start_position if args.retrain_failed else None,
          retrain_merge_candidates=True if args.retrain_failed and args.merge_candidates else None)
    rows = status(RunDir(args.out))
    print(status_table(rows))
    print(f"({time.perf_counter() - t0:.0f} s; teachers in {args.out}/teachers)")
    return 0
