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

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from raptor.errors import ConfigError
from raptor.fileio import (
    atomic_write_text,
    check_writable_folder,
    load_checked,
    read_json,
    save_checked,
)
from raptor.options import with_overrides

# The configuration and the run directory live in their own modules; their names stay importable from here.
from raptor.rl.config import (  # noqa: E402,F401
    ALGOS,
    BACKENDS,
    RUN_FORMAT,
    RUN_VERSION,
    TrainConfig,
    parse_ids,
    teacher_airframe,
    training_env_config,
)
from raptor.rl.ppo import BatchedPPO, TeacherActors
from raptor.rl.run import RunDir, attempt_ids, deferred_interrupts, shard_plan, status, status_table  # noqa: E402,F401
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
from raptor.sim.airframe import Airframe, resolve_airframes, save_airframes

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
          address: str | None = None, retrain: dict | None = None) -> list[dict]:
    """Train (or resume, or with retrain_failed retrain the failed teachers of) the run in `out`. retrain: TrainConfig
    fields the retrain round changes (raptor train's flags of that round, e.g. {"steps": 8_000_000})."""
    rd, run, cfg = start_or_resume(out, airframe_spec, ids_text, cfg, resume, retrain_failed)
    # A retrain round may change the training length and the selection evaluation's size (failed teachers often
    # need a longer run; the best of ~20 snapshots ranked on 100 episodes tends to lose 2-4 points in the final
    # 500-episode evaluation, and on raptor061 still ~3 when ranked on 500 fixed starts).
    if retrain_failed and retrain:
        cfg = with_overrides(cfg, retrain)
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
