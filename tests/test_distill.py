"""raptor distill: the fused student sequence pinned to the deployment cell, stacked teachers pinned to each
teacher file, the dataset of a behaviour-cloning rollout, and a tiny run that resumes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from raptor.conventions import OBS_P, OBS_V, TARGET_P, P, Q, V
from raptor.distill.collect import Dataset, collect
from raptor.distill.dagger import AUX_SCALE, DistillConfig, distill, student_sequence, train_epoch
from raptor.errors import ConfigError, PolicyFileError
from raptor.fileio import load_checked
from raptor.policy import load
from raptor.policy.io import default_metadata, save_policy
from raptor.policy.network import RaptorPolicyNet
from raptor.rl.config import TrainConfig
from raptor.rl.ppo import PPOConfig
from raptor.rl.teacher import QualityBar, load_teacher
from raptor.rl.teachers import TeacherSet
from raptor.rl.train import train
from raptor.sim import mdp
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    out = tmp_path_factory.mktemp("teachers") / "run"
    cfg = TrainConfig(steps=2048, eval_every_steps=2048, eval_episodes=10, threads=1, gain_episodes=10,
                      ppo=replace(PPOConfig(), envs_per_teacher=32, horizon=32, minibatches=2),
                      bar=replace(QualityBar(), episodes=20))
    train(str(out), "crazyflie,x500,race", None, cfg, progress=False)
    return out


def test_fused_sequence_matches_the_deployment_cell():
    torch.manual_seed(0)
    net = RaptorPolicyNet()
    with torch.no_grad():
        net.gru.h0.normal_()
    obs = torch.randn(50, 6, 22)
    ref, _ = net(obs)
    got = student_sequence(net, obs)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    g1 = torch.autograd.grad(got.square().sum(), list(net.parameters()))
    g2 = torch.autograd.grad(net(obs)[0].square().sum(), list(net.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_teacher_set_matches_each_teacher_file_and_labels_bc_rollouts(teachers):
    ts = TeacherSet(teachers, only_passed=False)
    assert ts.ids == [0, 1, 2] and [a.name for a in ts.airframes] == ["crazyflie", "x500", "race"]
    sub = TeacherSet(teachers, only_passed=False, ids="0,2")  # raptor distill --ids: a subset of the run
    assert sub.ids == [0, 2] and [a.name for a in sub.airframes] == ["crazyflie", "race"]
    with pytest.raises(ConfigError, match="bad --ids"):
        TeacherSet(teachers, only_passed=False, ids="zero")
    twice = TeacherSet(teachers, only_passed=False, repeat="1-2")  # --repeat-ids: listed again, at the end
    assert twice.ids == [0, 1, 2, 1, 2] and [a.name for a in twice.airframes][3:] == ["x500", "race"]
    o5 = torch.randn(5, 4, 29)
    torch.testing.assert_close(twice(o5)[3:], ts(o5[[0, 3, 4]])[1:])  # each repeat labels as its teacher
    with pytest.raises(ConfigError, match="--repeat-ids 7: .*out of range"):
        TeacherSet(teachers, only_passed=False, repeat="7")
    with pytest.raises(ConfigError, match="--repeat-ids 2 names none"):
        TeacherSet(teachers, only_passed=False, ids="0-1", repeat="2")
    obs = torch.randn(3, 5, 29)
    for k, i in enumerate(ts.ids):
        single, _ = load_teacher(teachers / "teachers" / f"{i:04d}" / "teacher.safetensors")
        torch.testing.assert_close(ts(obs)[k], single(obs[k:k + 1])[0].detach())
    cfg = EnvConfig(observation="student", target="hover", init=mdp.InitialStateConfig(max_position_m=0.5),
                    check_inputs=False)
    env = BatchedQuadrotorEnv(ts.airframes, 4, cfg, seed=0)
    offsets = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.3]])
    data = collect(env, ts, None, 30, offsets, seed=5)
    env.reset(seed=5)  # the same starts: the first student input is the start observation minus the offset
    first = env.observe()
    assert torch.allclose(data.student_obs[0], first - torch.cat([offsets.repeat_interleave(4, 0),
                                                                  torch.zeros(12, 19)], 1), atol=1e-6)
    t_obs = mdp.observe_privileged(env.params, env.state, env.prev_action_obs, torch.zeros(12, 6),
                                   env.external_force())
    torch.testing.assert_close(data.labels[0], ts(t_obs.reshape(3, 4, 29)).reshape(12, 4))
    assert data.mask[0].all() and data.labels.abs().max() <= 1
    weight = env.params.mass * torch.linalg.vector_norm(env.params.gravity, dim=-1)  # the episode's push, in g
    torch.testing.assert_close(data.disturbance, (env.external_force() / weight[:, None]).to(data.disturbance.dtype))


def test_disturbance_head_learns_the_push_and_leaves_the_student_unchanged(teachers, tmp_path):
    ts = TeacherSet(teachers, only_passed=False)
    cfg = EnvConfig(observation="student", target="hover", init=mdp.InitialStateConfig(max_position_m=0.5),
                    check_inputs=False)
    env = BatchedQuadrotorEnv(resolve_airframes("sampled:3:7"), 8, cfg, seed=0)  # pushed (the named frames are not)
    data = collect(env, ts, None, 40, None, seed=3)
    weight = env.params.mass * torch.linalg.vector_norm(env.params.gravity, dim=-1)
    torch.testing.assert_close(data.disturbance, (env.external_force() / weight[:, None]).to(data.disturbance.dtype))
    assert data.disturbance.abs().max() > 0.01
    torch.manual_seed(0)
    net, head = RaptorPolicyNet(), torch.nn.Linear(16, 3)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-2)

    # The head learns what the history reveals: here each episode's velocity drifts at its push (v = d t), the
    # way an uncompensated disturbance shows in flight.
    E, T = 48, 40
    d = 0.05 * torch.randn(E, 3, generator=torch.Generator().manual_seed(1))
    obs = torch.zeros(T, E, 22)
    obs[:, :, OBS_V] = 9.81 * d[None] * 0.01 * torch.arange(1, T + 1)[:, None, None]  # v [m/s] after t steps
    synth = Dataset(obs, torch.zeros(T, E, 4), torch.ones(T, E, dtype=torch.bool), torch.zeros(E),
                    torch.zeros(E, dtype=torch.bool), torch.zeros(1, E, 3), d, torch.ones(E, dtype=torch.bool))

    def head_error() -> float:
        with torch.no_grad():
            _, h = student_sequence(net, synth.student_obs, hidden=True)
            return float(((head(h[T // 2:]) - AUX_SCALE * d) ** 2).mean())

    constant_guess = float(((AUX_SCALE * d) ** 2).mean())  # what a head without the history can do
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        train_epoch(net, opt, synth, 16, gen, head, aux_weight=1.0)
    assert head_error() < 0.2 * constant_guess  # the GRU state now carries each episode's push
    out = tmp_path / "student"
    dcfg = DistillConfig(epochs=2, bc_epochs=1, episodes_per_teacher=2, episode_steps=30, batch_size=4,
                         holdout="sampled:2:4242", holdout_episodes=1, eval_every=1, only_passed=False, threads=1,
                         disturbance_aux_weight=1.0)
    distill(str(teachers), str(out), dcfg, progress=False)
    student = load(str(out / "student.safetensors"))
    assert sum(p.numel() for p in student.net.parameters()) == 2084  # the head is never exported
    assert "aux" in load_checked(out / "checkpoint.pt")  # ... but resumes with the run
    with pytest.raises(ConfigError, match="--disturbance-aux"):
        DistillConfig(disturbance_aux_weight=-1.0)


def test_distill_runs_resumes_and_writes_a_policy(teachers, tmp_path):
    out = tmp_path / "student"
    cfg = DistillConfig(epochs=3, bc_epochs=2, episodes_per_teacher=4, episode_steps=60, batch_size=8,
                        holdout="sampled:2:4242", holdout_episodes=2, eval_every=1, only_passed=False, threads=1)
    distill(str(teachers), str(out), cfg, progress=False)
    log = json.loads((out / "log.json").read_text())
    assert [e["phase"] for e in log] == ["bc", "bc", "dagger"] and "holdout" in log[-1]
    with pytest.raises(ConfigError, match="--resume"):
        distill(str(teachers), str(out), cfg, progress=False)
    distill(str(teachers), str(out), cfg, resume=True, progress=False, epochs=5)
    log = json.loads((out / "log.json").read_text())
    assert [e["epoch"] for e in log] == [0, 1, 2, 3, 4]
    policy = load(out / "student.safetensors")
    assert policy.metadata["provenance"]["source"] == "raptor distill"
    tw = [a.thrust_to_weight for a in TeacherSet(str(teachers), only_passed=False).airframes]
    assert policy.metadata["training_envelope"]["thrust_to_weight"] == [round(min(tw), 2), round(max(tw), 2)]
    policy.reset(2)
    assert policy.step(torch.zeros(2, 22)).shape == (2, 4)
    with pytest.raises(ConfigError, match="no passing"):
        distill(str(teachers), str(tmp_path / "other"), replace(cfg, only_passed=True), progress=False)


def test_resume_applies_epochs_and_refuses_a_new_recipe_or_teacher_set(teachers, tmp_path, capsys):
    """`raptor distill --resume` applies what says where and how long it runs (--epochs, --device, --threads) and
    says so; a flag that would change the recipe, or a teachers folder that no longer gives the teachers it started
    on (its per-teacher offsets would be misassigned), is refused in one line and nothing is trained or written."""
    import shutil

    from raptor.commands.cli import main

    run = tmp_path / "teachers"
    shutil.copytree(teachers, run)
    out = tmp_path / "student"
    cfg = DistillConfig(epochs=2, bc_epochs=1, episodes_per_teacher=2, episode_steps=30, batch_size=4,
                        holdout="sampled:2:4242", holdout_episodes=1, eval_every=1, only_passed=False, threads=1)
    distill(str(run), str(out), cfg, progress=False)
    base = ["distill", "--teachers", str(run), "--out", str(out), "--resume", "--no-progress", "--eval-episodes", "1"]
    capsys.readouterr()
    assert main(base + ["--lr", "0.0005"]) == 2
    err = capsys.readouterr().err
    assert "keeps its recipe: --lr is 0.001 in this run, not 0.0005; drop --lr" in err and err.count("\n") == 1
    assert main(base + ["--targets", "hover,thrown"]) == 2
    assert "--targets is hover in this run, not hover,thrown" in capsys.readouterr().err
    assert len(json.loads((out / "log.json").read_text())) == 2  # nothing trained by a refused resume
    assert main(base + ["--epochs", "3", "--lr", "0.001", "--include-failed"]) == 0  # the same values pass
    assert "resume: --epochs 3 (was 2)" in capsys.readouterr().out
    assert [e["epoch"] for e in json.loads((out / "log.json").read_text())] == [0, 1, 2]
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 3
    shutil.rmtree(run / "teachers" / "0001")  # the folder now gives two of the three teachers
    assert main(base + ["--epochs", "4"]) == 2
    assert "gives 2 teachers, not the 3 this distillation started on" in capsys.readouterr().err
    assert len(json.loads((out / "log.json").read_text())) == 3
    assert main(["distill", "--status", str(out)]) == 0  # where it stands, without --teachers/--out
    text = capsys.readouterr().out
    assert "3 teachers of" in text and "progress: 3/3 epochs" in text and "finished: student.safetensors" in text
    assert "best hover" in text and "at epoch" in text


def test_sigterm_finishes_the_epoch_under_way_and_resume_goes_on(teachers, tmp_path, monkeypatch, capsys):
    """A distillation stopped by SIGTERM (a job scheduler, `pkill`) or Ctrl-C keeps the epoch it was in, says where
    it stopped and how to go on, and --resume continues from the next epoch without redoing one."""
    import os
    import signal

    import raptor.distill.dagger as dagger

    calls, real = [], dagger.train_epoch

    def train_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 4:  # epoch 1's first pass (3 passes per epoch)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(dagger, "train_epoch", train_epoch)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "student"
    cfg = DistillConfig(epochs=4, bc_epochs=1, episodes_per_teacher=2, episode_steps=40, batch_size=4, passes=3,
                        holdout="sampled:2:4242", holdout_episodes=1, eval_every=1, only_passed=False, threads=1)
    with pytest.raises(KeyboardInterrupt):
        distill(str(teachers), str(out), cfg, progress=False)
    assert len(calls) == 6  # epoch 1 ran its three passes
    assert "interrupted after epoch 2 of 4" in capsys.readouterr().err
    assert [e["epoch"] for e in json.loads((out / "log.json").read_text())] == [0, 1]
    assert signal.getsignal(signal.SIGTERM) is before  # the run's handler is gone after it
    distill(str(teachers), str(out), cfg, resume=True, progress=False)
    assert [e["epoch"] for e in json.loads((out / "log.json").read_text())] == [0, 1, 2, 3]
    assert len(calls) == 12


def test_failed_episodes_count_as_evaluation_does(teachers):
    """The dataset's failed episodes are raptor.metrics' judgement of the same flights: terminated, or 0.1 m or more
    from the target at some step of the last second (recomputed here from the recorded p - p_des)."""
    ts = TeacherSet(teachers, only_passed=False)
    env = BatchedQuadrotorEnv(ts.airframes, 4, EnvConfig(observation="student", target="hover", check_inputs=False,
                                                         init=mdp.InitialStateConfig(max_position_m=0.5)), seed=0)
    data = collect(env, ts, None, 250, None, seed=4)
    far = (data.final_position[-100:].norm(dim=-1) >= 0.1).any(0)
    assert data.failed().tolist() == (data.terminated | far).tolist()


def test_warm_start_from_a_policy_file(teachers, tmp_path):
    start = tmp_path / "start.safetensors"
    torch.manual_seed(3)
    net = RaptorPolicyNet()
    save_policy(start, net, {**default_metadata("test"), "name": "start"})
    cfg = DistillConfig(epochs=2, bc_epochs=0, episodes_per_teacher=3, episode_steps=120, batch_size=3,
                        learning_rate=1e-12, holdout="sampled:2:4242", holdout_episodes=1, eval_every=1,
                        only_passed=False, threads=1, init_from=str(start))
    distill(str(teachers), str(tmp_path / "s"), cfg, progress=False)
    got = load(tmp_path / "s" / "last.safetensors")  # lr ~0: still the policy it started from
    for p, q in zip(got.net.parameters(), net.parameters()):
        torch.testing.assert_close(p, q)
    assert got.metadata["init_from"] == str(start)  # the provenance names the policy it started from
    log = json.loads((tmp_path / "s" / "log.json").read_text())
    assert log[0]["rollout_failed"] == 1.0  # an untrained network fails every episode on every airframe
    with pytest.raises(PolicyFileError, match="does not exist"):  # nothing written: the same command can rerun
        distill(str(teachers), str(tmp_path / "t"), replace(cfg, init_from=str(tmp_path / "nope.safetensors")),
                progress=False)
    assert not (tmp_path / "t" / "config.json").exists()


def test_moving_target_episodes_are_labelled_relative_to_the_target(teachers):
    """--targets step: the teachers label the state relative to the moving setpoint (what their training
    observation means), and the dataset's position record is p - p_des, as raptor eval scores it."""
    ts = TeacherSet(teachers, only_passed=False)
    cfg = EnvConfig(observation="student", target="step", init=mdp.InitialStateConfig(max_position_m=0.5),
                    check_inputs=False, step_time_s=(0.05, 0.05))
    env = BatchedQuadrotorEnv(ts.airframes, 3, cfg, seed=0)
    data = collect(env, ts, None, 20, None, seed=4)
    env.reset(seed=4)  # the same starts and steps
    labels = []
    for _ in range(20):
        tgt = env.target()
        obs = mdp.observe_privileged(env.params, env.state, env.prev_action_obs, tgt, env.external_force())
        labels.append(ts(obs.reshape(ts.K, -1, obs.shape[-1])).reshape(-1, 4))
        env.physics_step(labels[-1].to(env.state.dtype))  # BC: the teachers fly
    moved = torch.linalg.vector_norm(env.target()[:, TARGET_P], dim=-1)
    assert torch.allclose(moved, torch.full_like(moved, 0.5), atol=1e-5)  # the setpoint stepped by 0.5 m
    alive = data.mask[-1]
    torch.testing.assert_close(data.labels[:, alive], torch.stack(labels)[:, alive].to(data.labels.dtype))
    rel = env.state[:, P] - env.target()[:, TARGET_P]
    torch.testing.assert_close(data.final_position[-1][alive], rel[alive].to(data.final_position.dtype))
    with pytest.raises(ConfigError, match="--targets"):
        DistillConfig(targets=("circle",))


