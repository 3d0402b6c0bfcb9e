"""The continuation's choice (#42), on the tuning set no other decision used: every scenario on `sampled:200:6161`
(10 episodes, seed 1), hover split at thrust-to-weight 3.5, and flightmare's hover without a cap (20 episodes), for
each policy named, same starts for all. Writes one JSON per policy to OUT and prints one table row each.

    python training/every-task/continuation/tune.py OUT POLICY [POLICY ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from raptor.commands.evaluate import evaluate
from raptor.sim.airframe_files import resolve_airframes

TUNE, EPISODES, SEED = "sampled:200:6161", 10, 1
SCENARIOS = ("hover", "yaw", "step", "recovery", "thrown", "tracking", "disturbance")


def measure(policy: str, afs: list) -> dict:
    low = np.array([a.thrust_to_weight < 3.5 for a in afs])
    out = {"policy": policy, "set": f"{TUNE}, {EPISODES} episodes, seed {SEED}"}
    for sc in SCENARIOS:
        m = evaluate(policy, afs, sc, EPISODES, SEED, "cpu", None)
        per = [v["success_rate"] for v in m["per_airframe"].values()]
        o = m["overall"]
        out[sc] = {"success": o["success_rate"], "terminated": o["termination_rate"],
                   "final_error_median": o["final_position_error_median"], "rms": o["rms_tracking_error_mean"]}
        if sc == "hover":
            out["hover_low_tw"] = float(np.mean(np.array(per)[low]))
            out["hover_high_tw"] = float(np.mean(np.array(per)[~low]))
    out["flightmare"] = evaluate(policy, "flightmare", "hover", 20, SEED, "cpu", None)["overall"]["success_rate"]
    return out


def row(r: dict) -> str:
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    return (f"| {r['policy']} | {pct(r['hover_low_tw'])} | {pct(r['hover_high_tw'])} | {pct(r['yaw']['success'])} | "
            f"{pct(r['step']['success'])} | {pct(r['recovery']['success'])} | {pct(r['thrown']['success'])} | "
            f"{r['tracking']['rms']:.3f} m | {pct(r['disturbance']['success'])} | {pct(r['flightmare'])} |")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print("| policy | hover t/w < 3.5 | hover t/w >= 3.5 | yaw | step | recovery | thrown | tracking RMS | "
          "disturbance | flightmare |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
    afs = resolve_airframes(TUNE)
    for policy in sys.argv[2:]:
        r = measure(policy, afs)
        (out / (Path(policy).parent.name + "_" + Path(policy).stem + ".json")).write_text(json.dumps(r, indent=1))
        print(row(r), flush=True)


if __name__ == "__main__":
    main()
