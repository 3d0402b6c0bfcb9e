"""`raptor sim`: a short batched rollout of hover or random actions with a summary: the simulator's own baseline."""

from __future__ import annotations

import argparse
import time

import torch

from raptor.metrics import summarize
from raptor.runtime import run_episodes
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv

HELP = "a short batched rollout with a summary (hover or random actions)"


class OpenLoop:
    """Hover or random actions as a policy of the episode loop (raptor sim): no feedback, a baseline of the
    simulator itself."""

    def __init__(self, hover, random: bool, seed: int) -> None:

        self.hover, self.random, self.steps = hover, random, 0
        self.gen = torch.Generator(device=hover.device).manual_seed(seed)

    def reset(self, batch_size: int) -> None:
        pass

    def step(self, obs):

        if not self.random:
            return self.hover
        a = torch.rand(self.hover.shape, generator=self.gen, device=self.hover.device, dtype=self.hover.dtype)
        return 2 * a - 1

    def after_step(self, t, env, action, reward, terminated, alive) -> None:  # as a hook: counts the env steps
        self.steps = t + 1


def _cmd_sim(args: argparse.Namespace) -> int:

    airframes = resolve_airframes(args.airframes)
    env = BatchedQuadrotorEnv(airframes, args.envs, EnvConfig(device=args.device, dtype=args.dtype,
                                                              compile=args.compile), seed=args.seed)
    hover = torch.as_tensor([a.hover_action for a in airframes], dtype=env.state.dtype,
                            device=env.device)[env.airframe_index][:, None].expand(-1, 4)
    print(f"simulating {env.num_envs} envs x {args.steps} steps on {args.device}"
          + (" (compiling the fused step first: about 30 s)" if args.compile else "") + " ...", flush=True)
    env.reset()
    env.step(hover)  # warm-up (and, with --compile, the compilation) outside the timing
    t0 = time.perf_counter()
    policy = OpenLoop(hover, args.actions == "random", args.seed)
    r = run_episodes(policy, env, args.steps, hooks=[policy], seed=args.seed, trajectories=False,
                     airframe_names=[a.name for a in airframes])
    dt = time.perf_counter() - t0
    o = summarize(r)["overall"]
    ended = "" if policy.steps == args.steps else f" (every episode had terminated after {policy.steps})"
    print(f"{env.num_envs} envs ({len(airframes)} airframes x {args.envs}) x {args.steps} steps{ended}, "
          f"{args.actions} actions, on {args.device}: {env.num_envs * policy.steps / dt:,.0f} env-steps/s "
          "(the episode loop with its metrics; benchmarks/sim_throughput.py times the simulator alone)")
    print(f"terminated: {100 * o['termination_rate']:.1f} % of episodes; mean return {o['mean_return']:.1f}; "
          f"non-finite states: {int((~torch.isfinite(env.state)).any(-1).sum())}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sim", help=HELP, description=HELP)
    s.add_argument("--airframes", default="crazyflie", help="named | NAME,... | FILE | sampled:N:SEED")
    s.add_argument("--envs", type=int, default=64, help="envs per airframe (default 64)")
    s.add_argument("--steps", type=int, default=500, help="steps of 10 ms (default 500)")
    s.add_argument("--actions", choices=["hover", "random"], default="hover",
                   help="constant hover thrust or uniform random actions (default hover)")
    s.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="default float32")
    s.add_argument("--seed", type=int, default=0, help="seed of the starts and random actions (default 0)")
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the fused transition (about 30 s to compile, then several times faster)")
    s.set_defaults(func=_cmd_sim)
