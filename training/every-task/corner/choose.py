"""#42's rule on the tuning set, for the corner student: a candidate goes on to be judged on the fresh set only if it
is no worse than today's default on every row of `continuation/tune.py` (`sampled:200:6161`, 10 episodes, seed 1,
same starts). Prints each row, candidate beside today's default, and the candidate chosen (the first that passes, in
the order given: the held-out selection first); exits 1 when none passes.

    python training/every-task/corner/choose.py DEFAULT_JSON CANDIDATE_JSON [CANDIDATE_JSON ...]
"""

from __future__ import annotations

import json
import sys

# (row, how to read it from tune.py's JSON, higher is better)
ROWS = (
    ("hover, t/w < 3.5", lambda r: r["hover_low_tw"], True),
    ("hover, t/w >= 3.5", lambda r: r["hover_high_tw"], True),
    ("yaw", lambda r: r["yaw"]["success"], True),
    ("step", lambda r: r["step"]["success"], True),
    ("recovery", lambda r: r["recovery"]["success"], True),
    ("thrown", lambda r: r["thrown"]["success"], True),
    ("tracking RMS [m]", lambda r: r["tracking"]["rms"], False),
    ("disturbance", lambda r: r["disturbance"]["success"], True),
    ("flightmare hover", lambda r: r["flightmare"], True),
)


def worse_rows(default: dict, candidate: dict) -> list[str]:
    out = []
    for name, get, higher in ROWS:
        d, c = get(default), get(candidate)
        if (c < d) if higher else (c > d):
            out.append(name)
    return out


def main() -> int:
    default = json.load(open(sys.argv[1]))
    candidates = [(path, json.load(open(path))) for path in sys.argv[2:]]
    print("| row | today's default | " + " | ".join(r["policy"] for _, r in candidates) + " |")
    print("|---" * (2 + len(candidates)) + "|")
    for name, get, _ in ROWS:
        print(f"| {name} | {get(default):.3f} | " + " | ".join(f"{get(r):.3f}" for _, r in candidates) + " |")
    chosen = None
    for _, r in candidates:
        worse = worse_rows(default, r)
        print(f"{r['policy']}: " + (f"worse than today's default at {', '.join(worse)}" if worse else
                                   "no worse than today's default on any row"))
        if not worse and chosen is None:
            chosen = r["policy"]
    print(f"chosen: {chosen}" if chosen else "chosen: none (the default stays; see docs/training.md for the levers)")
    return 0 if chosen else 1


if __name__ == "__main__":
    sys.exit(main())
