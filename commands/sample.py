"""`raptor sample`: randomized airframes (RAPTOR's domain randomization, or the race-class option) into a file."""

from __future__ import annotations

import argparse

from raptor.errors import RaptorError
from raptor.sim.airframe_files import save_airframes
from raptor.sim.sampling import RACE_FAST_RANGES, RACE_RANGES, RandomizationRanges, sample_airframes

HELP = "sample randomized airframes (RAPTOR domain randomization) into a file"


def _cmd_sample(args: argparse.Namespace) -> int:
    if args.n <= 0:
        raise RaptorError("--n must be positive")

    if args.race and args.race_fast:
        raise RaptorError("--race and --race-fast are two samplers; choose one")
    ranges = RACE_RANGES if args.race else RACE_FAST_RANGES if args.race_fast else RandomizationRanges()
    kind = ("race (thrust-to-weight 1.5-12)" if args.race else
            "race-fast (thrust-to-weight 4-12, race motors)" if args.race_fast else "raptor")
    airframes = sample_airframes(args.n, args.seed, ranges, round_like_reference=not args.full_precision)
    save_airframes(args.output, airframes, {"sampler": "raptor-dr/1 (RAPTOR e43ae4bc ranges, std::mt19937 emulation)",
                                            "seed": args.seed, "n": args.n,
                                            "rounded_like_reference": not args.full_precision,
                                            "ranges": kind})
    t2w = [a.thrust_to_weight for a in airframes]
    mass = [a.mass_kg for a in airframes]
    print(f"wrote {len(airframes)} airframes to {args.output} (seed {args.seed}): mass {min(mass):.3f}-{max(mass):.3f}"
          f" kg, thrust-to-weight {min(t2w):.2f}-{max(t2w):.2f}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sample", help=HELP, description=HELP)
    s.add_argument("--n", type=int, default=1000, help="number of airframes (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="sampler seed; 0 gives the 1000 RAPTOR teacher airframes")
    s.add_argument("-o", "--output", default="airframes.json", help="output file (default airframes.json)")
    s.add_argument("--full-precision", action="store_true",
                   help="keep full precision instead of the reference's 6-decimal rounding")
    s.add_argument("--race", action="store_true",
                   help="race-class option: thrust-to-weight up to 12 (flightmare's), other ranges RAPTOR's")
    s.add_argument("--race-fast", action="store_true",
                   help="race class with race motors: thrust-to-weight 4-12, motor time constants 0.02-0.05 s, "
                        "torque-to-inertia 200-1200, the disturbance as RAPTOR's at thrust-to-weight 5 (the sampler "
                        "the every-task default's race-class teachers come from)")
    s.set_defaults(func=_cmd_sample)
