"""Which airframes of the teacher sampler (`sampled:1000:0`) the every-task run adds as corner teachers (#42).

The every-task student's hover offsets on the tuning set `sampled:200:6161` sit on the agile airframes with slow
motors (docs/training.md: the mean position over the last second correlates with inverse inertia and the rising motor
time constant; on the quarter with the largest inverse roll inertia x rising time constant it hovers 86.6 % against
today's default's 92.8 %), and today's default got its hover there from teachers of that corner (docs/distillation.md:
fc66 -> fs102L). So: the sampler's airframes the run has not trained (ids 256-999; run ids 456-1199) whose inverse
roll inertia x rising motor time constant is at or above the 65th percentile of the sampler's 1000 (the top 35 %, the
cut `continuation/agile_ids.txt` used on the run's teachers), in id order (the sampler's order is random), the first
N. Prints the run ids (sampler id + 200) for `raptor train --resume --ids`.

    python training/every-task/corner/pick_ids.py 96
"""

from __future__ import annotations

import sys

import numpy as np

from raptor.sim.airframe_files import resolve_airframes


def agility(a) -> float:
    """1/J_xx [1/(kg m^2)] x rising motor time constant [s]."""
    d = a.parameters["dynamics"]
    return float(d["J_inv"][0][0]) * float(np.mean(d["rotor_time_constants_rising"]))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 96
    afs = resolve_airframes("sampled:1000:0")
    score = np.array([agility(a) for a in afs])
    cut = np.percentile(score, 65)
    picked = [i for i in range(256, len(afs)) if score[i] >= cut][:n]
    tw = [afs[i].thrust_to_weight for i in picked]
    print(f"# cut {cut:.2f}; {int((score[256:] >= cut).sum())} of ids 256-999 above it; picked {len(picked)} "
          f"(sampler ids {picked[0]}-{picked[-1]}), thrust-to-weight {min(tw):.1f}-{max(tw):.1f} "
          f"(median {np.median(tw):.1f})", file=sys.stderr)
    print(",".join(str(i + 200) for i in picked))


if __name__ == "__main__":
    main()
