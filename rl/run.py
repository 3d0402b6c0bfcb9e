"""The run directory of `raptor train` (layout: raptor.rl.train), its shard plan and the status table."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
from pathlib import Path

from raptor.errors import ConfigError, RaptorError
from raptor.fileio import (
    atomic_write_text,
    lock_alive,
    process_lock,
    read_checked,
    read_json,
)
from raptor.rl.config import RUN_FORMAT, TrainConfig, migrate_run
from raptor.sim.airframe import Airframe
from raptor.sim.airframe_files import load_airframes, resolve_airframes, save_airframes

# ----------------------------------------------------------------------------------------------------------------
# The run directory

_DAMAGED_TEACHER = "delete that teacher's folder and resume to train it again"


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
        return migrate_run(run)

    def write_run(self, run: dict) -> None:
        atomic_write_text(self.run_file, json.dumps(run, indent=1))

    def airframes(self) -> list[Airframe]:
        """The run's airframes (ids in their metadata). airframes.json is regenerated from the run's spec where it is
        missing (a run committed without it: sampled sets are bit-exact from their seed, so the file is not kept in
        a repository), checked against the finished teachers' own airframe files."""
        if not self.airframes_file.is_file() and self.run_file.is_file():
            self.regenerate_airframes()
        return load_airframes(self.airframes_file)

    def regenerate_airframes(self) -> None:
        spec = self.read_run()["airframe_spec"]
        try:
            afs = run_airframes(spec)
        except RaptorError as e:
            raise ConfigError(f"'{self.airframes_file}' is missing and cannot be made again from the run's spec "
                              f"'{spec}' ({e}); restore the file") from None
        for d in sorted((self.root / "teachers").glob("[0-9][0-9][0-9][0-9]"))[:8]:
            own = d / "airframe.json"
            if own.is_file():  # the teacher's own airframe (Airframe.to_json; its starts may differ: compare dynamics)
                mine = read_json(own, "teacher airframe", _DAMAGED_TEACHER)
                i = int(d.name)
                if i >= len(afs) or mine.get("parameters", {}).get("dynamics") != afs[i].parameters["dynamics"]:
                    raise ConfigError(f"'{self.airframes_file}' is missing, and the spec '{spec}' now makes "
                                      f"another airframe {i} than the run trained ({own}): this raptor samples "
                                      "differently; restore the file or use the raptor that started the run")
        save_airframes(self.airframes_file, afs, {"spec": spec, "regenerated": True})

    lock_file = property(lambda self: self.root / "training.lock")

    def lock(self):
        """Mark the run as being trained by this process (pid, host) while the block runs; --status reads it."""
        return process_lock(self.lock_file)

    def trainer_alive(self) -> bool | None:
        """True: a live process on this host trains the run; False: the one that did is gone; None: no lock."""
        return lock_alive(self.lock_file)


def run_airframes(spec: str) -> list[Airframe]:
    """The airframes of a run's spec, each with its id (its index in the spec) in its metadata."""
    return [Airframe(a.name, a.parameters, {**a.meta, "id": i}) for i, a in enumerate(resolve_airframes(spec))]


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
