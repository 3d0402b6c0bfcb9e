"""Training one shard of teachers with the batched PPO trainer, and finalizing teachers (trim, gain calibration,
the final evaluation, the files of a finished teacher). Used by `raptor train` (raptor.rl.train) and its ray and
stable-baselines3 backends; imports none of them."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable

import torch

from raptor.errors import ConfigError
from raptor.fileio import atomic_write_text, load_checked, save_checked
from raptor.rl.batched import BatchedMLP
from raptor.rl.config import TrainConfig, teacher_airframe, training_env_config
from raptor.rl.ppo import ACT_DIM, BatchedPPO, TeacherActors
from raptor.rl.run import RunDir, deferred_interrupts
from raptor.rl.teacher import (
    calibrate_gain,
    calibrate_offsets,
    evaluate_teachers,
    merge_candidates,
    reference_termination,
    save_teacher,
    teacher_score,
    trimmed_copy,
)
from raptor.sim.airframe import Airframe


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
    rows = list(range(K))  # the networks still training: ppo's row r is network rows[r]
    finished_at: dict[int, int] = {}  # network -> env steps at which it finished early (TrainConfig.finish_early)
    if state is not None:
        rows = list(state.get("rows", rows))
        finished_at = {int(k): int(v) for k, v in state.get("finished_at", {}).items()}
        if rows != list(range(K)):
            ppo.keep(rows)
        ppo.load_state_dict(state["ppo"])
        best, curves, elapsed = state["best"], state["curves"], float(state["elapsed_s"])
    early = EarlyFinish(cfg, afs, seed) if cfg.finish_early and C == 1 else None
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
                      "elapsed_s": elapsed, "config": cfg.to_json(), "rows": rows, "finished_at": finished_at},
                     ckpt_path)
        if on_checkpoint:
            on_checkpoint()

    def selection_eval() -> None:
        actors = ppo.deterministic_actors()
        row_afs = [afs[k] for k in rows]
        if cfg.calibrate:  # the trained actor keeps learning untrimmed; the snapshot is trimmed
            actors = trimmed_copy(actors, row_afs, cfg.calibration_episodes, seed=seed + 11, device=cfg.device)
        mlp = actors.mlp
        m = evaluate_teachers(actors, row_afs, cfg.eval_episodes, seed=seed + 7, device=cfg.device)
        for r, k in enumerate(rows):
            if k in finished_at:  # finished early: its snapshot and curve are final
                continue
            score = teacher_score(m[r])
            curves[k].append({"steps": ppo.env_steps, "wall_s": round(elapsed, 2),
                              **{n: m[r][n] for n in ("success_rate", "termination_rate", "mean_return",
                                                      "mean_action_change", "final_position_error_mean")}})
            if score > best["score"][k]:
                best["score"][k], best["steps"][k] = score, ppo.env_steps
                best["actor"][k] = mlp.teacher_state(r)
            if writer:
                for n in ("success_rate", "termination_rate", "mean_return", "mean_action_change"):
                    writer.add_scalar(f"{tag(k)}/eval/{n}", m[r][n], ppo.env_steps)
        live = [r for r, k in enumerate(rows) if k not in finished_at]
        n = max(1, len(live))
        line = (f"teachers {ids[0]}-{ids[-1]}: {ppo.env_steps:,} steps each, {elapsed:.0f} s; selection eval: "
                f"success {100 * sum(m[r]['success_rate'] for r in live) / n:.1f} %, terminated "
                f"{100 * sum(m[r]['termination_rate'] for r in live) / n:.1f} % (means over {len(live)} "
                + (f"networks, {C} per teacher)" if C > 1 else "teachers" + (" still training)" if len(live) < K
                                                                              else ")")))
        if early is not None:
            training = [k for k in rows if k not in finished_at]
            done = early.finished(training, curves)
            hopeless = [k for k in early.hopeless(training, curves) if k not in done]
            for k in done + hopeless:
                finished_at[k] = ppo.env_steps
            if done:
                line += f"; {len(done)} at the bar twice in a row, finished early"
            if hopeless:
                line += (f"; {len(hopeless)} below {100 * cfg.give_up_below:.0f} % success twice in a row and not "
                         "climbing, given up (judged as every teacher; a retrain round trains them again)")
            if done or hopeless:
                line += f" ({len(training) - len(done) - len(hopeless)} training on)"
            idle = [r for r, k in enumerate(rows) if k in finished_at]
            # Finished networks leave the batch; a compiled simulator recompiles for each new batch size, so there
            # they leave in groups of at least a quarter of the batch (until then they train on, unread).
            if idle and (not cfg.compile or 4 * len(idle) >= len(rows) or len(idle) == len(rows)):
                keep = [r for r, k in enumerate(rows) if k not in finished_at]
                rows[:] = [rows[r] for r in keep]
                if rows:
                    ppo.keep(keep)
        if bar is not None:
            bar.write(line)
        else:
            print(line, flush=True)

    def out_of_time() -> bool:
        return cfg.time_limit_s is not None and elapsed >= cfg.time_limit_s


    last_ckpt = time.monotonic()
    with deferred_interrupts() as stop:
        while ppo.iteration < total_iters and not out_of_time() and len(finished_at) < K:
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
    trained = [finished_at.get(k, ppo.env_steps) for k in range(len(best["score"]))] if finished_at else ppo.env_steps
    results = finalize_teachers(rd, cfg, ids, airframes, best, curves, elapsed, trained)
    if writer:
        writer.close()
    ckpt_path.unlink(missing_ok=True)
    ckpt_path.with_name(ckpt_path.name + ".prev").unlink(missing_ok=True)
    return results


class EarlyFinish:
    """TrainConfig.finish_early: a teacher leaves training once two selection evaluations in a row (after
    finish_min_steps) clear the quality bar with a margin on success: success >= the bar's + 0.05, termination within
    the bar's own limit (the published policy's on the same selection starts + the bar's margin), smoothness within
    the bar. Its best snapshot is final and goes through the same finalization and the same 500-episode judge as every
    teacher: the bar is unchanged. (Replayed on the every-task run's 208 reference curves, this limit instead of the
    published policy's own rate finishes 123 instead of 87 teachers at 1.5M, one of each set below the bar at 3M:
    docs/benchmarks.md.) A teacher far below the bar after give_up_min_steps and no longer climbing leaves too
    (`hopeless`)."""

    MARGIN = 0.05

    def __init__(self, cfg: TrainConfig, afs: list[Airframe], seed: int) -> None:
        self.cfg = cfg
        ref, _ = reference_termination(afs, cfg.eval_episodes, seed=seed + 7, device=cfg.device)
        # without the published policy (not installed): 2 %, a fifth of the bar's own fallback limit of 10 %
        self.ref = [cfg.bar.fallback_max_termination / 5 if r is None else r for r in ref]

    def clears(self, k: int, e: dict) -> bool:
        bar = self.cfg.bar
        return (e["steps"] >= self.cfg.finish_min_steps and e["success_rate"] >= bar.min_success + self.MARGIN
                and e["termination_rate"] <= self.ref[k] + bar.termination_margin + 1e-12)

    STALL_GAIN = 0.1

    def hopeless(self, training: list[int], curves: list[list[dict]]) -> list[int]:
        """The networks of `training` whose last two selection evaluations after give_up_min_steps are both below
        give_up_below success (TrainConfig.give_up_below; none when it is 0) and that are not climbing: their best
        success in the last give_up_stall_steps is under STALL_GAIN above their best before them."""
        if self.cfg.give_up_below <= 0:
            return []
        return [k for k in training if len(curves[k]) >= 2
                and all(e["steps"] >= self.cfg.give_up_min_steps and e["success_rate"] < self.cfg.give_up_below
                        for e in curves[k][-2:]) and self.stalled(curves[k])]

    def stalled(self, curve: list[dict]) -> bool:
        w = self.cfg.give_up_stall_steps
        if w <= 0:
            return True
        now = curve[-1]["steps"]
        before = [e["success_rate"] for e in curve if e["steps"] <= now - w]
        recent = [e["success_rate"] for e in curve if e["steps"] > now - w]
        return bool(before) and max(recent) < max(before) + self.STALL_GAIN

    def finished(self, training: list[int], curves: list[list[dict]]) -> list[int]:
        """The networks of `training` whose last two selection evaluations clear the bar with the margin."""
        bar = self.cfg.bar
        done = []
        for k in training:
            last = curves[k][-2:]
            if (len(last) == 2 and all(self.clears(k, e) for e in last)
                    and all(e["mean_action_change"] <= bar.max_action_change for e in last)):
                done.append(k)
        return done


def merged_actors(cfg: TrainConfig, ids: list[int], airframes: list[Airframe], everyone: list[dict],
                  picked: list[dict], seed: int) -> list[dict]:
    """Each teacher's candidates (C consecutive snapshots of `everyone`), trimmed and gain-calibrated, merged into
    one actor that starts from the first-ranked (`picked`): raptor.rl.teacher.merge_candidates."""
    sizes = (int(everyone[0]["layer0.weight"].shape[1]), *cfg.ppo.actor_hidden, ACT_DIM)
    cands = BatchedMLP(len(everyone), sizes).to(cfg.device)
    for k, st in enumerate(everyone):
        cands.load_teacher_state(k, st)
    afs = [teacher_airframe(airframes[i], cfg) for i in ids]
    slots = [a for a in afs for _ in range(cfg.candidates)]
    if cfg.calibrate:
        calibrate_offsets(cands, slots, cfg.calibration_episodes, seed=seed + 13, device=cfg.device, iterations=1)
    calibrate_gain(cands, slots, cfg.feedback_gains, cfg.gain_episodes, seed=seed + 17, device=cfg.device,
                   retrim=cfg.calibration_episodes if cfg.calibrate and cfg.gain_retrim else 0,
                   screen=cfg.gain_screen_episodes, tolerance=cfg.gain_tolerance)
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
                      trained_steps: int | list[int] | None = None) -> list[dict]:
    """Final evaluation of the best snapshots (>= bar.episodes episodes, fresh starts) and the teacher files."""
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
                   trained_steps: int | list[int] | None = None, extra: list[dict] | None = None,
                   timings: dict | None = None) -> list[dict]:
    """Evaluate (bar.episodes hover episodes, starts disjoint from the selection's) and write each unfinished
    teacher; `extra[k]` (if given) is merged into teacher k's eval.json; `timings` (if given) receives the wall
    seconds of each phase (trim, gain, evaluation, published, files)."""
    eval_seed = 1_000_003  # final evaluation starts, disjoint from the selection evaluations
    per_teacher = list(trained_steps) if isinstance(trained_steps, (list, tuple)) else None
    steps_trained = int(trained_steps or cfg.steps) if per_teacher is None else 0
    plain = [airframes[i] for i in ids]
    clock = _PhaseClock(cfg.device)
    offsets = torch.zeros(len(ids), 3, dtype=torch.float64)
    if cfg.calibrate:  # once more on starts of its own (the selection's trim used fewer episodes)
        offsets = calibrate_offsets(mlp, [teacher_airframe(a, cfg) for a in plain],
                                    2 * cfg.calibration_episodes, seed=eval_seed + 1, device=cfg.device,
                                    iterations=1, output=actors.output)
    clock.lap("trim")
    gains = calibrate_gain(mlp, [teacher_airframe(a, cfg) for a in plain], cfg.feedback_gains,  # own starts,
                           cfg.gain_episodes, seed=eval_seed + 5, device=cfg.device, output=actors.output,  # after
                           retrim=2 * cfg.calibration_episodes if cfg.calibrate and cfg.gain_retrim else 0,  # trim
                           trim_out=offsets,  # eval.json's hover_trim_m: both trims
                           screen=cfg.gain_screen_episodes, tolerance=cfg.gain_tolerance)
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
        trained_k = int(per_teacher[k]) if per_teacher is not None else steps_trained
        meta = {"id": i, "airframe": a.name, "algo": algo, "backend": cfg.backend, "steps": int(best_steps[k]),
                "trained_steps": trained_k, "output": actors.output,
                "hover_trim_m": [round(float(x), 5) for x in offsets[k]], "feedback_gain": gains[k]}
        save_teacher(d / "teacher.safetensors", mlp, k, meta)
        atomic_write_text(d / "airframe.json", json.dumps(a.to_json(), indent=1))
        atomic_write_text(d / "curve.json", json.dumps(curves[k]))
        ev = {"id": i, "airframe": a.name, "steps": trained_k, "selected_steps": int(best_steps[k]),
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
