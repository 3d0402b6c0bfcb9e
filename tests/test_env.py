"""The batched env and its gymnasium adapters: contracts, episode semantics, robustness, input errors."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import raptor  # noqa: F401  (registers raptor/Quadrotor-v0)
from raptor.conventions import OBS_FORCE, OBS_MOTORS, OBS_P, OBS_PREV_ACTION, TARGET_P, M, P, Q, V
from raptor.errors import InputError
from raptor.sim import mdp
from raptor.sim.airframe import Airframe, named_airframe
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.gym_env import QuadrotorVectorEnv
from raptor.sim.sampling import sample_airframes


def test_single_env_passes_gymnasium_and_sb3_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("raptor/Quadrotor-v0")
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make("raptor/Quadrotor-v0", airframe="x500").unwrapped, warn=True)


def test_vector_env_same_step_autoreset_keeps_truncation_distinct():
    env = QuadrotorVectorEnv("crazyflie", 8, EnvConfig(episode_steps=20), seed=0)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (8, 22) and env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    hover = np.full((8, 4), named_airframe("crazyflie").hover_action, np.float32)
    saw_trunc = False
    for t in range(20):
        obs, rew, term, trunc, info = env.step(hover)
        assert not (term & trunc).any()
        if trunc.any():
            saw_trunc = True
            assert t == 19 and "final_obs" in info and info["_final_obs"][trunc].all()
            # the returned observation of a reset env is a fresh start, not the final state
            assert not np.allclose(obs[trunc], info["final_obs"][trunc])
    assert saw_trunc


def test_termination_gives_penalty_and_reset():
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 4, EnvConfig(dtype="float64"), seed=0)
    env.reset()
    far = env.state.clone()
    far[:, 0] = 0.999
    far[:, 7] = 1.0  # moving out of the 1 m box
    env.set_state(far)
    obs, rew, term, trunc, info = env.step(torch.zeros(4, 4, dtype=torch.float64))
    assert term.all() and not trunc.any()
    assert torch.all(rew == -100.0)
    assert torch.all(env.steps == 0)  # autoreset happened
    assert torch.allclose(info["final_observation"][:, 0], torch.full((4,), 1.009, dtype=torch.float64), atol=1e-3)


def test_an_airframe_files_own_reward_is_not_silently_ignored():
    a = named_airframe("crazyflie")
    p = json.loads(json.dumps(a.parameters))
    p["mdp"]["reward"]["termination_penalty"] = -300.0
    pushed = Airframe("crazyflie-harsh", p, a.meta)
    with pytest.warns(UserWarning, match=r"termination_penalty = -300.0.*EnvConfig\(reward=RewardConfig"):
        env = BatchedQuadrotorEnv([pushed], 2, EnvConfig(dtype="float64"), seed=0)
    env.reset()
    far = env.state.clone()
    far[:, 0] = 1.5
    env.set_state(far)
    _, rew, term, _, _ = env.step(torch.zeros(2, 4, dtype=torch.float64))
    assert term.all() and torch.all(rew == -100.0)  # the env's reward applies, as the warning says
    env = BatchedQuadrotorEnv([pushed], 2, EnvConfig(reward=mdp.RewardConfig(termination_penalty=-300.0)), seed=0)
    env.reset()
    env.set_state(far.float())
    assert torch.all(env.step(torch.zeros(2, 4))[1] == -300.0)


def test_seeded_resets_are_deterministic():
    a = BatchedQuadrotorEnv(sample_airframes(3, seed=2), 5, seed=11)
    b = BatchedQuadrotorEnv(sample_airframes(3, seed=2), 5, seed=11)
    torch.testing.assert_close(a.reset(), b.reset())
    torch.testing.assert_close(a.reset(seed=4), b.reset(seed=4))


def test_initial_state_distribution_reference_and_full_attitude():
    af = [named_airframe("crazyflie")]
    env = BatchedQuadrotorEnv(af, 4000, EnvConfig(dtype="float64"), seed=0)
    env.reset()
    q = env.state[:, Q]
    tilt = 2 * torch.acos(q[:, 0].abs().clamp(max=1))
    assert tilt.max() <= 1.0 + 1e-9  # the reference ignores max_angle: angle ~ U(0, 1 rad)
    guided = (env.state[:, :3].abs().sum(-1) == 0)
    assert 0.07 < guided.double().mean() < 0.13  # guidance 0.1
    assert env.state[:, :3].abs().max() <= 0.5
    m = env.state[:, M]
    assert m.min() >= 0 and m.max() <= 0.5  # motors ~ U(min, min + (max - min) / 2)
    full = BatchedQuadrotorEnv(af, 4000, EnvConfig(dtype="float64", init=mdp.InitialStateConfig(attitude="full")),
                               seed=0)
    full.reset()
    q = full.state[:, Q]
    yaw = torch.atan2(2 * (q[:, 0] * q[:, 3] + q[:, 1] * q[:, 2]), 1 - 2 * (q[:, 2] ** 2 + q[:, 3] ** 2))
    assert (yaw.abs() > 2.5).double().mean() > 0.1  # any yaw
    assert (2 * torch.acos(q[:, 0].abs()) > 2.0).double().mean() > 0.2


def test_teacher_observation_and_langevin_target():
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 16, EnvConfig(observation="teacher", target="langevin"),
                              seed=0)
    obs = env.reset()
    assert obs.shape == (16, 26)
    # after reset the history is the normalized motors
    torch.testing.assert_close(obs[:, OBS_MOTORS], obs[:, OBS_PREV_ACTION])
    for _ in range(100):
        obs, *_ = env.step(torch.zeros(16, 4))
    tgt = env.target()
    assert tgt.abs().max() > 1e-3  # the target moves
    torch.testing.assert_close(obs[:, OBS_P], env.state[:, P] - tgt[:, TARGET_P])


def test_privileged_observation_is_the_teacher_one_plus_the_force_the_dynamics_apply():
    afs = sample_airframes(8, seed=3)
    priv = BatchedQuadrotorEnv(afs, 4, EnvConfig(observation="privileged", target="langevin", dtype="float64"), seed=2)
    teach = BatchedQuadrotorEnv(afs, 4, EnvConfig(observation="teacher", target="langevin", dtype="float64"), seed=2)
    o_p, o_t = priv.reset(), teach.reset()
    assert o_p.shape == (32, 29) and priv.config.obs_dim == 29
    for _ in range(3):
        torch.testing.assert_close(o_p[:, :26], o_t)
        weight = priv.params.mass * 9.81
        torch.testing.assert_close(o_p[:, OBS_FORCE] * weight[:, None], priv.force, rtol=1e-3, atol=1e-12)
        a = torch.full((32, 4), 0.1, dtype=torch.float64)
        o_p, *_ = priv.step(a)
        o_t, *_ = teach.step(a)
    # the force is what the dynamics apply: the same start without it falls slower or faster by f/m
    x0 = priv.state.clone()
    priv.set_state(x0, force=priv.force)
    v0 = priv.state[:, V].clone()
    priv.physics_step(a)
    dv_force = priv.state[:, V] - v0
    priv.set_state(x0)
    priv.physics_step(a)
    dv_none = priv.state[:, V] - v0
    torch.testing.assert_close((dv_force - dv_none) / priv.params.dt[:, None],
                               o_p[:, OBS_FORCE] * 9.81, rtol=2e-3, atol=1e-9)


def test_float32_and_float64_agree():
    afs = sample_airframes(4, seed=1)
    e32 = BatchedQuadrotorEnv(afs, 8, EnvConfig(dtype="float32"), seed=3)
    e64 = BatchedQuadrotorEnv(afs, 8, EnvConfig(dtype="float64"), seed=3)
    e32.reset()
    e64.reset()
    e32.set_state(e64.state.float(), force=e64.force.float(), torque=e64.torque.float())
    for _ in range(30):
        a = torch.full((32, 4), 0.1, dtype=torch.float64)
        e64.physics_step(a)
        e32.physics_step(a.float())
    assert (e32.state.double() - e64.state).abs()[:, :3].max() < 1e-5


def test_ten_thousand_random_airframes_random_actions_stay_finite():
    env = BatchedQuadrotorEnv(sample_airframes(10_000, seed=7), 1, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    for _ in range(500):
        obs, rew, *_ = env.step(torch.rand((10_000, 4), generator=gen) * 3 - 1.5)
        assert torch.isfinite(rew).all()
    assert torch.isfinite(env.state).all() and torch.isfinite(obs).all()


def test_bad_actions_raise_and_leave_state_unchanged():
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 3, seed=0)
    env.reset()
    before = env.state.clone()
    bad = torch.zeros(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(InputError, match="NaN or inf"):
        env.step(bad)
    bad[1, 2] = float("inf")
    with pytest.raises(InputError, match="NaN or inf"):
        env.step(bad)
    with pytest.raises(InputError, match=r"shape \(3, 3\), expected \(3, 4\)"):
        env.step(torch.zeros(3, 3))
    torch.testing.assert_close(env.state, before)
    venv = QuadrotorVectorEnv("crazyflie", 2)
    venv.reset()
    with pytest.raises(InputError):
        venv.step(np.zeros((5, 4)))


def test_mixed_targets_give_each_episode_its_own_moving_target():
    """Target "mixed" (teachers on moving targets): each episode draws hover, Langevin, a figure-eight of its own
    radius and period, or a 0.5 m setpoint step; the observation is relative to that target, and `raptor train
    --targets` trains in it."""
    from raptor.rl.config import TrainConfig, training_env_config
    from raptor.sim.functional import MIXED_KINDS, figure_eight

    cfg = EnvConfig(target="mixed", observation="privileged")
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 400, cfg, seed=3)
    env.reset()
    kind = env.s.kind
    counts = torch.bincount(kind, minlength=4)
    assert counts.min() >= 70  # uniform over the four kinds (100 expected each)
    hover = torch.tensor([a.hover_action for a in [named_airframe("crazyflie")]]).expand(400, 4)
    for _ in range(300):  # 3 s: past every setpoint step (1-3 s)
        env.physics_step(hover)
    tgt = env.target()
    t = env.steps.double() * 0.01
    eight = figure_eight(t, env.s.eight_radius.double(), env.s.eight_period.double())
    f8 = kind == MIXED_KINDS.index("figure_eight")
    assert torch.allclose(tgt[f8].double(), eight[f8], atol=1e-5)
    assert (env.s.eight_radius[f8] >= 0.25).all() and (env.s.eight_radius[f8] <= 1.0).all()
    step = kind == MIXED_KINDS.index("step")
    assert torch.allclose(tgt[step, TARGET_P].norm(dim=-1), torch.full((int(step.sum()),), 0.5), atol=1e-5)
    assert (tgt[kind == MIXED_KINDS.index("hover")] == 0).all()
    assert (tgt[kind == MIXED_KINDS.index("langevin"), TARGET_P].norm(dim=-1) > 1e-4).all()
    obs = env.observe()
    assert torch.allclose(obs[:, OBS_P], env.state[:, P] - tgt[:, TARGET_P], atol=1e-6)
    tc = TrainConfig(targets=("figure_eight", "step"))
    ec = training_env_config(tc)
    assert ec.target == "mixed" and ec.mixed_targets == ("figure_eight", "step")
    assert TrainConfig.from_json(tc.to_json()) == tc
    with pytest.raises(Exception, match="--targets"):
        TrainConfig(targets=("loops",))


@pytest.mark.parametrize("target", ["figure_eight", "mixed", "langevin"])
def test_the_targets_acceleration_is_felt_as_a_push_by_privileged_teachers(target):
    """Relative to a target that accelerates by a_des, the vehicle feels -m a_des: with
    privileged_target_acceleration the force channel shows (f - m a_des) / (m |g|). a_des is the derivative of the
    target velocity the observation is relative to (finite difference over one step)."""
    af = named_airframe("x500")
    base = EnvConfig(target=target, observation="privileged", dtype="float64")
    envs = [BatchedQuadrotorEnv([af], 64, EnvConfig(**{**base.__dict__, "privileged_target_acceleration": ff}),
                                seed=4) for ff in (False, True)]
    for env in envs:
        env.reset()
    hover = torch.full((64, 4), af.hover_action, dtype=torch.float64)
    for _ in range(150):
        v0 = envs[1].target()[:, 3:6].clone()
        a0 = envs[1].target_acceleration().clone()
        (_, _, o_plain), (_, _, o_ff) = (env.physics_step(hover) for env in envs)
        dv = (envs[1].target()[:, 3:6] - v0) / 0.01
    assert torch.equal(o_plain[:, :26], o_ff[:, :26])
    a1 = envs[1].target_acceleration()
    # a figure-eight: the analytic second derivative (trapezoid over the step); the Langevin target's smoothed
    # velocity v_s += alpha (v_raw - v_s) moves by exactly a / (1 - alpha) per second in the step just taken
    smooth = envs[1].s.langevin
    alpha = base.langevin.alpha
    assert torch.allclose(dv[smooth], a1[smooth] / (1 - alpha), atol=1e-9)
    assert torch.allclose(dv[~smooth], 0.5 * (a0 + a1)[~smooth], atol=2e-3)
    assert a1.abs().max() > 0.1  # the targets do accelerate
    g = 9.81
    assert torch.allclose(o_ff[:, OBS_FORCE], o_plain[:, OBS_FORCE] - a1 / g, atol=1e-9)
