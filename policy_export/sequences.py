"""The observation sequences an export carries: flights of the policy in our simulator, the stored self-test (inputs
and the expected raw outputs a core checks before it flies) and the parity sequence the host and QEMU builds replay
against torch."""

from __future__ import annotations

import numpy as np
import torch

from raptor.conventions import P, Q, V, W
from raptor.geometry import rotation_matrix
from raptor.runtime import run_episodes
from raptor.sim.airframe import named_airframe
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv

SELF_TEST_STEPS, SELF_TEST_BATCH = 8, 2
SEQUENCE_STEPS = 240


def flight_observations(policy, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States (T, 17) and raw actions (T, 4) of the policy hovering a crazyflie in our simulator."""
    # no termination (a crash box of 1000 km): the sequence has `steps` states whatever the policy does
    env = BatchedQuadrotorEnv([named_airframe("crazyflie")], 1, EnvConfig(target="hover", crash_box_m=1e6), seed=seed)
    states, actions = [], []

    class Record:  # the state before each step and the action applied in it
        def observe(self, t, env, obs, alive):
            states.append(env.state[0].clone())

        def after_step(self, t, env, action, reward, terminated, alive):
            actions.append(action[0].clone())

    run_episodes(policy, env, steps, hooks=[Record()], trajectories=False)
    return torch.stack(states).numpy(), torch.stack(actions).numpy()


def self_test_sequence(policy, steps: int = SELF_TEST_STEPS, batch: int = SELF_TEST_BATCH):
    """Network inputs (T, B, 22) from real flights and the float32 torch outputs (T, B, 4), h0 at step 0."""
    inputs = []
    for b in range(batch):
        states, actions = flight_observations(policy, steps, seed=100 + b)
        s = torch.as_tensor(states)
        prev = torch.cat([torch.zeros(1, 4), torch.as_tensor(actions[:-1])])
        inputs.append(torch.cat([s[:, P], rotation_matrix(s[:, Q]), s[:, V], s[:, W], prev], -1))
    x = torch.stack(inputs, 1).float()
    with torch.no_grad():
        y, _ = policy.net.float()(x)
    return x.numpy(), y.numpy()


def parity_sequence(policy, rate_hz: int, steps: int = SEQUENCE_STEPS, seed: int = 7, nan_step: int | None = 50):
    """A fixed sequence at rate_hz: timestamps (T,) ns, observations (T, 17) [p, q, v, w, previous action].

    Native states come from a hover flight; calls between native steps perturb them slightly; step 50 carries a
    NaN (the guard must return the safe action and the next valid call recover); nan_step=None omits it."""
    per = rate_hz // 100
    states, actions = flight_observations(policy, steps // per + 2, seed)
    rng = np.random.default_rng(seed)
    obs = np.zeros((steps, 17), np.float32)
    for t in range(steps):
        k = t // per
        s = states[k].astype(np.float64)
        if t % per:
            s = s + rng.normal(0, 0.002, 17) * np.r_[np.ones(3), np.zeros(4), np.ones(6), np.zeros(4)]
        prev = np.clip(actions[k - 1] if k > 0 else np.zeros(4), -1, 1) + rng.normal(0, 0.01, 4)
        obs[t] = np.r_[s[P], s[Q], s[V], s[W], prev]
    if nan_step is not None:
        obs[nan_step, 2] = np.nan
    timestamps = (np.arange(steps, dtype=np.uint64) * np.uint64(1_000_000_000 // rate_hz)) + np.uint64(10**9)
    return timestamps, obs


# Metadata (provenance, names, paths) is text from users and training machines: it reaches C only through these two
# functions, never raw. A string literal holds it exactly (every byte outside printable ASCII, and \\ " ?, escaped:
# no trigraph, no line splice); a comment gets a one-line, printable ASCII digest in which no comment can end or
# begin. C99 requires compilers to accept 4,095 characters in a literal (-pedantic warns past it): longer text is cut
# and says so; the policy file keeps the whole of it.
