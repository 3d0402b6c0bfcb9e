"""Teacher quality over the airframe range: 16 sampled RAPTOR airframes spanning mass and thrust-to-weight (a
4 x 4 grid of quantiles of the 1000 teacher airframes), plus crazyflie and x500, trained together by the batched
backend and judged against the quality bar (hover, 500 episodes, the published policy's termination + 1 point).

    python benchmarks/teacher_quality.py --out runs/teacher-quality [--steps 4000000] [--resume]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from raptor.rl.config import TrainConfig
from raptor.rl.ppo import PPOConfig
from raptor.rl.run import RunDir, status, status_table
from raptor.rl.train import train
from raptor.sim.airframe import Airframe, named_airframe
from raptor.sim.airframe_files import save_airframes
from raptor.sim.sampling import sample_airframes


def spanning_ids(airframes: list[Airframe], per_axis: int = 4) -> list[int]:
    """Airframes nearest to a grid of quantiles of log-mass x thrust-to-weight."""
    lm = np.log([a.mass_kg for a in airframes])
    tw = np.array([a.thrust_to_weight for a in airframes])
    qs = np.linspace(0.05, 0.95, per_axis)
    ids: list[int] = []
    for qm in qs:
        for qt in qs:
            d = ((lm - np.quantile(lm, qm)) / lm.std()) ** 2 + ((tw - np.quantile(tw, qt)) / tw.std()) ** 2
            ids.append(next(int(i) for i in np.argsort(d) if int(i) not in ids))
    return sorted(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/teacher-quality")
    ap.add_argument("--steps", type=int, default=4_000_000)
    ap.add_argument("--envs", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--smoothness", type=float, default=PPOConfig.smoothness_coef, help="CAPS loss weight")
    ap.add_argument("--no-trim", action="store_true", help="no hover-offset trim of the teachers")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    rd = RunDir(args.out)
    if not args.resume:
        pool = sample_airframes(1000, 0)
        chosen = [named_airframe("crazyflie"), named_airframe("x500")]
        chosen += [Airframe(f"raptor{i:03d}", pool[i].parameters, pool[i].meta) for i in spanning_ids(pool)]
        rd.root.mkdir(parents=True, exist_ok=True)
        save_airframes(rd.root / "benchmark_airframes.json", chosen)
    cfg = TrainConfig(steps=args.steps, device=args.device, teachers_per_shard=18, calibrate=not args.no_trim,
                      ppo=replace(PPOConfig(), envs_per_teacher=args.envs, smoothness_coef=args.smoothness))
    t0 = time.perf_counter()
    train(args.out, str(rd.root / "benchmark_airframes.json"), None, None if args.resume else cfg,
          resume=args.resume)
    print(status_table(status(rd)))
    print(f"wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
