"""What the pipeline's stages cost at scale (issue #31), all measured in this one process:

1. Teacher training: aggregate env-steps/s of the batched PPO trainer for K teachers (rollout + update), and the
   training time of the recipe's steps per teacher at that rate.
2. Finalization of the same K teachers (`raptor train`'s code path: trim, feedback-gain calibration, the
   final evaluation and the published policy on the same starts, teacher files), timed per phase, and its ratio
   to (1) (the target: <= 0.25).
3. Distillation of the K teachers: seconds per epoch (teacher rollouts with labels, then BPTT passes), epochs/s
   and env-steps/s of the rollouts.

    python benchmarks/pipeline_scale.py [--k 64] [--device cpu|cuda] [--iterations 4] [--epochs 2] [--out F.json]

CPU: K = 64 (docs/benchmarks.md). GPU: K = 1000 (`--k 1000 --device cuda`). The teachers are the trainer's own
networks after a few iterations: finalization and distillation cost does not depend on how well they fly (every
episode runs its full length; a crashed episode keeps stepping, masked).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=64, help="teachers (default 64)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iterations", type=int, default=4, help="timed PPO iterations (default 4)")
    ap.add_argument("--steps", type=int, default=3_000_000, help="the recipe's env steps per teacher (3M: the "
                                                                 "shipped default's, raptor pipeline's)")
    ap.add_argument("--epochs", type=int, default=2, help="timed distillation epochs (default 2, one BC, one DAgger)")
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    args = ap.parse_args()

    from raptor.distill.collect import collect
    from raptor.distill.dagger import DistillConfig, train_epoch
    from raptor.policy.network import RaptorPolicyNet
    from raptor.rl.config import TrainConfig, teacher_airframe, training_env_config
    from raptor.rl.ppo import BatchedPPO
    from raptor.rl.run import RunDir
    from raptor.rl.shard import finalize_teachers
    from raptor.rl.teachers import TeacherSet
    from raptor.sim import mdp
    from raptor.sim.airframe_files import resolve_airframes, save_airframes
    from raptor.sim.config import EnvConfig
    from raptor.sim.env import BatchedQuadrotorEnv

    K, dev = args.k, args.device
    cfg = TrainConfig(device=dev, teachers_per_shard=K, steps=args.steps)
    afs = resolve_airframes(f"sampled:{K}:0")
    ppo = BatchedPPO([teacher_airframe(a, cfg) for a in afs], cfg.ppo, training_env_config(cfg), seed=0)
    ppo.iterate()  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.iterations):
        ppo.iterate()
    sync(dev)
    train_s = time.perf_counter() - t0
    rate = args.iterations * cfg.ppo.steps_per_iteration * K / train_s
    recipe_s = args.steps * K / rate
    res = {"k": K, "device": dev, "train_env_steps_per_s": round(rate), "recipe_steps_per_teacher": args.steps,
           "recipe_train_s": round(recipe_s, 1)}
    print(f"training, {K} teachers on {dev}: {rate:,.0f} env-steps/s; {args.steps:,} steps per teacher take "
          f"{recipe_s:,.0f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        rd = RunDir(tmp)
        best = {"actor": [ppo.deterministic_actors().mlp.teacher_state(k) for k in range(K)],
                "steps": [ppo.env_steps] * K}
        del ppo
        sync(dev)
        t0 = time.perf_counter()
        finalize_teachers(rd, cfg, list(range(K)), afs, best, [[] for _ in range(K)], train_s, args.steps)
        sync(dev)
        final_s = time.perf_counter() - t0
        res.update(finalize_s=round(final_s, 1), finalize_over_train=round(final_s / recipe_s, 4))
        print(f"finalization, {K} teachers: {final_s:.1f} s = {final_s / recipe_s:.3f} x the training time "
              f"(target <= 0.25)", flush=True)

        # Distillation: the finalized teachers as a raptor train run folder
        import json as _json

        run = {"format": "raptor-teachers", "version": 1, "airframe_spec": f"sampled:{K}:0", "ids": list(range(K)),
               "config": cfg.to_json(), "created": "", "retrain_attempts": []}
        (rd.root / "run.json").write_text(_json.dumps(run))
        save_airframes(rd.airframes_file, afs, {"spec": f"sampled:{K}:0"})
        dc = DistillConfig(device=dev)
        teachers = TeacherSet(tmp, only_passed=False).to(dev)
        init = mdp.InitialStateConfig(max_position_m=0.5, any_yaw_fraction=dc.any_yaw_fraction)
        env = BatchedQuadrotorEnv(teachers.airframes, dc.episodes_per_teacher,
                                  EnvConfig(observation="student", target="hover", init=init, device=dev,
                                            check_inputs=False, episode_steps=dc.episode_steps), seed=0)
        net = RaptorPolicyNet().to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=dc.learning_rate, eps=1e-7)
        gen = torch.Generator().manual_seed(1)
        roll_s = fit_s = 0.0
        for epoch in range(args.epochs):
            sync(dev)
            t0 = time.perf_counter()
            data = collect(env, teachers, None if epoch == 0 else net, dc.episode_steps, None, seed=epoch)
            sync(dev)
            t1 = time.perf_counter()
            net.train()
            train_epoch(net, opt, data, dc.batch_size, gen)
            sync(dev)
            roll_s += t1 - t0
            fit_s += time.perf_counter() - t1
        steps = args.epochs * env.num_envs * dc.episode_steps
        epoch_s = (roll_s + fit_s) / args.epochs
        res.update(distill_epoch_s=round(epoch_s, 2), distill_epochs_per_s=round(1 / epoch_s, 4),
                   distill_rollout_env_steps_per_s=round(steps / roll_s), distill_rollout_share=round(
                       roll_s / (roll_s + fit_s), 3), distill_recipe_epochs=800,
                   distill_recipe_s=round(800 * epoch_s, 1))
        print(f"distillation, {K} teachers x {dc.episodes_per_teacher} episodes: {epoch_s:.2f} s per epoch "
              f"({1 / epoch_s:.3f} epochs/s; rollouts {steps / roll_s:,.0f} env-steps/s, "
              f"{100 * roll_s / (roll_s + fit_s):.0f} % of the epoch); the recipe's 800 epochs: "
              f"{800 * epoch_s / 60:.1f} min", flush=True)
    print(json.dumps(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
