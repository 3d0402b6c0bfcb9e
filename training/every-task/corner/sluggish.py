"""#42, where the corner student loses hover to today's default on the tuning set (sampled:200:6161, 10 episodes,
seed 1, the same starts as continuation/tune.py): hover success and termination by quartile of the airframes'
angular authority over motor lag, (thrust per rotor x arm / J_xx) / rising motor time constant [rad/s^3].

    python training/every-task/corner/sluggish.py POLICY [POLICY ...]
"""

from __future__ import annotations

import sys

import numpy as np

from raptor.commands.evaluate import evaluate
from raptor.sim.airframe_files import resolve_airframes


def authority_over_lag(a) -> float:
    d = a.parameters["dynamics"]
    arm_m = float(np.linalg.norm(np.array(d["rotor_positions"])[0, :2]))
    thrust_n = a.thrust_to_weight * d["mass"] * 9.81 / 4
    return thrust_n * arm_m / d["J"][0][0] / float(np.mean(d["rotor_time_constants_rising"]))


def main() -> None:
    afs = resolve_airframes("sampled:200:6161")
    k = np.array([authority_over_lag(a) for a in afs])
    edges = np.percentile(k, [25, 50, 75])
    q = np.digitize(k, edges)
    print(f"quartile edges {', '.join(f'{e:.0f}' for e in edges)}\n")
    print("| policy | " + " | ".join(f"Q{i + 1} success / terminated" for i in range(4)) + " | all |")
    print("|---" * 6 + "|")
    for policy in sys.argv[1:]:
        per = evaluate(policy, afs, "hover", 10, 1, "cpu", None)["per_airframe"]
        s = np.array([per[a.name]["success_rate"] for a in afs])
        t = np.array([per[a.name]["termination_rate"] for a in afs])
        cells = [f"{100 * s[q == i].mean():.1f} / {100 * t[q == i].mean():.1f} %" for i in range(4)]
        print(f"| {policy} | " + " | ".join(cells) + f" | {100 * s.mean():.1f} % |", flush=True)


if __name__ == "__main__":
    main()