def test_thrown_episodes_start_as_the_thrown_scenario_and_end_only_at_its_crash_box(teachers):
    """--targets thrown: the episodes start from raptor eval's thrown starts (any attitude, up to 3 m/s and 10 rad/s
    per axis) with the origin as target, and run on past the training termination (2 m/s) until the 3 m crash box,
    so the student learns the recovery it is judged on; the teachers label every state."""
    from raptor.distill.dagger import target_config
    from raptor.sim.scenarios import scenario_config

    ts = TeacherSet(teachers, only_passed=False)
    base = EnvConfig(observation="student", target="hover", init=mdp.InitialStateConfig(max_position_m=0.5),
                     check_inputs=False, episode_steps=30)
    cfg = target_config(base, "thrown")
    assert cfg.init == scenario_config("thrown").init and cfg.crash_box_m == 3.0 and cfg.observation == "student"
    assert target_config(base, "step").target == "step" and target_config(base, "step").init == base.init
    env = BatchedQuadrotorEnv(ts.airframes, 64, cfg, seed=0)
    env.reset(seed=3)
    s0 = env.state.clone()
    v0 = s0[:, V].abs().amax(-1)  # world velocity
    _, qx, qy, _ = s0[:, Q].unbind(-1)
    upright = 1 - 2 * (qx ** 2 + qy ** 2)  # R_zz: the body z axis against the world's
    assert float(v0.max()) > 2.0 and bool((upright < 0).any())  # beyond the hover starts: fast, upside down
    data = collect(env, ts, None, 30, None, seed=3)
    assert bool(data.mask[5].all())  # nothing ends at the training limits (2 m/s) in the first steps
    env.reset(seed=3)
    t_obs = mdp.observe_privileged(env.params, env.state, env.prev_action_obs, torch.zeros(env.num_envs, 6),
                                   env.external_force())
    torch.testing.assert_close(data.labels[0], ts(t_obs.reshape(3, 64, 29)).reshape(-1, 4))
    assert DistillConfig(targets=("hover", "thrown")).targets == ("hover", "thrown")


