"""Teacher training speed, all in one run (same process, same machine):

1. Time for one crazyflie teacher to reach the quality bar (hover, 500 episodes; success >= 90 %, termination <=
   the published policy's on the same starts + 1 point, mean |da| <= 0.05) with stable-baselines3 SAC (spec
   settings), stable-baselines3 PPO (64 envs) and our batched backend (K = 1). Each gets the same wall-clock
   budget; the bar is checked every `--check-every` seconds of training, and the check itself is not counted.
2. Aggregate env-steps/s of the batched PPO trainer (rollout + update) for K = 16, 64, 256 teachers, as a ratio
   to stable-baselines3 SAC's training env-steps/s measured in this run, and teachers-to-bar per hour estimated
   as aggregate steps/s x 3600 / (env steps the crazyflie teacher needed to reach the bar).

    python benchmarks/teacher_throughput.py [--budget 900] [--ks 16,64,256] [--device cpu|cuda] [--skip-sb3]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from raptor.rl.config import TrainConfig, teacher_airframe
from raptor.rl.ppo import BatchedPPO, PPOConfig
from raptor.rl.teacher import QualityBar, evaluate_teachers, reference_termination, trimmed_copy
from raptor.sim.airframe import named_airframe
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig

BAR = QualityBar()
SEED = 1_000_003


def bar_check(actors, af, ref):
    """The teacher with its hover offset trimmed as `raptor train` does (2 x 16 episodes, ~1 s), judged on the bar;
    without the feedback-gain calibration `raptor train` adds before its final evaluation (measured before it)."""
    m = evaluate_teachers(trimmed_copy(actors, [af], 16, seed=SEED + 11), [af], BAR.episodes, seed=SEED)[0]
    return BAR.judge(m, ref)["passed"], m


def batched_time_to_bar(budget_s: float, check_every_s: float, device: str, ref, seed: int = 0) -> dict:
    af = teacher_airframe(named_airframe("crazyflie"), TrainConfig())
    ppo = BatchedPPO([af], PPOConfig(), EnvConfig(observation="privileged", device=device, check_inputs=False,
                                                  episode_steps=TrainConfig().train_episode_steps), seed=seed)
    train_s, next_check, history = 0.0, check_every_s, []
    while train_s < budget_s:
        t0 = time.perf_counter()
        ppo.iterate()
        train_s += time.perf_counter() - t0
        if train_s >= next_check:
            next_check += check_every_s
            ok, m = bar_check(ppo.deterministic_actors(), af, ref)
            history.append((round(train_s, 1), ppo.env_steps, m["success_rate"], m["termination_rate"]))
            if ok:
                return {"reached": True, "train_s": train_s, "env_steps": ppo.env_steps, "metrics": m,
                        "history": history}
    return {"reached": False, "train_s": train_s, "env_steps": ppo.env_steps, "history": history}


def sb3_time_to_bar(algo: str, budget_s: float, check_every_s: float, ref) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    from raptor.rl.sb3_backend import Sb3VecEnv, actor_from_sb3, sb3_model

    af = teacher_airframe(named_airframe("crazyflie"), TrainConfig())
    env = Sb3VecEnv(af, 1 if algo == "sac" else 64, EnvConfig(observation="teacher", check_inputs=False))
    model = sb3_model(algo, env, seed=0, device="cpu")
    state = {"train_s": 0.0, "t0": time.perf_counter(), "next": check_every_s, "result": None, "history": [],
             "steps_at_10k": None, "t_at_10k": None}

    class Check(BaseCallback):
        def _on_step(self) -> bool:
            now = state["train_s"] + time.perf_counter() - state["t0"]
            if algo == "sac" and self.num_timesteps == 10_000:  # updates start: measure training speed from here
                state["steps_at_10k"], state["t_at_10k"] = self.num_timesteps, now
            if now >= state["next"]:
                state["train_s"], state["next"] = now, state["next"] + check_every_s
                ok, m = bar_check(actor_from_sb3(model, algo)[0], af, ref)
                state["history"].append((round(now, 1), self.num_timesteps, m["success_rate"], m["termination_rate"]))
                state["t0"] = time.perf_counter()
                if ok:
                    state["result"] = {"reached": True, "train_s": now, "env_steps": self.num_timesteps, "metrics": m}
                    return False
                if now >= budget_s:
                    return False
            return True

    model.learn(10**9, callback=Check())
    total = state["train_s"] + time.perf_counter() - state["t0"]
    out = state["result"] or {"reached": False, "train_s": total, "env_steps": model.num_timesteps}
    out["history"] = state["history"]
    if algo == "sac" and state["t_at_10k"] is not None:
        out["train_steps_per_s"] = (model.num_timesteps - state["steps_at_10k"]) / max(
            state["train_s"] - state["t_at_10k"], 1e-9)
    out["steps_per_s"] = model.num_timesteps / max(out["train_s"], 1e-9)
    return out


def aggregate_throughput(K: int, device: str, iterations: int = 3) -> float:
    afs = [teacher_airframe(a, TrainConfig()) for a in resolve_airframes(f"sampled:{K}:7")]
    cfg = PPOConfig()
    ppo = BatchedPPO(afs, cfg, EnvConfig(observation="privileged", device=device, check_inputs=False,
                                         episode_steps=TrainConfig().train_episode_steps))
    ppo.iterate()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iterations):
        ppo.iterate()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return K * cfg.steps_per_iteration * iterations / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=900.0, help="training seconds per time-to-bar run")
    ap.add_argument("--sb3-budget", type=float, default=None, help="budget of the sb3 runs (default --budget)")
    ap.add_argument("--check-every", type=float, default=10.0, help="training seconds between bar checks")
    ap.add_argument("--ks", default="16,64,256")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-sb3", action="store_true")
    ap.add_argument("--seeds", type=int, default=1, help="batched time-to-bar runs with seeds 0..N-1 (the table "
                                                        "shows the median)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    cf = named_airframe("crazyflie")
    ref = reference_termination([cf], BAR.episodes, seed=SEED)[0][0]
    limit = BAR.judge({"success_rate": 1, "termination_rate": 0, "mean_action_change": 0}, ref)["termination_limit"]
    print(f"published policy on the crazyflie, same {BAR.episodes} starts: termination "
          f"{'n/a' if ref is None else f'{100 * ref:.1f} %'}; bar: termination <= {100 * limit:.1f} %")
    res: dict = {"reference_termination": ref}
    runs = [batched_time_to_bar(args.budget, args.check_every, args.device, ref, seed) for seed in range(args.seeds)]
    for seed, r in enumerate(runs):
        print(f"batched K=1 seed {seed}: {'reached' if r['reached'] else 'not reached'} after {r['train_s']:.0f} s, "
              f"{r['env_steps']:,} env steps")
    runs.sort(key=lambda r: (not r["reached"], r["train_s"]))
    res["batched"] = runs[(len(runs) - 1) // 2]  # the median run (unreached ones count as slowest)
    res["batched_runs"] = runs
    if not args.skip_sb3:
        sb3_budget = args.sb3_budget or args.budget
        res["sb3_sac"] = sb3_time_to_bar("sac", sb3_budget, max(args.check_every, 30.0), ref)
        res["sb3_ppo"] = sb3_time_to_bar("ppo", sb3_budget, max(args.check_every, 30.0), ref)
    print("\n| trainer | reached the bar | training time [s] | env steps | success / termination / mean abs da |")
    print("|---|---|---|---|---|")
    trainers = (("batched PPO (K=1)", "batched"), ("sb3 SAC (spec)", "sb3_sac"), ("sb3 PPO (64 envs)", "sb3_ppo"))
    for name, key in trainers:
        if key not in res:
            continue
        r = res[key]
        m = r.get("metrics")
        q = "-" if not m else (f"{100 * m['success_rate']:.1f} % / {100 * m['termination_rate']:.1f} % / "
                               f"{m['mean_action_change']:.4f}")
        reached = "yes" if r["reached"] else "no (budget)"
        print(f"| {name} | {reached} | {r['train_s']:.0f} | {r['env_steps']:,} | {q} |")
    sac_sps = res.get("sb3_sac", {}).get("train_steps_per_s")
    steps_to_bar = res["batched"]["env_steps"] if res["batched"]["reached"] else None
    print("\n| K teachers | aggregate env-steps/s | x sb3 SAC | teachers-to-bar per hour (est.) |")
    print("|---|---|---|---|")
    res["aggregate"] = {}
    for K in [int(k) for k in args.ks.split(",") if k]:
        sps = aggregate_throughput(K, args.device, iterations=3 if K < 64 else 1)
        res["aggregate"][K] = sps
        ratio = f"{sps / sac_sps:,.0f}x" if sac_sps else "-"
        per_hour = f"{sps * 3600 / steps_to_bar:,.0f}" if steps_to_bar else "-"
        print(f"| {K} | {sps:,.0f} | {ratio} | {per_hour} |")
    if sac_sps:
        print(f"\nsb3 SAC trains at {sac_sps:,.1f} env-steps/s (one update per env step, after its 10k warm-up)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
