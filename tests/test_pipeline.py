"""`raptor pipeline`: the whole mission in one command, end to end on a CPU (--quick), resumable stage by stage."""

from __future__ import annotations

import json
import os
import time

import pytest

from raptor.commands.cli import main
from raptor.commands.pipeline import STAGES, PipelineRun


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
    assert main(["pipeline", "--out", str(out), "--resume", "--seed", "3"]) == 2  # refused, not silently dropped
    assert "--seed cannot change it" in capsys.readouterr().err
    assert main(["pipeline", "--out", str(out), "--resume", "--fast"]) == 2  # the teachers' recipe: refused too
    assert "--fast cannot change it" in capsys.readouterr().err
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


def test_airframes_added_before_the_retrain_stage_train_without_touching_the_finished(tmp_path, capsys):
    """--resume --add-airframes: the new airframes' teachers train with the run's recipe; the finished teachers, their
    ids and files stay as they are; the spec grows by appending; pipeline.json records the amendment."""
    from raptor.rl.run import RunDir, status
    from raptor.sim.airframe_files import resolve_airframes

    out = tmp_path / "run"
    assert main(["pipeline", "--airframes", "sampled:2:0", "--out", str(out), "--quick", "--no-progress",
                 "--retrain-rounds", "0", "--until", "teachers"]) == 0
    rd = RunDir(out / "train")
    before = {p: p.stat().st_mtime_ns for p in (out / "train" / "teachers").rglob("*") if p.is_file()}
    assert main(["pipeline", "--out", str(out), "--resume", "--add-airframes", "sampled:3:5:race-fast",
                 "--add-ids", "1", "--no-progress", "--until", "teachers"]) == 0
    rows = {r["id"]: r for r in status(rd)}
    assert sorted(rows) == [0, 1, 3] and all(r["state"] == "finished" for r in rows.values())
    assert rows[3]["airframe"] == resolve_airframes("sampled:3:5:race-fast")[1].name == "rfast5_1"
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing of teachers 0 and 1 rewritten
    record = PipelineRun(out).read()
    assert record["config"]["airframes"] == "sampled:2:0+sampled:3:5:race-fast"
    assert record["config"]["ids"] == "0-1,3" and record["amendments"][-1]["added"]["run_ids"] == "3-3"
    assert rd.read_run()["airframe_spec"] == "sampled:2:0+sampled:3:5:race-fast"
    (out / "train" / "airframes.json").unlink()  # as on a fresh clone: made again from the extended spec
    assert [a.name for a in rd.airframes()][2:] == ["rfast5_0", "rfast5_1", "rfast5_2"]
    # after the retrain stage started, or with a spec that does not parse: refused in one line, nothing written
    capsys.readouterr()
    resume = ["pipeline", "--out", str(out), "--resume", "--no-progress"]
    assert main(resume + ["--add-airframes", "sampled:2:9:warp"]) == 2
    assert "bad airframe spec" in capsys.readouterr().err
    assert PipelineRun(out).read() == record
    assert main(["pipeline", "--out", str(out), "--resume", "--no-progress", "--until", "retrain"]) == 0
    assert main(["pipeline", "--out", str(out), "--resume", "--add-airframes", "sampled:2:7", "--no-progress"]) == 2
    assert "retrain stage" in capsys.readouterr().err


def _commit_and_clone(repo, clone_to):
    """What a session leaves (git add -A; commit, with the project's .gitignore) and what the next one starts from
    (a fresh clone on another machine)."""
    import shutil
    import subprocess

    def git(*a, cwd=repo):
        subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True)

    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "stage")
    if clone_to.exists():
        shutil.rmtree(clone_to)
    git("clone", "-q", str(repo), str(clone_to), cwd=repo.parent)
    return clone_to