def test_the_student_learns_and_flies_with_the_setpoint_lead_it_ships_with(teachers, tmp_path):
    """--lead K: on a figure-eight the student's recorded (and flown) position input is p - p_des led by the
    target's acceleration, clip(a_des / K, cap), exactly as raptor.policy.Policy applies the file's lead at
    deployment; hover inputs are untouched; the student's file carries the lead."""
    from raptor.policy.feedforward import SetpointLead

    ts = TeacherSet(teachers, only_passed=False)
    lead = SetpointLead(2.0, 0.3)  # a small k: leads up to the cap on this figure-eight (|a_des| up to ~1.6 m/s^2)
    cfg = EnvConfig(observation="student", target="figure_eight", init=mdp.InitialStateConfig(max_position_m=0.5),
                    check_inputs=False)
    env = BatchedQuadrotorEnv(ts.airframes, 2, cfg, seed=0)
    plain = collect(env, ts, None, 30, None, seed=4)
    led = collect(env, ts, None, 30, None, seed=4, lead=lead)
    torch.testing.assert_close(led.labels, plain.labels)  # the teachers fly the same states (BC)
    env.reset(seed=4)
    shifts = []
    for t in range(30):
        a = env.target_acceleration()
        shifts.append((a / 2.0).clamp(-0.3, 0.3))
        env.physics_step(plain.labels[t].to(env.state.dtype))
    shift = torch.zeros_like(led.student_obs)  # (T, E, 22): only the position error moves
    shift[..., OBS_P] = torch.stack(shifts).to(shift.dtype)
    alive = plain.mask[:, :, None]
    assert float(shift.abs().max()) > 0.29  # the cap is reached: the test sees the clip
    torch.testing.assert_close(torch.where(alive, led.student_obs, 0.0),
                               torch.where(alive, plain.student_obs - shift, 0.0))
    hover = BatchedQuadrotorEnv(ts.airframes, 2, replace(cfg, target="hover"), seed=0)
    torch.testing.assert_close(collect(hover, ts, None, 10, None, seed=4, lead=lead).student_obs,
                               collect(hover, ts, None, 10, None, seed=4).student_obs)
    out = tmp_path / "student"
    dcfg = DistillConfig(epochs=2, bc_epochs=1, episodes_per_teacher=2, episode_steps=40, batch_size=4,
                         holdout="sampled:2:4242", holdout_episodes=2, eval_every=1, only_passed=False, threads=1,
                         targets=("figure_eight",), lead_gain_s2=8.0)
    distill(str(teachers), str(out), dcfg, progress=False)
    policy = load(out / "student.safetensors")
    assert policy.lead == SetpointLead(8.0, 0.3)
    with pytest.raises(ConfigError, match="--lead"):
        DistillConfig(lead_gain_s2=-1.0)
