"""`raptor pipeline`: the whole mission in one command, end to end on a CPU (--quick), resumable stage by stage."""

from __future__ import annotations

import json
import os
import time

import pytest

from raptor.cli import main
from raptor.pipeline import STAGES, PipelineRun


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "run"
    t0 = time.perf_counter()
    assert main(["pipeline", "--airframes", "sampled:4:0", "--out", str(out), "--quick", "--no-progress"]) == 0
    return out, time.perf_counter() - t0


def test_quick_pipeline_runs_end_to_end(quick_run):
    out, wall = quick_run
    assert wall < 360  # the acceptance: under 6 minutes on 2 CPU cores
    run = PipelineRun(out)
    record = run.read()
    assert [record["stages"][s]["state"] for s in STAGES] == ["done"] * len(STAGES)
    rows = json.loads((out / "train" / "run.json").read_text())["ids"]
    assert rows == [0, 1, 2, 3]
    for i in rows:  # every teacher finalized with its evaluation beside the published policy's (or the reason)
        ev = json.loads((out / "train" / "teachers" / f"{i:04d}" / "eval.json").read_text())
        assert ev["episodes"] == 50 and ("reference_missing" in ev) == (ev["reference_termination_rate"] is None)
    from raptor.policy import load

    pol = load(str(out / "policy.safetensors"))
    prov = pol.metadata["provenance"]
    assert prov["source"] == "raptor pipeline"
    assert prov["pipeline"] == [f"raptor pipeline --airframes sampled:4:0 --out {out} --quick"]
    ev = pol.metadata["evaluation"]
    assert list(ev["scenarios"]) == ["hover", "yaw", "step", "recovery", "thrown", "tracking", "disturbance"]
    fresh = ev["airframes"]
    assert fresh == "sampled:6:2027" and ev["episodes"] == 4
    report = (out / "report.md").read_text()
    assert report.count("\n| ") == 8 and "raptor pipeline --airframes sampled:4:0" in report
    for scenario, row in ev["scenarios"].items():
        m = json.loads((out / "eval" / scenario / "student" / "metrics.json").read_text())
        assert m["overall"]["success_rate"] == row["student"]["success_rate"]
        assert "success_rate" in row["published"] or "missing" in row["published"]


def test_resume_of_a_finished_run_redoes_nothing(quick_run, capsys):
    out, _ = quick_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    assert main(["pipeline", "--out", str(out), "--resume"]) == 0
    assert time.perf_counter() - t0 < 10
    assert "nothing to do" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


def test_resume_continues_from_the_first_unfinished_stage(quick_run, capsys):
    out, _ = quick_run
    run = PipelineRun(out)
    record = run.read()
    for s in ("evaluate", "policy"):  # as if the run had stopped during the evaluation
        record["stages"][s] = {"state": "running"}
    run.write(record)
    os.remove(out / "policy.safetensors")
    teacher = out / "train" / "teachers" / "0000" / "teacher.safetensors"
    t_mtime = teacher.stat().st_mtime_ns
    assert main(["pipeline", "--out", str(out), "--resume", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "[1/5] teachers  done" in text and "[4/5] evaluate  done" in text
    assert teacher.stat().st_mtime_ns == t_mtime  # earlier stages untouched
    assert (out / "policy.safetensors").is_file()
    assert [run.read()["stages"][s]["state"] for s in STAGES] == ["done"] * len(STAGES)


def test_pipeline_refuses_what_would_lose_work(quick_run, tmp_path, capsys):
    out, _ = quick_run
    assert main(["pipeline", "--airframes", "sampled:4:0", "--out", str(out), "--quick"]) == 2
    assert "already holds a pipeline run" in capsys.readouterr().err
    assert main(["pipeline", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["pipeline", "--out", str(out), "--resume", "--steps", "5"]) == 2
    assert "stored recipe" in capsys.readouterr().err
    assert main(["pipeline", "--airframes", "sampled:4:0", "--out", str(tmp_path / "x"), "--fresh",
                 "sampled:4:0", "--quick", "--no-progress", "--retrain-rounds", "0"]) == 2
    assert "overlaps" in capsys.readouterr().err  # a fresh set equal to the teachers' is refused


def test_until_stops_after_a_stage_and_resume_finishes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pipeline", "--airframes", "sampled:2:0", "--out", str(out), "--quick", "--no-progress",
            "--retrain-rounds", "0"]
    assert main(args + ["--until", "retrain"]) == 0
    record = PipelineRun(out).read()
    assert record["stages"]["retrain"]["state"] == "done" and "distill" not in record["stages"]
    assert "stopped after retrain" in capsys.readouterr().out
    assert main(["pipeline", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert PipelineRun(out).read()["stages"]["policy"]["state"] == "done"
