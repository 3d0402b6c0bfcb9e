"""`raptor pipeline --status`: what a run has done, what remains and the CPU time left at the run's own pace."""

from __future__ import annotations

import re

from raptor.commands.pipeline_run import STAGES, PipelineRun, _stage_line, distill_config, train_config
from raptor.distill.dagger import hours, progress_text, read_log
from raptor.fileio import lock_alive, read_json
from raptor.rl.config import TrainConfig
from raptor.rl.run import RunDir, status


def _teacher_progress(run: PipelineRun, steps_left: int | None = None) -> tuple[str, float | None]:
    """What the teacher stages have done and what remains, with the CPU time left at the pace this run's finished
    teachers were trained at (their shard's training wall time over the shard's teachers and their steps; None where
    none is finished). steps_left: the steps each remaining teacher trains (a retrain round's are more)."""
    rd = RunDir(run.teachers)
    rows = status(rd)
    done = [r for r in rows if r["state"] == "finished"]
    left = len(rows) - len(done)
    cfg = TrainConfig.from_json(rd.read_run()["config"])
    per = cfg.teachers_per_shard
    evals = [read_json(rd.teacher_dir(r["id"]) / "eval.json") for r in done]
    # seconds per env step of the fastest shard: a shard paused (SIGSTOP, a suspended laptop) only ever reads slower
    walls = [e.get("train_wall_s", 0.0) / max(1, e.get("steps") or cfg.steps) for e in evals if e.get("train_wall_s")]
    per_step = min(walls) / max(1, min(per, len(rows))) * 1.1 if walls else None  # +10 %: finalization
    text = (f"{len(done)}/{len(rows)} teachers finished ({sum(1 for r in done if r['passed'])} at the bar), "
            f"{left} remaining")
    pace = None if per_step is None else per_step * (steps_left or cfg.steps)
    if left and pace is not None:
        text += f"; about {hours(left * pace)} left ({pace:.0f} s per teacher on this run)"
    return text, pace


def status_lines(run: PipelineRun) -> list[str]:
    """One line per stage: its state, what it did or, for a stage under way, what is done, what remains and the CPU
    time left at this run's own pace."""
    d = run.read()
    pc = run.config(d)
    lines = []
    for i, name in enumerate(STAGES, 1):
        st = d["stages"].get(name, {})
        state = st.get("state", "pending")
        detail = st.get("summary", "")
        if state != "done" and name in ("teachers", "retrain") and (run.teachers / "run.json").is_file():
            if name == "teachers" or state != "pending":
                steps = None if name == "teachers" else int(train_config(pc).steps * pc.retrain_steps_factor)
                detail = _teacher_progress(run, steps)[0]
        elif state != "done" and name == "distill":
            detail = progress_text(read_log(run.student), distill_config(pc).epochs)
        if "wall_s" in st:
            detail = f"{detail} ({st['wall_s']:.0f} s)" if detail else f"{st['wall_s']:.0f} s"
        if state == "running":
            state = "under way" if _trainer_alive(run) else "stopped (continue with --resume)"
        lines.append(_stage_line(i, name, state, detail))
    later = _later_teachers(run, d)
    if later:
        lines.append(later)
    return lines


def _later_teachers(run: PipelineRun, d: dict) -> str | None:
    """A line where the teachers folder changed after the teacher stages finished (a round run outside the pipeline,
    e.g. `raptor train --resume --ids`), so the stages above no longer tell what the run's teachers are."""
    st = d["stages"].get("retrain", {})
    m = re.search(r"(\d+)/(\d+) teachers finished, (\d+) at the quality bar", st.get("summary", ""))
    if st.get("state") != "done" or m is None or not (run.teachers / "run.json").is_file():
        return None
    rows = status(RunDir(run.teachers))
    done = [r for r in rows if r["state"] == "finished"]
    passed = sum(1 for r in done if r["passed"])
    if (len(rows), passed) == (int(m.group(2)), int(m.group(3))):
        return None
    return (f"since then: {run.teachers} holds {len(rows)} teachers, {len(done)} finished, {passed} at the quality bar "
            f"(rounds run outside the pipeline; raptor train --status {run.teachers})")


def _trainer_alive(run: PipelineRun) -> bool:
    alive = lock_alive(run.lock_file)
    if alive is None and (run.teachers / "run.json").is_file():  # a run started by a raptor without pipeline.lock

        alive = RunDir(run.teachers).trainer_alive()
    return bool(alive)
