"""Teachers on moving targets (issue #30): how the teachers of `raptor train` runs fly raptor eval's scenarios with
their privileged observation: hover, step (0.5 m setpoint jumps; no yaw step: yaw is the student's heading frame),
tracking (the figure-eight, radius 0.5 m, period 5 s) and disturbance. Runs trained with `--targets` and without, on
the same airframes, side by side.

    python3 benchmarks/teacher_targets.py RUN [RUN ...] [--episodes 20] [--seed 9]

Each run flies twice: as trained, and with the target's acceleration shown as a push in the teachers' force channel
(EnvConfig.privileged_target_acceleration, what `raptor distill` labels with: `feedforward` rows).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from raptor.metrics import summarize
from raptor.rl.teacher import TeacherPolicy
from raptor.rl.teachers import TeacherSet
from raptor.sim.scenarios import rollout, scenario_config

SCENARIOS = ("hover", "step", "tracking", "disturbance")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args()
    print("| run | scenario | success | terminated | final error median [m] | RMS error [m] |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        teachers = TeacherSet(run, only_passed=False)
        for sc, ff in [(sc, False) for sc in SCENARIOS] + [("tracking", True)]:
            cfg = replace(scenario_config(sc), observation="privileged", step_yaw_rad=0.0,
                          privileged_target_acceleration=ff)
            r = rollout(TeacherPolicy(teachers, teachers.K), teachers.airframes, sc, args.episodes, seed=args.seed,
                        config=cfg, trajectories=False)
            o = summarize(r)["overall"]
            med = o["final_position_error_median"]
            name = sc + (" (feedforward)" if ff else "")
            print(f"| {run} ({teachers.K} teachers) | {name} | {100 * o['success_rate']:.1f} % | "
                  f"{100 * o['termination_rate']:.1f} % | {'-' if med is None else f'{med:.3f}'} | "
                  f"{o['rms_tracking_error_mean']:.3f} |")


if __name__ == "__main__":
    main()
