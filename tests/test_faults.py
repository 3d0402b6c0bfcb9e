"""Fault injection: what an unlucky user does to the files and flags of train, distill, eval, export, sample and the
policy loader. Every case must end in a correct result, or in one line on stderr that names the file or flag and the
fix, with a non-zero exit: never a traceback, never a silent wrong result, nothing finished lost.

The counts of this suite are reported in docs/faults.md. (The HIL device that dies mid-run is in test_hil.py, the
C core's output guard in test_export.py, SIGKILL + resume of train and distill in test_train.py / test_distill.py.)
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import raptor.policy as rp
from raptor.errors import AirframeError, ConfigError, PolicyFileError, PolicyOutputError, RaptorError
from raptor.fileio import load_checked, save_checked
from raptor.policy.io import default_metadata
from raptor.rl.config import TrainConfig
from raptor.rl.run import RunDir, status
from raptor.rl.train import train
from raptor.sim.airframe import named_airframe
from raptor.sim.airframe_files import load_airframes

TINY = TrainConfig(steps=4096, teachers_per_shard=1, eval_every_steps=4096, eval_episodes=8,
                   feedback_gains=(1.0,), calibration_episodes=8, gain_episodes=8)


def cli(*args: str, limit_fsize: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    def pre():
        if limit_fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))

    return subprocess.run([sys.executable, "-m", "raptor", *args], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=pre)


def one_clear_line(r: subprocess.CompletedProcess, *words: str) -> None:
    """A refused command: exit 2, no traceback, one stderr line that says what and where."""
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("raptor") and ": error: " in ln]  # not progress
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def flip_byte(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x40
    path.write_bytes(bytes(data))


# 1, 5, 6: checkpoints and run files that verify themselves and fall back to the previous good one


@pytest.mark.parametrize("damage", ["bit flip", "truncated", "empty", "zeroed header"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, capfd):
    path = tmp_path / "state.pt"
    save_checked({"step": 1, "w": torch.ones(1000)}, path)
    save_checked({"step": 2, "w": torch.full((1000,), 2.0)}, path)
    if damage == "bit flip":
        flip_byte(path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-300])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(b"\0" * 64 + path.read_bytes()[64:])
    st = load_checked(path, what="training checkpoint")
    assert st["step"] == 1 and torch.equal(st["w"], torch.ones(1000))  # the previous good state, never a damaged one
    err = capfd.readouterr().err
    assert "state.pt is damaged" in err and "previous one" in err
    assert (tmp_path / "state.pt.corrupt").is_file()  # kept for inspection
    flip_byte(tmp_path / "state.pt.prev")
    path.write_bytes(b"garbage")
    with pytest.raises(RaptorError, match=r"state.pt is damaged .* and so is .*state.pt.prev"):
        load_checked(path, what="training checkpoint", fix="delete it")


def test_train_resumes_past_a_bit_flipped_checkpoint_and_status_tells_states_apart(tmp_path):
    out = tmp_path / "run"
    train(str(out), "crazyflie,x500", None, TINY, progress=False)
    rd = RunDir(out)
    assert [r["state"] for r in status(rd)] == ["finished", "finished"]
    # a checkpoint of a second attempt, then its .prev and a bit flip: --status says so, --resume falls back
    run = rd.read_run()
    (rd.teacher_dir(1) / "eval.json").unlink()
    from raptor.rl.run import shard_plan

    key = [k for k, ids, _ in shard_plan(run, TINY) if ids == [1]][0]
    ck = rd.checkpoints / f"{key}.pt"
    ck.parent.mkdir(exist_ok=True)
    ck.write_bytes(b"RAPTOR-CHECKED-1 0000 5\nxxxxx")
    rows = {r["id"]: r for r in status(rd)}
    assert rows[0]["state"] == "finished" and rows[1]["state"] == "damaged checkpoint" and "checksum" in rows[1]["note"]
    r = cli("train", "--out", str(out), "--resume", "--no-progress")
    one_clear_line(r, f"{key}.pt", "damaged", "delete")
    ck.unlink()
    # a truncated eval.json: named in --status and distill, never a JSONDecodeError traceback
    (rd.teacher_dir(0) / "eval.json").write_text('{"airframe": "crazyf')
    r = cli("train", "--status", str(out))
    assert r.returncode == 0 and "damaged: eval.json" in r.stdout and "Traceback" not in r.stderr
    r = cli("distill", "--teachers", str(out), "--out", str(tmp_path / "s"), "--no-progress")
    one_clear_line(r, "damaged", "--ids")


def test_ctrl_c_writes_a_checkpoint_and_status_says_interrupted(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "raptor", "train", "--airframes", "crazyflie", "--out", str(out), "--steps",
           "2000000", "--envs", "32", "--threads", "1", "--checkpoint-every", "3600", "--eval-every", "16384",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        first = proc.stdout.readline()  # the first selection evaluation: training is under way
        assert "selection eval" in first, first + proc.stderr.read()
        assert not list((out / "checkpoints").glob("*.pt"))  # no periodic checkpoint yet (every hour)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "checkpoint written" in err and "Traceback" not in err, err
    st = load_checked(next((out / "checkpoints").glob("*.pt")))
    assert st["ppo"]["env_steps"] >= 16384  # the work since the start was kept
    rows = status(RunDir(out))
    assert rows[0]["state"] == "interrupted" and rows[0]["steps"] == st["ppo"]["env_steps"]


# 2, 4, 8: flags that mean what they say


@pytest.mark.parametrize("args,words", [
    (("train", "--airframes", "crazyflie", "--steps", "0"), ("--steps", "positive")),
    (("train", "--airframes", "crazyflie", "--ids", "1-0"), ("1-0", "empty")),
    (("train", "--airframes", "crazyflie", "--device", "tpu"), ("tpu", "cpu, cuda")),
    (("train", "--airframes", "crazyflie", "--envs", "1000000000"), ("GiB", "--envs")),
    (("sample", "--seed", "4294967296"), ("4294967296", "0 to 4294967295")),
    (("eval", "--seed", str(2**64 + 1)), ("out of range",)),
    (("eval", "--airframes", "sampled:2:4294967297"), ("sampler seed", "out of range")),
    (("eval", "--device", "cuda:x"), ("cuda:x",)),
    (("hil", "--host-device", "--episodes", "0"), ("--episodes", "positive")),
])
def test_absurd_flags_are_refused_before_any_work(tmp_path, args, words):
    out = tmp_path / "out"
    r = cli(*args, *(("--out", str(out)) if args[0] in ("train",) else ()))
    one_clear_line(r, *words)
    assert not out.exists()  # no half-made run folder to trip over later


def test_resume_with_new_envs_is_taken_before_progress_and_refused_after(tmp_path):
    out = tmp_path / "run"
    rd = RunDir(out)
    rd.root.mkdir()
    from raptor.rl.train import start_or_resume

    start_or_resume(str(out), "crazyflie", None, TINY, resume=False)  # a run made, nothing trained (as after a crash)
    r = cli("train", "--out", str(out), "--resume", "--envs", "64", "--steps", "4096", "--no-progress",
            timeout=600)
    assert r.returncode == 0, r.stderr
    assert rd.read_run()["config"]["ppo"]["envs_per_teacher"] == 64
    r = cli("train", "--out", str(out), "--resume", "--envs", "32")
    one_clear_line(r, "--envs 64", "drop --envs")


def test_holdout_overlap_is_found_by_airframe_not_by_name(tmp_path):
    from raptor.distill.dagger import DistillConfig, distill
    from raptor.sim.airframe_files import save_airframes
    from raptor.sim.sampling import sample_airframes

    out = tmp_path / "run"
    train(str(out), "sampled:2:5", None, TINY, progress=False)
    renamed = [type(a)(f"other{i}", a.parameters, {}) for i, a in enumerate(sample_airframes(2, 5))]
    save_airframes(tmp_path / "same.json", renamed)
    cfg = DistillConfig(epochs=1, bc_epochs=1, holdout=str(tmp_path / "same.json"))
    with pytest.raises(ConfigError, match="overlap"):
        distill(str(out), str(tmp_path / "s"), replace(cfg, only_passed=False), progress=False)


# 7: disk full, read-only places, --out on a file


def test_disk_full_gives_one_line_and_leaves_no_temporary_file(tmp_path):
    r = cli("sample", "--n", "1000", "-o", str(tmp_path / "a.json"), limit_fsize=100_000)
    one_clear_line(r, "a.json", "free some space")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    r = cli("eval", "--airframes", "crazyflie", "--episodes", "2", "--out", str(tmp_path / "ev"),
            limit_fsize=1_000)
    one_clear_line(r, "ev/", "free some space")
    assert not list((tmp_path / "ev").glob(".*tmp"))


@pytest.mark.parametrize("command", ["eval", "train", "distill", "export", "sample"])
def test_out_on_a_file_or_under_one_is_refused_before_the_work(tmp_path, command):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    # sample's -o is a file (writing over one is what it is for): a folder there, or a path under a file, is refused
    outs = (tmp_path, blocker / "sub") if command == "sample" else (blocker, blocker / "sub")
    for out in outs:
        args = {"eval": ("eval", "--airframes", "crazyflie", "--episodes", "1", "--out", str(out)),
                "train": ("train", "--airframes", "crazyflie", "--out", str(out)),
                "distill": ("distill", "--teachers", str(tmp_path), "--out", str(out)),
                "export": ("export", "--out", str(out)),
                "sample": ("sample", "--n", "2", "-o", str(out))}[command]
        r = cli(*args)
        one_clear_line(r, out.name if out == tmp_path else blocker.name)
        assert blocker.read_text() == "keep me"


# 9: airframes


def _airframe_file(tmp_path: Path, change) -> Path:
    a = named_airframe("crazyflie")
    p = json.loads(json.dumps(a.parameters))
    change(p)
    path = tmp_path / "af.json"
    path.write_text(json.dumps([{"name": "x", "parameters": p}]))
    return path


def test_airframe_files_are_checked_at_the_boundary(tmp_path, capfd):
    def weak(p):
        p["dynamics"]["mass"] = p["dynamics"]["mass"] / 0.45  # thrust-to-weight 1.47 -> 0.66

    afs = load_airframes(_airframe_file(tmp_path, weak))
    assert afs[0].thrust_to_weight < 1 and "cannot hover" in capfd.readouterr().err
    cases = [
        (lambda p: p["dynamics"].__setitem__("mass", True), "'dynamics.mass' is true, a boolean"),
        (lambda p: p["dynamics"].__setitem__("masss", 0.03), "unknown field(s) 'dynamics.masss'"),
        (lambda p: p.__setitem__("dynamic", {}), "unknown field(s) 'dynamic'"),
        (lambda p: p["dynamics"].__setitem__("J", [[True, 0, 0], [0, 1, 0], [0, 0, 1]]), "a boolean"),
    ]
    for change, message in cases:
        with pytest.raises(AirframeError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_airframes(_airframe_file(tmp_path, change))
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(AirframeError, match="nests too deeply"):
        load_airframes(deep)
    r = cli("eval", "--airframes", str(deep))
    one_clear_line(r, "deep.json")


# 10: policies


def test_policies_overflow_nan_paths_and_failed_exports(tmp_path):
    net = rp.RaptorPolicyNet()
    with torch.no_grad():
        net.input_layer.weight.fill_(3e38)
        net.input_layer.bias.fill_(3e38)
    policy = rp.Policy(net, default_metadata(source="test"))
    policy.reset(1)
    obs = np.zeros((1, 22), np.float32)
    obs[0, 11] = 1.0
    with pytest.raises(PolicyOutputError, match="weights overflow"):
        policy.step(obs)
    with pytest.raises(PolicyFileError, match="refusing to save"):
        rp.save_policy(tmp_path / "nan.safetensors", _nan_net(), default_metadata(source="test"))
    # a valid file whose name is not UTF-8
    good = tmp_path / "good.safetensors"
    rp.save_policy(good, rp.RaptorPolicyNet(), default_metadata(source="test"))
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.safetensors")
    os.rename(good, odd)
    assert rp.load(odd).net is not None
    # an export that fails half way leaves the folder as it was
    out = tmp_path / "exp"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    from raptor.policy_export import export as ex

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    orig, ex.parity_sequence = ex.parity_sequence, boom
    try:
        with pytest.raises(ConfigError, match="nothing in .* was changed"):
            ex.export("default", "generic", out)
    finally:
        ex.parity_sequence = orig
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exp.export-")]


def _nan_net() -> rp.RaptorPolicyNet:
    net = rp.RaptorPolicyNet()
    with torch.no_grad():
        net.gru.h0[3] = float("nan")
    return net


def test_a_sigkill_at_a_random_moment_of_distill_loses_nothing_finished(tmp_path):
    """SIGKILL at random moments of `raptor distill` (seeded), then --resume: it finishes with every epoch logged
    once and in order."""
    teachers = tmp_path / "t"
    train(str(teachers), "crazyflie,x500", None, TINY, progress=False)
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "raptor", "distill", "--teachers", str(teachers), "--out", str(out),
           "--epochs", "8", "--bc-epochs", "2", "--episodes-per-teacher", "4", "--include-failed",
           "--eval-every", "3", "--threads", "1", "--no-progress", "--eval-episodes", "4"]
    rng = np.random.default_rng(11)
    for attempt in range(2):
        proc = subprocess.Popen(cmd + (["--resume"] if attempt else []), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
        time.sleep(float(rng.uniform(4, 9)))
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    log = json.loads((out / "log.json").read_text())
    assert [e["epoch"] for e in log] == list(range(8))
    assert (out / "student.safetensors").is_file()
