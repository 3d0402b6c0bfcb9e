"""Where one teacher-training iteration spends its time (issue #41, item 1), at K = 1, 64, 256 teachers.

Each phase is timed by wrapping the function that does it (the trainer's code is not changed):
simulation (env.step: physics, observation, reward, termination, autoreset), actor and critic forwards in the
rollout, GAE, the update's forwards (actor on s and s', critic), backward, optimizer (BatchedAdam.step, its
clipping included), the selection evaluation (trimmed copy + evaluate_teachers, `eval_episodes` hover episodes,
every `eval_every_steps`) and the finalization per teacher (trim, gain calibration, final and published-policy
evaluations, measured on a smaller batch and scaled), both amortized per iteration; "python/other" is the wall time
no wrapped phase accounts for (the loop, buffer writes, indexing, small ops).

    python benchmarks/teacher_profile.py [--ks 1,64,256] [--iterations 3] [--threads 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import torch

from raptor.rl.config import TrainConfig, teacher_airframe, training_env_config
from raptor.rl.ppo import BatchedPPO
from raptor.rl.teacher import evaluate_teachers, trimmed_copy
from raptor.sim.airframe_files import resolve_airframes


class Timers:
    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, obj, name: str, label) -> None:
        fn = getattr(obj, name)

        def timed(*a, **k):
            key = label(*a, **k) if callable(label) else label
            if self.depth:  # nested (e.g. the actor inside evaluation): counted by the outer phase
                return fn(*a, **k)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[key] += time.perf_counter() - t0
                self.depth -= 1

        setattr(obj, name, timed)


def profile(K: int, iterations: int, cfg: TrainConfig, airframes) -> dict:
    afs = [teacher_airframe(a, cfg) for a in airframes[:K]]
    ppo = BatchedPPO(afs, cfg.ppo, training_env_config(cfg), seed=0)
    ppo.iterate()  # warm-up (allocations, first-call overheads, the compile where the env compiles)
    tm = Timers()
    tm.wrap(ppo.env, "step", "simulation")
    grad = torch.is_grad_enabled
    tm.wrap(ppo.actor, "forward", lambda *a, **k: "update: actor forward" if grad() else "rollout: actor")
    tm.wrap(ppo.critic, "forward", lambda *a, **k: "update: critic forward" if grad() else "rollout: critic")
    tm.wrap(ppo, "advantages", "GAE")
    tm.wrap(ppo.optimizer, "step", "update: optimizer")
    orig_backward = torch.autograd.backward

    def backward(*a, **k):
        t0 = time.perf_counter()
        try:
            return orig_backward(*a, **k)
        finally:
            tm.t["update: backward"] += time.perf_counter() - t0

    torch.autograd.backward = backward
    try:
        t0 = time.perf_counter()
        for _ in range(iterations):
            ppo.iterate()
        wall = (time.perf_counter() - t0) / iterations
    finally:
        torch.autograd.backward = orig_backward
    phases = {k: v / iterations for k, v in tm.t.items()}
    # The selection evaluation, as train_shard_batched runs it, amortized over its interval
    t0 = time.perf_counter()
    actors = trimmed_copy(ppo.deterministic_actors(), afs, cfg.calibration_episodes, seed=11)
    evaluate_teachers(actors, afs, cfg.eval_episodes, seed=7)
    sel = time.perf_counter() - t0
    iters_per_eval = max(1, round(cfg.eval_every_steps / cfg.ppo.steps_per_iteration))
    phases["selection evaluation (amortized)"] = sel / iters_per_eval
    # Finalization per teacher (trim 32 episodes, gains x gain_episodes, bar.episodes final + published), amortized
    # over the recipe's iterations; measured at min(K, 16) teachers and scaled linearly in K
    from raptor.rl.teacher import calibrate_gain, reference_termination

    k_fin = min(K, 16)
    fa = afs[:k_fin]
    mlp = trimmed_copy(ppo.deterministic_actors(), afs, 2, seed=1).mlp
    sub = type(mlp)(k_fin, mlp.sizes, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for w, w0 in zip(sub.weights, mlp.weights):
            w.copy_(w0[:k_fin])
        for b, b0 in zip(sub.biases, mlp.biases):
            b.copy_(b0[:k_fin])
    from raptor.rl.ppo import TeacherActors
    from raptor.rl.teacher import calibrate_offsets

    t0 = time.perf_counter()
    calibrate_offsets(sub, fa, 32, seed=3, iterations=1)
    calibrate_gain(sub, fa, cfg.feedback_gains, cfg.gain_episodes, seed=5)
    evaluate_teachers(TeacherActors(sub), fa, cfg.bar.episodes, seed=9)
    reference_termination(fa, cfg.bar.episodes, seed=9)
    fin = (time.perf_counter() - t0) * K / k_fin
    total_iters = cfg.steps / cfg.ppo.steps_per_iteration
    phases["finalization (amortized)"] = fin / total_iters
    accounted = sum(v for k, v in phases.items() if "amortized" not in k)
    phases["python/other"] = max(0.0, wall - accounted)
    total = wall + phases["selection evaluation (amortized)"] + phases["finalization (amortized)"]
    steps = K * cfg.ppo.steps_per_iteration
    return {"K": K, "iteration_s": wall, "total_per_iteration_s": total, "env_steps_per_s_training": steps / wall,
            "env_steps_per_s_with_evaluations": steps / total,
            "phases_s": {k: round(v, 4) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
            "phases_share": {k: round(v / total, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", default="1,64,256")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--airframes", default="sampled:1000:0")
    ap.add_argument("--compile", action="store_true", help="train on the compiled simulator (TrainConfig.compile)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(steps=3_000_000, any_yaw_fraction=0.25, compile=args.compile)
    airframes = resolve_airframes(args.airframes)
    rows = []
    for K in (int(k) for k in args.ks.split(",")):
        r = profile(K, args.iterations, cfg, airframes)
        rows.append(r)
        print(f"K = {K}: iteration {r['iteration_s']:.3f} s ({r['env_steps_per_s_training']:,.0f} env-steps/s "
              f"training, {r['env_steps_per_s_with_evaluations']:,.0f} with evaluations)", flush=True)
        for k, v in r["phases_s"].items():
            print(f"  {k:<36} {v:8.4f} s  {100 * r['phases_share'][k]:5.1f} %", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