def test_a_committed_half_finished_run_resumes_on_a_fresh_clone(tmp_path, monkeypatch, capsys):
    """issue #42: a run lives in the repository. Stopped once in its teachers (one shard finished, the next one
    killed) and once in its distillation (2 of 4 epochs), each time committed with the project's .gitignore (no
    shard checkpoints, no lock, no airframes.json) and continued from a fresh clone: no finished teacher is trained
    or rewritten again, no finished epoch is redone, and the run finishes."""
    import hashlib
    import shutil
    import subprocess
    from pathlib import Path

    from raptor.distill import dagger
    from raptor.rl import train as train_mod

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "a"
    (repo / "training").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / ".gitignore", repo / ".gitignore")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    rel = Path("training") / "r"
    trained: list[list[int]] = []
    real_shard = train_mod.train_shard_batched

    def shard(rd, cfg, key, ids, *a, **k):  # the second shard is killed before it finishes
        trained.append(list(ids))
        if len(trained) == 2 and kill["teachers"]:
            (rd.checkpoints / f"{key}.pt").write_bytes(b"progress of a machine that is gone")
            raise KeyboardInterrupt
        return real_shard(rd, cfg, key, ids, *a, **k)

    real_epoch = dagger.train_epoch
    epochs_run: list[int] = []

    def epoch(*a, **k):  # the distillation is killed at its third epoch
        log = repo_now["dir"] / rel / "student" / "log.json"
        done = len(json.loads(log.read_text())) if log.is_file() else 0
        if kill["distill"] and done == 2:
            raise KeyboardInterrupt
        epochs_run.append(done)
        return real_epoch(*a, **k)

    monkeypatch.setattr(train_mod, "train_shard_batched", shard)
    monkeypatch.setattr(dagger, "train_epoch", epoch)
    kill = {"teachers": True, "distill": False}
    repo_now = {"dir": repo}
    monkeypatch.chdir(repo)
    start = ["pipeline", "--airframes", "sampled:4:0", "--out", str(rel), "--quick", "--no-progress",
             "--teachers-per-shard", "2", "--retrain-rounds", "0"]
    assert main(start + ["--until", "distill"]) == 130  # interrupted
    first = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for i in (0, 1) for p in (repo / rel / "train" / "teachers" / f"{i:04d}").iterdir()}
    assert not (repo / rel / "train" / "teachers" / "0002").exists()
    clone = _commit_and_clone(repo, tmp_path / "b")
    train_dir = clone / rel / "train"
    assert not (train_dir / "checkpoints").exists() and not (train_dir / "airframes.json").exists()
    assert (clone / rel / "train" / "teachers" / "0001" / "eval.json").is_file()

    # Session 2, on the clone: the teachers finish (only the killed shard trains), the distillation is killed
    kill.update(teachers=False, distill=True)
    repo_now["dir"] = clone
    monkeypatch.chdir(clone)
    trained.clear()
    main(["pipeline", "--status", str(rel)])
    status = capsys.readouterr().out
    assert "2/4 teachers finished" in status and "2 remaining" in status
    assert main(["pipeline", "--out", str(rel), "--resume", "--no-progress", "--until", "distill"]) == 130
    assert trained == [[2, 3]]
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for i in (0, 1) for p in (clone / rel / "train" / "teachers" / f"{i:04d}").iterdir()} == first
    assert epochs_run == [0, 1]
    log_before = json.loads((clone / rel / "student" / "log.json").read_text())
    clone2 = _commit_and_clone(clone, tmp_path / "c")
    assert (clone2 / rel / "student" / "checkpoint.pt").is_file()

    # Session 3, on a second clone: the distillation continues at epoch 2 and the run finishes
    kill.update(distill=False)
    repo_now["dir"] = clone2
    monkeypatch.chdir(clone2)
    trained.clear()
    epochs_run.clear()
    assert main(["pipeline", "--out", str(rel), "--resume", "--no-progress", "--until", "distill"]) == 0
    assert trained == [] and epochs_run == [2, 3]
    log = json.loads((clone2 / rel / "student" / "log.json").read_text())
    assert [e["epoch"] for e in log] == [0, 1, 2, 3] and log[:2] == log_before
    assert PipelineRun(clone2 / rel).read()["stages"]["distill"]["state"] == "done"


def test_status_estimates_a_retrain_round_at_its_own_steps(tmp_path, monkeypatch):
    """--status's CPU time left: seconds per env step of the run's fastest shard (+10 % for the finalization) times
    the steps each remaining teacher trains: a retrain round's 1.5x steps take 1.5x as long."""
    from raptor.commands import pipeline_status as ps
    from raptor.rl.config import TrainConfig

    rows = [{"id": 0, "state": "finished", "passed": True}, {"id": 1, "state": "training"}]

    class FakeRunDir:
        def __init__(self, root):
            pass

        def read_run(self):
            return {"config": TrainConfig(steps=1000, teachers_per_shard=1).to_json()}

        def teacher_dir(self, i):
            return tmp_path

    monkeypatch.setattr(ps, "status", lambda rd: rows)
    monkeypatch.setattr(ps, "RunDir", FakeRunDir)
    monkeypatch.setattr(ps, "read_json", lambda path, *a, **k: {"train_wall_s": 100.0, "steps": 1000})
    text, pace = ps._teacher_progress(PipelineRun(tmp_path))
    assert pace == pytest.approx(110.0) and "1 remaining" in text
    text, pace = ps._teacher_progress(PipelineRun(tmp_path), steps_left=1500)
    assert pace == pytest.approx(165.0) and "165 s per teacher" in text


