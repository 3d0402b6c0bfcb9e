"""Choose the setpoint-acceleration lead (raptor.policy.feedforward, issue #42 item 3) on a held-out set.

Flies each policy on the figure-eight (the `tracking` scenario) of held-out airframes with every (gain, cap) of a
grid and without a lead, all on the same starts, and prints the tracking figures per setting: RMS tracking error,
final-error median, success, termination. Hover, steps and every scenario without a moving target are untouched by
a lead (zero acceleration), so tracking alone decides. The gain is then chosen by the RMS summed over the policies
flown (a lead that helps one network only is a property of that network, not of the setpoint).

    python benchmarks/lead_gain.py --airframes sampled:48:31337 --episodes 4 --json docs/data/lead_gain-DATE.json

The held-out airframes must not be the ones any figure is reported on (README, docs: sampled:200:2027 and the
fresh sets); the default here (seed 31337) is used by no other decision.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from raptor.metrics import summarize
from raptor.policy import load
from raptor.policy.feedforward import SetpointLead
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.scenarios import rollout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--airframes", default="sampled:48:31337")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--policies", default="official,default")
    ap.add_argument("--gains", default="3,4,6,8,12,16,24", help="k in 1/s^2 (the lead a_des / k)")
    ap.add_argument("--caps", default="0.3,0.6", help="max_lead_m per axis")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    afs = resolve_airframes(args.airframes)
    settings: list[SetpointLead | None] = [None] + [SetpointLead(float(k), float(c))
                                                     for c in args.caps.split(",") for k in args.gains.split(",")]
    rows = []
    t0 = time.perf_counter()
    for name in args.policies.split(","):
        base = load(name)
        for lead in settings:
            pol = base.with_lead(lead)
            s = summarize(rollout(pol, afs, "tracking", args.episodes, seed=args.seed, trajectories=False))["overall"]
            row = {"policy": name, "gain_s2": None if lead is None else lead.gain_s2,
                   "max_lead_m": None if lead is None else lead.max_lead_m,
                   **{k: s[k] for k in ("rms_tracking_error_mean", "final_position_error_median", "success_rate",
                                        "termination_rate")}}
            rows.append(row)
            print(f"{name:9s} lead {'off' if lead is None else f'k={lead.gain_s2:g} cap={lead.max_lead_m:g}':16s} "
                  f"RMS {row['rms_tracking_error_mean']:.3f} m  final median "
                  f"{row['final_position_error_median']:.3f} m  success {100 * row['success_rate']:5.1f} %  "
                  f"terminated {100 * row['termination_rate']:4.1f} %", flush=True)
    # the choice: the smallest RMS summed over the policies, among settings that terminate no more than without
    names = args.policies.split(",")

    def key(r):
        return (r["gain_s2"], r["max_lead_m"])

    off = {r["policy"]: r for r in rows if r["gain_s2"] is None}
    score = {}
    for r in rows:
        if r["gain_s2"] is None:
            continue
        ok = r["termination_rate"] <= off[r["policy"]]["termination_rate"] + 1e-9
        score.setdefault(key(r), [0.0, True])
        score[key(r)][0] += r["rms_tracking_error_mean"]
        score[key(r)][1] &= ok
    best = min((k for k, (_, ok) in score.items() if ok), key=lambda k: score[k][0], default=None)
    print(f"chosen: {'none' if best is None else f'gain_s2={best[0]:g}, max_lead_m={best[1]:g}'} "
          f"(summed RMS over {', '.join(names)}; {time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"airframes": args.airframes, "episodes": args.episodes, "seed": args.seed, "rows": rows,
                       "chosen": None if best is None else {"gain_s2": best[0], "max_lead_m": best[1]}}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
