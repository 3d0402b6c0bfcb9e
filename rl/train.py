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

import os
import shutil
import time
from pathlib import Path

from raptor.errors import ConfigError
from raptor.fileio import (
    check_writable_folder,
    read_json,
)
from raptor.options import with_overrides
from raptor.rl.config import (
    RUN_FORMAT,
    RUN_VERSION,
    TrainConfig,
    parse_ids,
    resume_config,
)
from raptor.rl.run import (
    RunDir,
    attempt_ids,
    run_airframes,
    shard_plan,
    status,
)
from raptor.rl.shard import train_shard_batched
from raptor.rl.teacher import teacher_score
from raptor.sim.airframe_files import save_airframes

# ----------------------------------------------------------------------------------------------------------------
# Entry points


def start_or_resume(out: str, airframe_spec: str | None, ids_text: str | None, cfg: TrainConfig | None,
                    resume: bool, retrain_failed: bool = False,
                    overrides: dict | None = None) -> tuple[RunDir, dict, TrainConfig]:
    """A new run (cfg), or the run in `out` with `overrides` (TrainConfig fields of a resume: the layout flags are
    applied and recorded, recipe changes refused, raptor.rl.config.resume_config)."""
    rd = RunDir(out)
    if rd.run_file.exists():
        if not (resume or retrain_failed):
            raise ConfigError(f"'{out}' already holds a training run; continue it with --resume, or choose another "
                              "--out")
        run = rd.read_run()
        if airframe_spec is not None and airframe_spec != run["airframe_spec"]:
            if not (resume and airframe_spec.startswith(run["airframe_spec"] + "+")):
                raise ConfigError(f"'{out}' trains airframes '{run['airframe_spec']}', not '{airframe_spec}'; resume "
                                  f"without --airframes (or with that spec, or that spec +MORE to add airframes), or "
                                  f"start another --out")
            extend_spec(rd, run, airframe_spec)
        stored = TrainConfig.from_json(run["config"])
        if overrides:
            has_ckpt = rd.checkpoints.is_dir() and any(rd.checkpoints.iterdir())
            stored, lines = resume_config(stored, overrides, has_ckpt)
            for line in lines:
                print(line, flush=True)
            if lines:
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
    afs = run_airframes(airframe_spec)
    ids = parse_ids(ids_text, len(afs))
    if not ids:
        raise ConfigError(f"--ids '{ids_text}' selects no airframe")
    check_writable_folder(rd.root)
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
    _refuse_while_unfinished(rd, run, f"add teachers {new[:5]}{'...' if len(new) > 5 else ''}")
    run["ids"] = sorted(set(run["ids"]) | set(new))
    attempts = run.setdefault("retrain_attempts", [])
    attempts.append({"attempt": len(attempts) + 1, "ids": new, "added": True,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    rd.write_run(run)
    return new


def extend_spec(rd: RunDir, run: dict, spec: str) -> None:
    """`--resume --airframes SPEC+MORE`: the run's airframes become those of the longer spec. Appending never moves an
    id (checked: the run's airframes are the first ones of the new spec, parameter for parameter), so every finished
    teacher and shard keeps its key; the new airframes are trained once --ids adds them (extend_run's rule: the
    current attempt must be finished). Recorded in run.json ("spec_history")."""
    _refuse_while_unfinished(rd, run, f"extend the airframes to '{spec}'")
    old = rd.airframes()
    new = run_airframes(spec)
    if len(new) < len(old) or any(a.name != b.name or a.parameters["dynamics"] != b.parameters["dynamics"]
                                  for a, b in zip(old, new)):
        raise ConfigError(f"'{spec}' does not start with the run's {len(old)} airframes ('{run['airframe_spec']}'); "
                          "add airframes only by appending +SPEC to the run's spec")
    save_airframes(rd.airframes_file, new, {"spec": spec})
    until = time.strftime("%Y-%m-%dT%H:%M:%S")
    run.setdefault("spec_history", []).append({"spec": run["airframe_spec"], "until": until})
    run["airframe_spec"] = spec
    rd.write_run(run)
    print(f"raptor train: the run's airframes extended to '{spec}' ({len(old)} -> {len(new)}; ids {len(old)}-"
          f"{len(new) - 1} new; those in --ids are trained)", flush=True)


def _refuse_while_unfinished(rd: RunDir, run: dict, what: str) -> None:
    unfinished = [i for i in attempt_ids(run) if not rd.finished(i)]
    if unfinished:
        raise ConfigError(f"cannot {what} yet: teachers {unfinished[:5]}{'...' if len(unfinished) > 5 else ''} of "
                          f"the run are unfinished; finish them first (raptor train --out {rd.root} --resume), then "
                          "resume with the new option")


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
          address: str | None = None, retrain: dict | None = None, overrides: dict | None = None) -> list[dict]:
    """Train (or resume, or with retrain_failed retrain the failed teachers of) the run in `out`. retrain: TrainConfig
    fields the retrain round changes (raptor train's flags of that round, e.g. {"steps": 8_000_000}); overrides: the
    layout fields a resume changes (e.g. {"time_limit_s": 600}; recipe changes are refused)."""
    rd, run, cfg = start_or_resume(out, airframe_spec, ids_text, cfg, resume, retrain_failed, overrides)
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