def test_status_says_when_teachers_were_added_after_the_teacher_stages(tmp_path, monkeypatch):
    """A round trained into a finished run's teachers folder outside the pipeline (`raptor train --resume --ids`)
    shows in --status: the stage lines keep what the stages did, one more line says what the folder holds now."""
    from raptor.commands import pipeline_status as ps

    run = PipelineRun(tmp_path)
    run.teachers.mkdir()
    (run.teachers / "run.json").write_text("{}")
    d = {"stages": {"retrain": {"state": "done", "summary": "4/4 teachers finished, 3 at the quality bar after 1 "
                                                           "retrain round"}}}
    rows = [{"id": i, "state": "finished", "passed": i != 1} for i in range(4)]
    monkeypatch.setattr(ps, "RunDir", lambda root: None)
    monkeypatch.setattr(ps, "status", lambda rd: rows)
    assert ps._later_teachers(run, d) is None  # as the stages left it
    rows += [{"id": 4, "state": "finished", "passed": True}, {"id": 5, "state": "training"}]
    line = ps._later_teachers(run, d)
    assert "holds 6 teachers, 5 finished, 4 at the quality bar" in line and "raptor train --status" in line


def test_a_finished_run_ships_as_the_default_with_its_own_provenance(quick_run, tmp_path):
    """benchmarks/student_quality.py --ship OUT --from-run RUN: the run's policy named "default", the run's command
    and folder as provenance, its evaluate stage as the figures; weights unchanged; an unfinished run refused."""
    import importlib.util
    from pathlib import Path

    import torch

    from raptor.policy import load

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "student_quality.py"
    spec = importlib.util.spec_from_file_location("student_quality", bench)
    sq = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sq)
    out, _ = quick_run
    shipped_path = tmp_path / "default.safetensors"
    ev = sq.ship_from_run(str(out), str(shipped_path))
    shipped, run_policy = load(str(shipped_path)), load(str(out / "policy.safetensors"))
    assert shipped.metadata["name"] == "default"
    command = f"raptor pipeline --airframes sampled:4:0 --out {out} --quick"
    assert shipped.metadata["provenance"]["pipeline"] == [command]
    assert shipped.metadata["provenance"]["run_folder"] == out.as_posix()
    assert ev == shipped.metadata["evaluation"] == run_policy.metadata["evaluation"]
    for k, v in run_policy.net.flat_parameters().items():
        assert torch.equal(shipped.net.flat_parameters()[k], v)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    record = json.loads((out / "pipeline.json").read_text())
    record["stages"]["policy"] = {"state": "running"}
    (unfinished / "pipeline.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="policy stage is not done"):
        sq.ship_from_run(str(unfinished), str(tmp_path / "x.safetensors"))
    with pytest.raises(SystemExit, match="not a raptor pipeline run"):
        sq.ship_from_run(str(tmp_path / "nowhere"), str(tmp_path / "x.safetensors"))


def test_fast_gives_the_teacher_stage_the_measured_recipe(tmp_path, monkeypatch):
    """`raptor pipeline --fast` records raptor train's --fast recipe as its teacher stage's (flags given beside it
    win) and its command line, so a resumed run and the policy's provenance train the same teachers."""
    import raptor.commands.pipeline as cp
    from raptor.commands.pipeline_run import train_config
    from raptor.rl.config import FAST_RECIPE

    seen = {}
    monkeypatch.setattr(cp, "pipeline", lambda out, pc, **kw: seen.update(pc=pc, **kw))
    assert main(["pipeline", "--airframes", "sampled:4:0", "--out", str(tmp_path / "r"), "--fast",
                 "--steps", "100000", "--no-progress"]) == 0
    cfg = train_config(seen["pc"])
    assert all(getattr(cfg, k) == v for k, v in FAST_RECIPE.items()) and cfg.steps == 100_000
    assert seen["command"].endswith("--fast")
