"""Fly a policy in l2f itself (the reference simulator, optional: `pip install l2f==2.0.18`): its vector env's
crazyflie and `init_90_deg` starts, optionally each turned about world z by a uniform random yaw, 500 steps, judged
by raptor.metrics as `raptor eval` (not terminated by l2f's own `terminated`, within 0.1 m of the origin for the
last second). l2f's vector env is stepped through its own API (its C++ state objects), so this is its own loop; the
judgement is the one metrics module's.
benchmarks/l2f_yaw.py prints it for several policies; tests/test_l2f.py (marker l2f) checks it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from raptor.conventions import DT_NATIVE_S, STUDENT_OBS_DIM
from raptor.metrics import Rollouts, episode_metrics

STEPS = 500


def _turn(state, yaw: float) -> None:
    c, s = math.cos(yaw), math.sin(yaw)
    p, v = np.array(state.position, np.float64), np.array(state.linear_velocity, np.float64)
    state.position = [c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]]
    state.linear_velocity = [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]]
    w, x, y, z = np.array(state.orientation, np.float64)
    qw, qz = math.cos(yaw / 2), math.sin(yaw / 2)  # q_yaw (x) q
    state.orientation = [qw * w - qz * z, qw * x - qz * y, qw * y + qz * x, qw * z + qz * w]


def l2f_vector_env(n: int, seed: int) -> list:
    """l2f's vector env of n envs, initialized as l2f's README does: [vec, device, rng, env, params, state, next]."""
    import l2f

    vec = l2f.vector_selector[n]
    dev = l2f.Device()
    rng, env, params = vec.VectorRng(), vec.VectorEnvironment(), vec.VectorParameters()
    state, nxt = vec.VectorState(), vec.VectorState()
    vec.initialize_rng(dev, rng, seed)
    vec.initialize_environment(dev, env)
    vec.sample_initial_parameters(dev, env, params, rng)
    vec.sample_initial_state(dev, env, params, state, rng)
    return [vec, dev, rng, env, params, state, nxt]


def fly_l2f(policy, n: int, seed: int, yaw: bool) -> dict:
    """Success and termination rates (and the episode count) of `policy` on n l2f starts (turned by a random yaw)."""
    vec, dev, rng, env, params, state, nxt = l2f_vector_env(n, seed)
    yaws = np.random.default_rng(seed).uniform(-math.pi, math.pi, n) if yaw else np.zeros(n)
    states = state.states
    for i, s in enumerate(states):
        _turn(s, float(yaws[i]))
    state.states = states
    obs = np.zeros((n, env.OBSERVATION_DIM), np.float32)
    term = np.zeros(n, bool)
    alive = np.ones(n, bool)
    first_term = np.full(n, -1)

    def error(st) -> np.ndarray:  # (n,) m: l2f's target is the origin
        return np.linalg.norm(np.array([s.position for s in st.states]), axis=-1)

    errors = [error(state)]
    policy.reset(n)
    for t in range(STEPS):
        vec.observe(dev, env, params, state, obs, rng)
        a = policy.step(torch.as_tensor(obs[:, :STUDENT_OBS_DIM])).clamp(-1, 1).numpy().astype(np.float32)
        vec.step(dev, env, params, state, a, nxt, rng)
        vec.terminated(dev, env, params, nxt, term, rng)
        first_term = np.where(term & alive, t, first_term)
        alive &= ~term
        errors.append(error(nxt))
        state, nxt = nxt, state
    # judged by raptor.metrics, as raptor eval judges our simulator's episodes
    r = Rollouts(airframe_names=["l2f crazyflie"], airframe_index=np.zeros(n, int), position=None, target=None,
                 position_error=np.stack(errors), terminated=first_term >= 0, first_termination=first_term,
                 returns=np.zeros(n), action_change=np.zeros(n), dt_s=DT_NATIVE_S)
    m = episode_metrics(r)
    return {"success": float(m["success"].mean()), "terminated": float(m["terminated"].mean()), "episodes": n}
