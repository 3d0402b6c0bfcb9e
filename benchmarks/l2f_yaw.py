"""Policies in l2f itself (the reference simulator, an optional check): its own crazyflie and initial states, turned
by a uniform random yaw, 500 steps, the same starts for every policy.

    pip install l2f==2.0.18      # compiles for ~8 minutes
    python benchmarks/l2f_yaw.py --policies default,official --episodes 1024 --seed 0 [--no-yaw]

l2f 2.0.18's vector env samples its default crazyflie (domain randomization off, Langevin off) and RAPTOR's
`init_90_deg` starts; its `terminated` is the reference's (1 m, 2 m/s, 35 rad/s). Each start's position, velocity
and attitude are turned about world z by a yaw U(-pi, pi) (the body rates and rotor speeds stay): the same start
facing another way. Success as `raptor eval`: not terminated and within 0.1 m of the origin for the last second.
The policies see l2f's observation (its first 22 values: p, R, v, w, the last action) and fly as `raptor.policy`
loads them: the default in its heading frame (raptor.policy.heading), the published policy as published.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from raptor.metrics import SUCCESS_RADIUS_M
from raptor.metrics import SUCCESS_WINDOW_STEPS as WINDOW

STEPS = 500


def _turn(state, yaw: float) -> None:
    c, s = math.cos(yaw), math.sin(yaw)
    p, v = np.array(state.position, np.float64), np.array(state.linear_velocity, np.float64)
    state.position = [c * p[0] - s * p[1], s * p[0] + c * p[1], p[2]]
    state.linear_velocity = [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]]
    w, x, y, z = np.array(state.orientation, np.float64)
    qw, qz = math.cos(yaw / 2), math.sin(yaw / 2)  # q_yaw (x) q
    state.orientation = [qw * w - qz * z, qw * x - qz * y, qw * y + qz * x, qw * z + qz * w]


def fly(policy, n: int, seed: int, yaw: bool) -> dict:
    import l2f

    vec = l2f.vector_selector[n]
    dev = l2f.Device()
    rng, env, params = vec.VectorRng(), vec.VectorEnvironment(), vec.VectorParameters()
    state, nxt = vec.VectorState(), vec.VectorState()
    vec.initialize_rng(dev, rng, seed)
    vec.initialize_environment(dev, env)
    vec.sample_initial_parameters(dev, env, params, rng)
    vec.sample_initial_state(dev, env, params, state, rng)
    yaws = np.random.default_rng(seed).uniform(-math.pi, math.pi, n) if yaw else np.zeros(n)
    states = state.states
    for i, s in enumerate(states):
        _turn(s, float(yaws[i]))
    state.states = states
    obs = np.zeros((n, env.OBSERVATION_DIM), np.float32)
    term = np.zeros(n, bool)
    alive = np.ones(n, bool)
    last_out = np.full(n, -1)
    policy.reset(n)
    for t in range(STEPS):
        vec.observe(dev, env, params, state, obs, rng)
        a = policy.step(torch.as_tensor(obs[:, :22])).clamp(-1, 1).numpy().astype(np.float32)
        vec.step(dev, env, params, state, a, nxt, rng)
        vec.terminated(dev, env, params, nxt, term, rng)
        alive &= ~term
        err = np.linalg.norm(np.array([s.position for s in nxt.states]), axis=-1)
        last_out = np.where(err >= SUCCESS_RADIUS_M, t + 1, last_out)
        state, nxt = nxt, state
    success = alive & (last_out < STEPS + 1 - WINDOW)
    return {"success": float(success.mean()), "terminated": float((~alive).mean()), "episodes": n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policies", default="default,official")
    ap.add_argument("--episodes", type=int, default=1024, help="a power of two, 8-8192 (l2f's vector sizes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-yaw", action="store_true", help="l2f's starts as they are (tilt <= 90 deg, no extra yaw)")
    args = ap.parse_args(argv)
    try:
        import l2f  # noqa: F401
    except ImportError:
        print("l2f is not installed: pip install l2f==2.0.18 (compiles for ~8 minutes)", file=sys.stderr)
        return 2
    from raptor import policy as rp

    print(f"l2f 2.0.18 crazyflie, {args.episodes} starts, seed {args.seed}, "
          f"{'as sampled' if args.no_yaw else 'each turned by a random yaw'}")
    print("| policy | success | terminated |\n|---|---|---|")
    for name in args.policies.split(","):
        t0 = time.perf_counter()
        r = fly(rp.load(name), args.episodes, args.seed, not args.no_yaw)
        print(f"| {name} | {100 * r['success']:.1f} % | {100 * r['terminated']:.1f} % | "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
