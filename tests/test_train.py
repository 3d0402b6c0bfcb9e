"""raptor train: batched networks and optimizer pinned to torch, teacher files, the sb3 conversion, the run
directory (status, resume after SIGKILL, retrain-failed) and the ray backend on a local 2-CPU cluster."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from raptor.conventions import OBS_FORCE, OBS_P, TARGET_P, P, V, W
from raptor.errors import ConfigError, PolicyFileError, RaptorError
from raptor.fileio import load_checked
from raptor.rl.batched import BatchedAdam, BatchedMLP
from raptor.rl.config import TrainConfig, parse_ids
from raptor.rl.ppo import PPOConfig, TeacherActors
from raptor.rl.run import RunDir, status, status_table
from raptor.rl.teacher import QualityBar, fold_position_shift, load_teacher, save_teacher
from raptor.rl.train import keep_best_attempts, train

TINY = TrainConfig(steps=4096, eval_every_steps=2048, eval_episodes=20, ppo=replace(PPOConfig(), envs_per_teacher=32,
                                                                                     horizon=32, minibatches=2),
                   bar=replace(QualityBar(), episodes=50), teachers_per_shard=2, threads=1, gain_episodes=20)


def test_batched_mlp_is_k_independent_linear_stacks():
    torch.manual_seed(0)
    mlp = BatchedMLP(3, (26, 64, 64, 4))
    x = torch.randn(3, 7, 26)
    y = mlp(x)
    for k in range(3):
        s = mlp.teacher_state(k)
        h = x[k]
        for i in range(3):
            h = torch.nn.functional.linear(h, s[f"layer{i}.weight"], s[f"layer{i}.bias"])
            h = torch.relu(h) if i < 2 else h
        torch.testing.assert_close(y[k], h, rtol=1e-5, atol=1e-6)


def test_batched_adam_matches_torch_adam_per_teacher():
    """Two teachers trained together follow exactly the updates each would follow alone (torch.optim.Adam)."""
    torch.manual_seed(1)
    K = 2
    mlp = BatchedMLP(K, (5, 8, 3))
    singles = []
    for k in range(K):
        layers = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        st = mlp.teacher_state(k)
        with torch.no_grad():
            layers[0].weight.copy_(st["layer0.weight"]), layers[0].bias.copy_(st["layer0.bias"])
            layers[2].weight.copy_(st["layer1.weight"]), layers[2].bias.copy_(st["layer1.bias"])
        singles.append((layers, torch.optim.Adam(layers.parameters(), lr=1e-2, eps=1e-7)))
    opt = BatchedAdam(list(mlp.parameters()), K, lr=1e-2)
    xs, ys = torch.randn(K, 16, 5), torch.randn(K, 16, 3)
    for _ in range(20):
        opt.zero_grad()
        ((mlp(xs) - ys) ** 2).mean((1, 2)).sum().backward()
        opt.step()
        for k, (net, o) in enumerate(singles):
            o.zero_grad()
            ((net(xs[k]) - ys[k]) ** 2).mean().backward()
            o.step()
    for k, (net, _) in enumerate(singles):
        torch.testing.assert_close(net(xs[k]), mlp(xs)[k], rtol=1e-4, atol=1e-5)


def test_teacher_file_round_trip_and_corrupt_file(tmp_path):
    mlp = BatchedMLP(2, (26, 64, 64, 4), output_scale=0.5)
    save_teacher(tmp_path / "t.safetensors", mlp, 1, {"airframe": "x500"})
    actors, meta = load_teacher(tmp_path / "t.safetensors")
    x = torch.randn(1, 9, 26)
    torch.testing.assert_close(actors(x), TeacherActors(mlp)(x.expand(2, 9, 26))[1:2])
    assert meta["airframe"] == "x500" and meta["sizes"] == [26, 64, 64, 4]
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(PolicyFileError, match="not a readable teacher file"):
        load_teacher(tmp_path / "bad.safetensors")


def test_position_shift_folds_exactly_into_the_first_layer():
    gen = torch.Generator().manual_seed(3)
    mlp = BatchedMLP(2, (29, 16, 4), gen)
    before = TeacherActors(BatchedMLP(2, (29, 16, 4)))
    before.mlp.load_state_dict(mlp.state_dict())
    c = torch.randn(2, 3, generator=gen, dtype=torch.float64) * 0.2
    A = torch.randn(2, 3, 3, generator=gen, dtype=torch.float64)
    fold_position_shift(mlp, c, A)
    x = torch.randn(2, 50, 29, generator=gen)
    shifted = x.clone()
    shifted[..., OBS_P] += c[:, None].float() + x[..., OBS_FORCE] @ A.float()
    torch.testing.assert_close(TeacherActors(mlp)(x), before(shifted), rtol=1e-5, atol=1e-5)
    # a reference teacher (26 inputs) reads the first 26 values of the privileged observation
    old = TeacherActors(BatchedMLP(2, (26, 16, 4), gen))
    torch.testing.assert_close(old(x), old(x[..., :26]))
    with pytest.raises(ConfigError, match="privileged"):
        TeacherActors(mlp)(x[..., :26])


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_sb3_actor_conversion_matches_predict(algo):
    pytest.importorskip("stable_baselines3")
    from raptor.rl.sb3_backend import Sb3VecEnv, actor_from_sb3, sb3_model
    from raptor.sim.airframe import named_airframe
    from raptor.sim.config import EnvConfig

    env = Sb3VecEnv(named_airframe("crazyflie"), 1 if algo == "sac" else 4, EnvConfig(observation="teacher"))
    model = sb3_model(algo, env, seed=0, device="cpu")
    with torch.no_grad():  # move the weights away from the near-zero initial output
        for p in model.policy.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = np.random.default_rng(0).normal(size=(64, 26)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    actors, _ = actor_from_sb3(model, algo)
    got = actors(torch.as_tensor(obs)[None])[0].detach().numpy()
    np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1e-5)


def test_parse_ids_and_bad_specs():
    assert parse_ids("0-3,7", 10) == [0, 1, 2, 3, 7]
    assert parse_ids(None, 3) == [0, 1, 2]
    with pytest.raises(ConfigError, match="out of range"):
        parse_ids("5-12", 10)
    with pytest.raises(ConfigError, match="bad --ids"):
        parse_ids("a-b", 10)
    with pytest.raises(ConfigError, match="sb3"):
        TrainConfig(backend="batched", algo="sac")


def test_fast_is_the_measured_recipe_and_a_resume_keeps_its_own():
    """`raptor train --fast` trains with the recipe docs/benchmarks.md measured at 3x (compiled simulator, early
    finish from evaluations every 250k steps, the screened and tolerant gain calibration); a flag given beside it
    wins; a resumed run of another recipe refuses it in one line instead of changing what its teachers learn."""
    from raptor.commands.cli import build_parser
    from raptor.commands.train import _given, config_from_args
    from raptor.rl.config import resume_config

    parse = lambda *a: build_parser().parse_args(["train", "--airframes", "named", "--out", "x", *a])  # noqa: E731
    cfg = config_from_args(parse("--fast"))
    assert (cfg.compile, cfg.finish_early, cfg.eval_every_steps, cfg.finish_min_steps, cfg.gain_screen_episodes,
            cfg.gain_tolerance) == (True, True, 250_000, 750_000, 100, 0.01)
    assert cfg.steps == TrainConfig().steps and cfg.bar == TrainConfig().bar  # the bar and the budget unchanged
    assert config_from_args(parse("--fast", "--gain-tolerance", "0")).gain_tolerance == 0.0
    assert config_from_args(parse()).finish_early is False  # without it, today's recipe
    with pytest.raises(ConfigError, match="a resumed run keeps its recipe: --(finish-early|eval-every)"):
        resume_config(TrainConfig(), _given(parse("--resume", "--fast")), has_checkpoints=False)
    same, lines = resume_config(cfg, _given(parse("--resume", "--fast")), has_checkpoints=False)
    assert same == cfg and lines == []  # a --fast run resumed with --fast: nothing to change


def test_start_position_widens_only_the_training_starts():
    """`raptor train --start-position 0.6`: the envs the trainer steps start up to 0.6 m from the target on an
    axis; the hover scenario that selects and judges the teacher keeps its 0.5 m."""
    from raptor.commands.cli import build_parser
    from raptor.commands.train import config_from_args
    from raptor.rl.config import teacher_airframe, training_env_config
    from raptor.sim.airframe import named_airframe
    from raptor.sim.env import BatchedQuadrotorEnv
    from raptor.sim.scenarios import scenario_config

    args = build_parser().parse_args(["train", "--airframes", "named", "--out", "x", "--start-position", "0.6"])
    cfg = config_from_args(args)
    assert (cfg.init_min_position_m, cfg.init_max_position_m) == (0.6, 0.6)
    af = teacher_airframe(named_airframe("crazyflie"), cfg)
    reach = {}
    for name, env_cfg in (("trained", training_env_config(cfg)), ("judged", scenario_config("hover"))):
        env = BatchedQuadrotorEnv([af], 4000, env_cfg, seed=0)
        env.reset(seed=0)
        reach[name] = env.state[:, P].abs().max().item()
    assert 0.58 < reach["trained"] <= 0.6 + 1e-6 and 0.48 < reach["judged"] <= 0.5 + 1e-6
    with pytest.raises(ConfigError, match="--start-position must be positive"):
        TrainConfig(init_min_position_m=0.0, init_max_position_m=0.0)


def test_start_scale_widens_only_the_training_starts():
    from raptor.rl.config import teacher_airframe, training_env_config
    from raptor.sim.airframe import named_airframe
    from raptor.sim.env import BatchedQuadrotorEnv

    af = teacher_airframe(named_airframe("x500"), TrainConfig())  # starts: |v_i|, |w_i| <= 1 per axis
    speeds = {}
    for scale in (1.0, 2.0):
        env = BatchedQuadrotorEnv([af], 2000, training_env_config(TrainConfig(start_velocity_scale=scale)), seed=0)
        env.reset(seed=0)
        speeds[scale] = (env.state[:, V].abs().max().item(), env.state[:, W].abs().max().item())
    assert max(speeds[1.0]) <= 1.0 + 1e-6
    assert 1.9 < speeds[2.0][0] <= 2.0 + 1e-6 and 1.9 < speeds[2.0][1] <= 2.0 + 1e-6
    with pytest.raises(ConfigError, match="--start-scale"):
        TrainConfig(start_velocity_scale=0)
    with pytest.raises(ConfigError, match="--candidates"):
        TrainConfig(candidates=0)
    with pytest.raises(ConfigError, match="--candidates needs the batched or ray backend"):
        TrainConfig(backend="sb3", algo="sac", candidates=2)
    with pytest.raises(ConfigError, match="batched and ray backends'"):  # never trained without them unsaid
        TrainConfig(backend="sb3", algo="sac", compile=True)


def test_train_status_and_retrain_failed(tmp_path):
    out = tmp_path / "run"
    results = train(str(out), "crazyflie,x500", None, TINY, progress=False)
    assert [r["id"] for r in results] == [0, 1]
    rows = status(RunDir(out))
    keys = {"id", "airframe", "steps", "success_rate", "termination_rate", "mean_return", "mean_action_change",
            "passed"}
    assert all(keys <= set(r) for r in rows)
    assert [r["airframe"] for r in rows] == ["crazyflie", "x500"]
    for r in rows:  # 4096 steps cannot fly: both are below the bar, and the table says so
        assert r["state"] == "finished" and r["passed"] is False and r["steps"] == 4096
        ev = json.loads((out / "teachers" / f"{r['id']:04d}" / "eval.json").read_text())
        assert ev["episodes"] == 50 and ev["checks"]["success"] is False
        assert ev["reference_termination_rate"] is None or 0 <= ev["reference_termination_rate"] <= 1
    assert "2 below it" in status_table(rows)
    actors, meta = load_teacher(out / "teachers" / "0000" / "teacher.safetensors")
    assert meta["airframe"] == "crazyflie" and meta["output"] == "tanh"
    assert meta["sizes"][0] == 29  # privileged teachers by default: they see the disturbance force
    # an existing run is never overwritten by accident
    with pytest.raises(ConfigError, match="--resume"):
        train(str(out), "crazyflie", None, TINY, progress=False)
    # --retrain-failed archives the failed teachers and trains them again (another seed), here with a larger
    # selection evaluation (--eval-episodes), three seeds per teacher (--candidates) and starts out to 0.6 m
    # (--start-position), which the run's config records for the attempt
    train(str(out), retrain_failed=True, progress=False,
          retrain={"eval_episodes": 7, "candidates": 3, "init_min_position_m": 0.6, "init_max_position_m": 0.6})
    run = json.loads((out / "run.json").read_text())
    assert run["retrain_attempts"][0]["ids"] == [0, 1]
    assert run["config"]["eval_episodes"] == 7 and run["config"]["candidates"] == 3
    assert run["config"]["init_min_position_m"] == run["config"]["init_max_position_m"] == 0.6
    for i in (0, 1):  # the kept candidate (in teachers/, or archived if the first attempt ranked higher) is the one
        # the selection evaluations ranked first
        evs = [json.loads(f.read_text()) for f in [out / "teachers" / f"{i:04d}" / "eval.json",
                                                   *(out / "archive").glob(f"*/{i:04d}/eval.json")]]
        (ev,) = [e for e in evs if "selection_scores" in e]
        assert len(ev["selection_scores"]) == 3
        assert ev["chosen"] == ev["selection_scores"].index(max(ev["selection_scores"]))
    assert (out / "archive" / "attempt0" / "0000" / "eval.json").is_file()
    assert all(r["state"] == "finished" for r in status(RunDir(out)))
    # a retrain never makes a teacher worse: an archived attempt that ranks higher is put back
    # (train() already compared the two attempts; the loser of each is in archive/, under attempt0 or superseded)
    archived = sorted((out / "archive").glob("*/0001/eval.json"))
    assert len(archived) == 1 and (out / "teachers" / "0001" / "eval.json").is_file()
    ev = json.loads(archived[0].read_text())
    archived[0].write_text(json.dumps({**ev, "success_rate": 0.95, "termination_rate": 0.0, "passed": True}))
    assert keep_best_attempts(RunDir(out)) == [1]
    rows = status(RunDir(out))
    assert rows[1]["passed"] is True and rows[1]["success_rate"] == 0.95 and rows[0]["passed"] is False
    assert len(list((out / "archive").glob("*/0001/teacher.safetensors"))) == 1  # the other attempt, kept
    assert keep_best_attempts(RunDir(out)) == []  # nothing archived ranks higher any more


def test_time_limit_stops_training_and_finalizes_the_best_snapshot(tmp_path):
    """--time-limit: the shard stops at the limit (long before --steps), evaluates once more and writes finished
    teachers whose eval.json records the steps actually trained."""
    cfg = replace(TINY, steps=10**9, time_limit_s=1.0, teachers_per_shard=1)
    results = train(str(tmp_path / "run"), "crazyflie", None, cfg, progress=False)
    assert len(results) == 1
    steps = results[0]["steps"]
    assert 0 < steps < 10**7 and steps % (32 * 32) == 0  # whole iterations, far fewer than asked
    curve = json.loads((tmp_path / "run" / "teachers" / "0000" / "curve.json").read_text())
    assert curve[-1]["steps"] == steps  # the last selection evaluation is at the stop
    with pytest.raises(ConfigError, match="time-limit"):
        replace(TINY, time_limit_s=0.0)


def test_resume_without_run_and_corrupt_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(str(tmp_path / "none"), resume=True, progress=False)
    out = tmp_path / "run"
    cfg = replace(TINY, teachers_per_shard=1)
    train(str(out), "crazyflie", None, cfg, progress=False)
    run = json.loads((out / "run.json").read_text())
    run["ids"] = [0]
    (out / "checkpoints").mkdir(exist_ok=True)
    from raptor.rl.run import shard_plan

    key = shard_plan(run, cfg)[0][0]
    (out / "teachers" / "0000" / "eval.json").unlink()
    (out / "checkpoints" / f"{key}.pt").write_bytes(b"garbage")
    with pytest.raises(RaptorError, match="damaged.*no earlier one.*delete"):
        train(str(out), resume=True, progress=False)


def test_resume_applies_layout_flags_and_refuses_recipe_changes(tmp_path, capsys):
    """A resume applies the flags that change how a run trains (time limit, shard size, compile), says so and records
    them; a flag that would change what the teachers learn is refused in one line that names the flag, never dropped
    (a user's `--resume --time-limit 5` once trained on to the full steps, saying nothing of the limit)."""
    from raptor.commands.cli import main

    out = tmp_path / "run"
    cfg = replace(TINY, steps=8192 * 4)
    (out / "checkpoints").mkdir(parents=True)
    train(str(out), "crazyflie,x500", None, cfg, progress=False)
    unfinished = out / "teachers" / "0001"
    for f in unfinished.iterdir():  # one teacher unfinished again: the resume has work to do
        f.unlink()
    unfinished.rmdir()
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--time-limit", "0.01", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "resume: --time-limit 0.01 (was None)" in text
    stored = json.loads((out / "run.json").read_text())["config"]
    assert stored["time_limit_s"] == 0.01
    ev = json.loads((out / "teachers" / "0001" / "eval.json").read_text())
    assert ev["steps"] < cfg.steps  # the limit stopped it early
    assert main(["train", "--out", str(out), "--resume", "--steps", "999", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "keeps its recipe: --steps is 32768 in this run, not 999" in err and err.count("\n") == 1
    assert json.loads((out / "run.json").read_text())["config"]["steps"] == cfg.steps
    (out / "checkpoints" / "a0-x.pt").write_bytes(b"x")  # a shard in progress: its size stays
    assert main(["train", "--out", str(out), "--resume", "--teachers-per-shard", "1", "--no-progress"]) == 2
    assert "would restart them" in capsys.readouterr().err


def test_resume_with_more_ids_adds_teachers_and_keeps_the_finished(tmp_path):
    """`raptor train --resume --ids`: a run grows by the airframes it lacks (the same spec and recipe); the finished
    teachers are not touched, and a wrong spec or a run with unfinished teachers is refused with the fix."""
    out = tmp_path / "run"
    cfg = replace(TINY, teachers_per_shard=1)
    train(str(out), "crazyflie,x500,mrs", "0", cfg, progress=False)
    before = _tree_hash(out / "teachers" / "0000")
    with pytest.raises(ConfigError, match="not 'crazyflie,x500'"):
        train(str(out), "crazyflie,x500", "0-1", None, resume=True, progress=False)
    results = train(str(out), None, "0,2", None, resume=True, progress=False)
    assert [r["id"] for r in results] == [2]
    assert _tree_hash(out / "teachers" / "0000") == before
    run = json.loads((out / "run.json").read_text())
    assert run["ids"] == [0, 2] and run["retrain_attempts"][-1]["ids"] == [2]
    assert [r["airframe"] for r in status(RunDir(out))] == ["crazyflie", "mrs"]
    assert train(str(out), None, "0,2", None, resume=True, progress=False) == []  # nothing new: nothing trained
    (out / "teachers" / "0002" / "eval.json").unlink()  # teacher 2 unfinished: adding 1 must wait for it
    with pytest.raises(ConfigError, match="unfinished"):
        train(str(out), None, "1", None, resume=True, progress=False)
    assert json.loads((out / "run.json").read_text())["ids"] == [0, 2]


def _tree_hash(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(d.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_sigkill_then_resume_continues_and_keeps_finished_teachers(tmp_path):
    """Kill `raptor train` with SIGKILL while the second of two teachers trains; --resume continues that teacher
    from its last checkpoint and leaves the finished first teacher untouched."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "raptor", "train", "--airframes", "crazyflie,x500", "--out", str(out),
           "--steps", "300000", "--envs", "32", "--teachers-per-shard", "1", "--threads", "1",
           "--checkpoint-every", "0.3", "--eval-every", "100000", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = out / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            second = list(ckpts.glob("*.pt")) if (out / "teachers" / "0000" / "eval.json").is_file() else []
            if second and load_checked(second[0])["ppo"]["env_steps"] >= 60_000:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        else:
            pytest.fail("no checkpoint of the second teacher appeared")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "teachers" / "0001" / "eval.json").exists()
    first = _tree_hash(out / "teachers" / "0000")
    killed = load_checked(next(ckpts.glob("*.pt")))
    assert killed["ids"] == [1] and killed["ppo"]["env_steps"] >= 60_000
    rows = {r["id"]: r for r in status(RunDir(out))}
    # the killed process is gone: its teacher reads "interrupted" (resume it), not "training"
    assert rows[0]["state"] == "finished" and rows[1]["state"] == "interrupted" and rows[1]["steps"] >= 60_000
    res = subprocess.run(cmd[:4] + ["--out", str(out), "--resume", "--no-progress"], env=env, capture_output=True,
                         text=True, timeout=400)
    assert res.returncode == 0, res.stderr
    assert _tree_hash(out / "teachers" / "0000") == first  # never retrained or rewritten
    curve = json.loads((out / "teachers" / "0001" / "curve.json").read_text())
    assert curve[:len(killed["curves"][0])] == killed["curves"][0]  # continued, not restarted
    assert curve[-1]["steps"] >= 300_000 - 1024
    assert not list(ckpts.glob("*.pt"))
    assert sorted(p.name for p in (out / "teachers").iterdir()) == ["0000", "0001"]


def test_ray_backend_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    from raptor.rl.ray_backend import train_ray
    from raptor.rl.run import shard_plan
    from raptor.rl.train import start_or_resume

    cfg = replace(TINY, backend="ray", teachers_per_shard=1)
    rd, run, cfg = start_or_resume(str(tmp_path / "run"), "crazyflie,x500", None, cfg, False)
    try:
        results = train_ray(rd, cfg, shard_plan(run, cfg), progress=False, num_cpus=2)
    finally:
        ray.shutdown()
    assert sorted(r["id"] for r in results) == [0, 1]
    rows = status(rd)
    assert [r["state"] for r in rows] == ["finished", "finished"]
    assert [r["airframe"] for r in rows] == ["crazyflie", "x500"]
    load_teacher(rd.teacher_dir(1) / "teacher.safetensors")


def test_calibrate_gain_scales_the_feedback_around_hover_and_keeps_the_best(monkeypatch):
    """The chosen gain g turns every action pre-activation y into y0 + g (y - y0): differences between two
    observations scale by g exactly; each teacher keeps the gain its own evaluation scored best."""
    import raptor.rl.teacher as T
    from raptor.rl.batched import BatchedMLP
    from raptor.sim.airframe import named_airframe

    torch.manual_seed(0)
    mlp = BatchedMLP(2, (29, 16, 16, 8))
    x = torch.randn(2, 2, 29)
    y, log_std = mlp(x)[..., :4].detach().clone(), mlp(x)[..., 4:].detach().clone()
    afs = [named_airframe("crazyflie"), named_airframe("x500")]
    gains = (1.0, 1.5, 0.5)
    calls = []

    def fake_evaluate(actors, airframes, episodes, seed=0, device="cpu"):  # teacher 0 likes 1.5, teacher 1 0.5
        g = gains[len(calls)]
        calls.append(g)
        return [{"success_rate": 1.0 - abs(g - 1.5), "termination_rate": 0.0},
                {"success_rate": 1.0 - abs(g - 0.5), "termination_rate": 0.0}]

    monkeypatch.setattr(T, "evaluate_teachers", fake_evaluate)
    chosen = T.calibrate_gain(mlp, afs, gains, episodes=4, seed=0)
    assert chosen == [1.5, 0.5] and calls == list(gains)
    y_new = mlp(x)[..., :4].detach()
    torch.testing.assert_close(y_new[:, 0] - y_new[:, 1], torch.tensor([1.5, 0.5])[:, None] * (y[:, 0] - y[:, 1]))
    assert torch.equal(mlp(x)[..., 4:].detach(), log_std)  # the log-std head is left alone
    with pytest.raises(ConfigError, match="--feedback-gains"):
        TrainConfig(feedback_gains=())
    with pytest.raises(ConfigError, match="--feedback-gains"):
        TrainConfig(feedback_gains=(1.0, -1.0))


def test_calibrate_gain_retrim_scores_each_gain_on_its_own_trim(monkeypatch):
    """With retrim, every gain's teacher is trimmed again before it is scored (the trim moves only the first layer),
    the scoring sees that trim, and each teacher keeps the first layer of the gain it chose: folding a gain around an
    imprecise hover command moves the equilibrium, and the retrim puts it back on the target."""
    import raptor.rl.teacher as T
    from raptor.rl.batched import BatchedMLP
    from raptor.sim.airframe import named_airframe

    torch.manual_seed(0)
    mlp = BatchedMLP(2, (29, 16, 16, 8))
    first_w, first_b = mlp.weights[0].data.clone(), mlp.biases[0].data.clone()
    last_w = mlp.weights[-1].data.clone()
    afs = [named_airframe("crazyflie"), named_airframe("x500")]
    gains = (1.0, 1.5, 0.5)
    trims, scored = [], []

    def fake_offsets(m, airframes, episodes, seed=0, device="cpu", iterations=2, output="tanh"):
        assert episodes == 8 and iterations == 1 and m is mlp
        g = gains[len(trims)]
        torch.testing.assert_close(m.weights[0].data, first_w)  # each gain starts from the untrimmed first layer
        torch.testing.assert_close(m.biases[0].data, first_b)
        m.biases[0].data += g  # a trim that remembers which gain it was made for
        trims.append(g)
        return torch.full((2, 3), g, dtype=torch.float64)

    def fake_evaluate(actors, airframes, episodes, seed=0, device="cpu"):  # teacher 0 likes 1.5, teacher 1 0.5
        g = gains[len(scored)]
        assert torch.equal(actors.mlp.biases[0].data, first_b + g)  # scored with its own trim
        scored.append(g)
        return [{"success_rate": 1.0 - abs(g - 1.5), "termination_rate": 0.0},
                {"success_rate": 1.0 - abs(g - 0.5), "termination_rate": 0.0}]

    monkeypatch.setattr(T, "calibrate_offsets", fake_offsets)
    monkeypatch.setattr(T, "evaluate_teachers", fake_evaluate)
    total = torch.ones(2, 3, dtype=torch.float64)  # the first trim's shift, which the winner's retrim adds to
    chosen = T.calibrate_gain(mlp, afs, gains, episodes=4, seed=0, retrim=8, trim_out=total)
    assert chosen == [1.5, 0.5] and trims == list(gains) and scored == list(gains)
    torch.testing.assert_close(total, torch.tensor([[2.5] * 3, [1.5] * 3], dtype=torch.float64))
    torch.testing.assert_close(mlp.biases[0].data[0], first_b[0] + 1.5)  # each keeps its winner's trim
    torch.testing.assert_close(mlp.biases[0].data[1], first_b[1] + 0.5)
    torch.testing.assert_close(mlp.weights[-1].data[0, :, :4], 1.5 * last_w[0, :, :4])
    torch.testing.assert_close(mlp.weights[-1].data[1, :, :4], 0.5 * last_w[1, :, :4])


def test_calibrate_gain_screens_on_few_episodes_and_prefers_the_gain_closest_to_one(monkeypatch):
    """screen: every gain is scored on the screen's episodes, each teacher's two best again on all of them, and the
    choice is made on the full scores; tolerance: a gain within it of the best but closer to 1 wins."""
    import raptor.rl.teacher as T
    from raptor.rl.batched import BatchedMLP
    from raptor.sim.airframe import named_airframe

    torch.manual_seed(0)
    mlp = BatchedMLP(2, (29, 16, 16, 8))
    x = torch.randn(2, 3, 29)
    y = mlp(x)[..., :4].detach().clone()
    afs = [named_airframe("crazyflie"), named_airframe("x500")]
    gains = (1.0, 1.2, 1.4)
    # teacher 0: the screen ranks 1.4 > 1.2 > 1.0, the full episodes 1.2 (0.95) over 1.4 (0.90)
    # teacher 1: the screen ranks 1.4 > 1.0 > 1.2, the full episodes 1.4 (0.960) and 1.0 (0.955): within 0.01
    screen_scores = {1.0: (0.5, 0.8), 1.2: (0.7, 0.6), 1.4: (0.9, 0.9)}
    full_scores = {1.0: (0.0, 0.955), 1.2: (0.95, 0.0), 1.4: (0.90, 0.960)}
    calls = []

    def fake_evaluate(actors, airframes, episodes, seed=0, device="cpu"):
        out = actors.mlp(x)[..., :4]
        g = [round(float(((out[k, 0] - out[k, 1]) / (y[k, 0] - y[k, 1])).mean()), 3) for k in range(2)]
        calls.append((episodes, g))
        table = screen_scores if episodes == 20 else full_scores
        return [{"success_rate": table[g[k]][k], "termination_rate": 0.0} for k in range(2)]

    monkeypatch.setattr(T, "evaluate_teachers", fake_evaluate)
    chosen = T.calibrate_gain(mlp, afs, gains, episodes=100, seed=0, screen=20, tolerance=0.01)
    assert [c[0] for c in calls] == [20, 20, 20, 100, 100]  # three screens, then each teacher's two best in two rounds
    assert calls[3][1] == [1.4, 1.4] and calls[4][1] == [1.2, 1.0]
    assert chosen == [1.2, 1.0]  # teacher 1: 1.0 is within 0.01 of 1.4 and closer to 1
    y_new = mlp(x)[..., :4].detach()
    torch.testing.assert_close(y_new[:, 0] - y_new[:, 1], torch.tensor([1.2, 1.0])[:, None] * (y[:, 0] - y[:, 1]))
    with pytest.raises(ConfigError, match="--gain-tolerance"):
        TrainConfig(gain_tolerance=1.5)


def test_merge_candidates_imitates_the_candidates_mean(tmp_path):
    """`--candidates 2 --merge-candidates`: the written teacher is one actor trained on its candidates' mean action;
    on the states it visits it is closer to that mean than the first-ranked candidate it started from."""
    from raptor.rl.batched import BatchedMLP
    from raptor.rl.ppo import TeacherActors
    from raptor.rl.teacher import hover_config, merge_candidates
    from raptor.sim.airframe import named_airframe
    from raptor.sim.env import BatchedQuadrotorEnv

    torch.manual_seed(0)
    sizes = (29, 16, 16, 4)
    cands, init = BatchedMLP(2, sizes), BatchedMLP(1, sizes)
    init.load_teacher_state(0, cands.teacher_state(0))
    start = BatchedMLP(1, sizes)
    start.load_teacher_state(0, cands.teacher_state(0))
    af = [named_airframe("crazyflie")]
    merge_candidates(cands, init, af, rounds=20, envs=256, episode_steps=50, seed=0)
    env = BatchedQuadrotorEnv(af, 256, hover_config(), seed=9)
    obs = env.reset(seed=9).float()[None]
    with torch.no_grad():
        mean = TeacherActors(cands)(obs.expand(2, -1, -1)).mean(0)
        err_merged = (TeacherActors(init)(obs)[0] - mean).pow(2).mean()
        err_start = (TeacherActors(start)(obs)[0] - mean).pow(2).mean()
    assert err_merged < 0.3 * err_start
    # end to end: the run writes one teacher per airframe and records the merge
    out = tmp_path / "run"
    train(str(out), "crazyflie", None, replace(TINY, candidates=2, merge_candidates=True, merge_rounds=1,
                                                merge_envs=16), progress=False)
    ev = json.loads((out / "teachers" / "0000" / "eval.json").read_text())
    assert ev["merged"] is True and len(ev["selection_scores"]) == 2
    with pytest.raises(ConfigError, match="--merge-candidates needs --candidates 2"):
        TrainConfig(merge_candidates=True)


def test_langevin_fraction_sets_the_share_of_moving_target_episodes():
    """--langevin F: that fraction of the teachers' training episodes track the reference's Langevin target, whose
    target then moves (default: the airframe's own mixture, the reference's [0.5, 0.5] for sampled airframes; the
    named airframes' files hover only)."""
    import torch

    from raptor.errors import ConfigError
    from raptor.rl.config import TrainConfig, teacher_airframe, training_env_config
    from raptor.sim.airframe_files import resolve_airframes
    from raptor.sim.env import BatchedQuadrotorEnv

    def share(spec: str, fraction: float | None) -> tuple[float, BatchedQuadrotorEnv]:
        cfg = TrainConfig(langevin_fraction=fraction)
        env = BatchedQuadrotorEnv([teacher_airframe(a, cfg) for a in resolve_airframes(spec)], 400,
                                  training_env_config(cfg), seed=0)
        env.reset()
        return float(env.langevin.float().mean()), env

    assert abs(share("sampled:2:0", None)[0] - 0.5) < 0.06
    assert share("crazyflie,x500", None)[0] == 0.0
    assert share("crazyflie,x500", 1.0)[0] == 1.0 and share("sampled:2:0", 0.0)[0] == 0.0
    f, env = share("crazyflie", 0.25)
    assert abs(f - 0.25) < 0.06
    for _ in range(50):
        env.physics_step(torch.zeros(env.num_envs, 4))
    assert torch.equal(torch.linalg.vector_norm(env.target()[:, TARGET_P], dim=-1) > 1e-3, env.langevin)
    with pytest.raises(ConfigError, match="langevin"):
        TrainConfig(langevin_fraction=1.5)


def test_chunked_update_equals_the_update_over_all_teachers(monkeypatch):
    """The CPU update computes its loss and gradients over chunks of teachers (cache-sized); the teachers are
    independent, so after two iterations every parameter, optimizer moment and statistic equals the update over all K
    at once (to float summation order), and chunks of one teacher equal it too."""
    from raptor.rl import ppo as ppo_mod
    from raptor.rl.config import teacher_airframe, training_env_config
    from raptor.sim.airframe_files import resolve_airframes

    cfg = replace(TINY, steps=8192)
    afs = [teacher_airframe(a, cfg) for a in resolve_airframes("sampled:5:3")]
    runs = {}
    for name, samples in (("all", 10 ** 9), ("chunks of 2", 2 * 512), ("chunks of 1", 1)):
        monkeypatch.setattr(ppo_mod, "UPDATE_CHUNK_SAMPLES", samples)
        p = ppo_mod.BatchedPPO(afs, cfg.ppo, training_env_config(cfg), seed=4)
        assert len(ppo_mod.update_chunks(5, 512, p.device)) == {"all": 1, "chunks of 2": 3, "chunks of 1": 5}[name]
        stats = [p.iterate() for _ in range(2)]
        runs[name] = (p, stats)
    ref, ref_stats = runs["all"]
    for name in ("chunks of 2", "chunks of 1"):
        p, stats = runs[name]
        for a, b in zip([*ref.actor.parameters(), *ref.critic.parameters(), ref.log_std, *ref.optimizer.m,
                         *ref.optimizer.v], [*p.actor.parameters(), *p.critic.parameters(), p.log_std,
                                             *p.optimizer.m, *p.optimizer.v]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ref.optimizer.lr, p.optimizer.lr)
        for s0, s1 in zip(ref_stats, stats):
            torch.testing.assert_close(s0.policy_loss, s1.policy_loss, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(s0.value_loss, s1.value_loss, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_ppo_learns_to_hover(tmp_path):
    """The trainer learns: one PPO teacher for the x500 from scratch, 1M steps (36 s on 2 cores), reaches the quality
    bar on 500 fresh hover episodes (measured 98.4 % success, 1.6 % terminated), where 4,096 steps cannot fly."""
    cfg = TrainConfig(steps=1_000_000, eval_every_steps=500_000, eval_episodes=50, teachers_per_shard=1,
                      gain_episodes=100)
    train(str(tmp_path / "run"), "x500", None, cfg, progress=False)
    (row,) = status(RunDir(tmp_path / "run"))
    assert row["passed"] is True and row["success_rate"] >= 0.9 and row["termination_rate"] <= 0.05, row


def test_run_format_versions_migrate_old_runs_and_refuse_newer_ones(tmp_path):
    """run.json carries a format version: a version-1 run (written before the privileged observation, short training
    episodes, capped starts and the gain calibration) reads as the recipe it trained with; a newer version and a
    config that does not match are refused with the fix, never filled with today's defaults silently."""
    import json

    from raptor.rl.config import RUN_VERSION, TrainConfig, migrate_run
    from raptor.rl.run import RunDir

    current = TrainConfig().to_json()
    v1 = {k: v for k, v in current.items() if k not in ("observation", "train_episode_steps", "init_max_position_m",
                                                        "feedback_gains", "merge_candidates")}
    run = migrate_run({"format": "raptor-teachers", "version": 1, "config": v1})
    cfg = TrainConfig.from_json(run["config"])
    assert run["version"] == RUN_VERSION
    assert (cfg.observation, cfg.train_episode_steps, cfg.init_max_position_m, cfg.feedback_gains) == \
        ("teacher", 500, None, (1.0,))
    assert cfg.merge_candidates is False and cfg.ppo == TrainConfig().ppo
    v2 = {k: v for k, v in current.items() if k not in ("targets", "target_feedforward")}  # before teacher targets
    cfg2 = TrainConfig.from_json(migrate_run({"format": "raptor-teachers", "version": 2, "config": v2})["config"])
    assert cfg2.targets is None and cfg2.target_feedforward is False
    v5 = {k: v for k, v in current.items() if k not in ("give_up_below", "give_up_min_steps")}  # before giving up
    cfg5 = TrainConfig.from_json(migrate_run({"format": "raptor-teachers", "version": 5, "config": v5})["config"])
    assert cfg5.give_up_below == 0.0  # an early-finish run of version 5 never gave a teacher up
    v6 = {k: v for k, v in current.items() if k != "give_up_stall_steps"}  # before the stall test
    cfg6 = TrainConfig.from_json(migrate_run({"format": "raptor-teachers", "version": 6, "config": v6})["config"])
    assert cfg6.give_up_stall_steps == 0 and cfg6.give_up_below == current["give_up_below"]
    v7 = {k: v for k, v in current.items() if k != "gain_retrim"}  # before each gain was scored on its own trim
    cfg7 = TrainConfig.from_json(migrate_run({"format": "raptor-teachers", "version": 7, "config": v7})["config"])
    assert cfg7.gain_retrim is False and TrainConfig().gain_retrim is True
    v8 = {k: v for k, v in current.items() if k not in ("gain_screen_episodes", "gain_tolerance")}
    cfg8 = TrainConfig.from_json(migrate_run({"format": "raptor-teachers", "version": 8, "config": v8})["config"])
    assert (cfg8.gain_screen_episodes, cfg8.gain_tolerance, cfg8.gain_retrim) == (0, 0.0, True)
    with pytest.raises(ConfigError, match="newer raptor"):
        migrate_run({"format": "raptor-teachers", "version": RUN_VERSION + 1, "config": current})
    with pytest.raises(ConfigError, match="another version"):
        TrainConfig.from_json({k: v for k, v in current.items() if k != "seed"})
    (tmp_path / "run.json").write_text(json.dumps({"format": "raptor-teachers", "version": RUN_VERSION + 1}))
    with pytest.raises(ConfigError, match="upgrade raptor"):
        RunDir(tmp_path).read_run()


def test_missing_airframes_file_is_made_again_from_the_spec_and_checked(tmp_path):
    """A run committed without airframes.json (regenerable, 4.8 MB for sampled:1000:0+sampled:200:1:race) makes it
    again from its spec; where the spec no longer makes the airframes the teachers were trained on, it says so."""
    out = tmp_path / "run"
    train(str(out), "sampled:3:0", "0", replace(TINY, teachers_per_shard=1), progress=False)
    rd = RunDir(out)
    before = [a.parameters for a in rd.airframes()]
    rd.airframes_file.unlink()
    assert [a.parameters for a in rd.airframes()] == before and rd.airframes_file.is_file()
    rd.airframes_file.unlink()
    own = out / "teachers" / "0000" / "airframe.json"
    d = json.loads(own.read_text())
    d["parameters"]["dynamics"]["mass"] *= 2
    own.write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="samples differently"):
        rd.airframes()


def test_keep_continues_the_kept_teachers_with_their_own_state():
    """BatchedPPO.keep: the teachers that stay keep their networks, exploration, optimizer moments and learning
    rates exactly; the batch shrinks and trains on."""
    from raptor.rl.config import teacher_airframe, training_env_config
    from raptor.rl.ppo import BatchedPPO
    from raptor.sim.airframe_files import resolve_airframes

    afs = [teacher_airframe(a, TINY) for a in resolve_airframes("sampled:3:2")]
    p = BatchedPPO(afs, TINY.ppo, training_env_config(TINY), seed=1)
    p.iterate()
    before = {"w": [w.detach().clone() for w in p.actor.weights], "c": [w.detach().clone() for w in p.critic.weights],
              "s": p.log_std.detach().clone(), "m": [m.clone() for m in p.optimizer.m], "lr": p.optimizer.lr.clone()}
    p.keep([0, 2])
    assert p.K == 2 and p.env.num_envs == 2 * TINY.ppo.envs_per_teacher and p.airframes == [afs[0], afs[2]]
    for a, b in zip(before["w"], p.actor.weights):
        assert torch.equal(a[[0, 2]], b)
    for a, b in zip(before["c"], p.critic.weights):
        assert torch.equal(a[[0, 2]], b)
    assert torch.equal(before["s"][[0, 2]], p.log_std) and torch.equal(before["lr"][[0, 2]], p.optimizer.lr)
    for a, b in zip(before["m"], p.optimizer.m):
        assert torch.equal(a[[0, 2]], b)
    stats = p.iterate()
    assert stats.policy_loss.shape == (2,) and p.iteration == 2


def test_finish_early_stops_a_teacher_at_the_bar_and_trains_the_rest_on(tmp_path, monkeypatch, capsys):
    """TrainConfig.finish_early: a teacher whose selection evaluations clear the bar twice in a row leaves the
    batch (its snapshot finalized and judged as every teacher's, eval.json records the steps it trained); the
    other trains to the end. Here the clearing is forced for teacher 0 (tiny runs reach no bar)."""
    from raptor.rl import shard

    monkeypatch.setattr(shard.EarlyFinish, "clears", lambda self, k, e: k == 0)
    cfg = replace(TINY, steps=12 * 1024, eval_every_steps=2048, finish_early=True, finish_min_steps=0,
                  teachers_per_shard=2, ppo=replace(TINY.ppo, horizon=32, envs_per_teacher=32))
    out = tmp_path / "run"
    train(str(out), "crazyflie,x500", None, cfg, progress=False)
    ev = [json.loads((out / "teachers" / f"{i:04d}" / "eval.json").read_text()) for i in (0, 1)]
    curve0 = json.loads((out / "teachers" / "0000" / "curve.json").read_text())
    assert len(curve0) == 2 and ev[0]["steps"] == curve0[-1]["steps"] < ev[1]["steps"]
    assert ev[1]["steps"] >= cfg.steps and ev[0]["episodes"] == ev[1]["episodes"] == cfg.bar.episodes
    log = capsys.readouterr().out  # every selection evaluation is reported, the early finish with it
    assert log.count("selection eval") == cfg.steps // cfg.eval_every_steps and "1 at the bar twice in a row" in log


def test_finish_early_gives_up_a_teacher_far_below_the_bar(tmp_path, capsys):
    """With --finish-early, a teacher whose success stays below --give-up-below in two selection evaluations in a
    row after --give-up-min-steps leaves training; it is finalized and judged as every teacher (a tiny run's
    teachers score 0 % and are given up at the second evaluation after 4096 steps), and the log says so."""
    cfg = replace(TINY, steps=12 * 1024, eval_every_steps=2048, finish_early=True, give_up_below=0.7,
                  give_up_min_steps=4096, give_up_stall_steps=2048, teachers_per_shard=2,
                  ppo=replace(TINY.ppo, horizon=32, envs_per_teacher=32))
    out = tmp_path / "run"
    train(str(out), "crazyflie,x500", None, cfg, progress=False)
    for i in (0, 1):
        ev = json.loads((out / "teachers" / f"{i:04d}" / "eval.json").read_text())
        curve = json.loads((out / "teachers" / f"{i:04d}" / "curve.json").read_text())
        assert [round(e["steps"], -3) for e in curve] == [2000, 4000, 6000]  # 2048, 4096 and 6144 (iterations)
        assert ev["steps"] == curve[-1]["steps"] < cfg.steps and not ev["passed"]
        assert ev["episodes"] == cfg.bar.episodes
    assert "2 below 70 % success twice in a row and not climbing, given up" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--give-up-below"):
        replace(TINY, give_up_below=1.5)


def test_a_teacher_still_climbing_is_not_given_up():
    """The give-up rule's stall test: below 70 % twice in a row after 1.5M steps stops a teacher only if its best in
    the last 500k steps is under 10 points above its best before (curves of ids 0612 and 0623, fresh-id run of
    2026-12-07: 0612 climbed 5 -> 42 -> 61 % and passes at 3M; 0623 sat at 51-58 % and fails)."""
    from raptor.rl.shard import EarlyFinish

    def curve(successes):
        return [{"steps": 250_000 * (i + 1), "success_rate": s} for i, s in enumerate(successes)]

    climbing = curve([0.0, 0.15, 0.16, 0.09, 0.05, 0.42, 0.61])  # 0.25M ... 1.75M
    flat = curve([0.05, 0.52, 0.52, 0.55, 0.52, 0.58, 0.51])
    rule = EarlyFinish.__new__(EarlyFinish)
    rule.cfg = TrainConfig(finish_early=True)
    assert rule.hopeless([0, 1], [climbing, flat]) == [1]
    rule.cfg = TrainConfig(finish_early=True, give_up_stall_steps=0)  # the level test alone (run format 6)
    assert rule.hopeless([0, 1], [climbing, flat]) == [0, 1]
    rule.cfg = TrainConfig(finish_early=True, give_up_min_steps=2_000_000)  # not before --give-up-min-steps
    assert rule.hopeless([0, 1], [climbing, flat]) == []

