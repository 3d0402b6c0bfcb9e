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
import sys
import time


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
    from raptor.l2f_check import fly_l2f

    print(f"l2f 2.0.18 crazyflie, {args.episodes} starts, seed {args.seed}, "
          f"{'as sampled' if args.no_yaw else 'each turned by a random yaw'}")
    print("| policy | success | terminated |\n|---|---|---|")
    for name in args.policies.split(","):
        t0 = time.perf_counter()
        r = fly_l2f(rp.load(name), args.episodes, args.seed, not args.no_yaw)
        print(f"| {name} | {100 * r['success']:.1f} % | {100 * r['terminated']:.1f} % | "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
