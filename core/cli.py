"""The `raptor` command: one console script with subcommands.

Every subcommand lives in the module that owns the work and registers itself here through `add_parser`.
Errors the user can fix (RaptorError) are printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time

from raptor import __version__
from raptor.errors import RaptorError


def _cmd_sample(args: argparse.Namespace) -> int:
    from raptor.sim.airframe import save_airframes
    from raptor.sim.sampling import sample_airframes

    if args.n <= 0:
        raise RaptorError("--n must be positive")
    airframes = sample_airframes(args.n, args.seed, round_like_reference=not args.full_precision)
    save_airframes(args.output, airframes, {"sampler": "raptor-dr/1 (RAPTOR e43ae4bc ranges, std::mt19937 emulation)",
                                            "seed": args.seed, "n": args.n,
                                            "rounded_like_reference": not args.full_precision})
    t2w = [a.thrust_to_weight for a in airframes]
    mass = [a.mass_kg for a in airframes]
    print(f"wrote {len(airframes)} airframes to {args.output} (seed {args.seed}): mass {min(mass):.3f}-{max(mass):.3f}"
          f" kg, thrust-to-weight {min(t2w):.2f}-{max(t2w):.2f}")
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    import torch

    from raptor.sim.airframe import resolve_airframes
    from raptor.sim.env import BatchedQuadrotorEnv, EnvConfig

    airframes = resolve_airframes(args.airframes)
    env = BatchedQuadrotorEnv(airframes, args.envs, EnvConfig(device=args.device, dtype=args.dtype,
                                                              compile=args.compile), seed=args.seed)
    env.reset()
    hover = torch.as_tensor([a.hover_action for a in airframes], dtype=env.state.dtype,
                            device=env.device)[env.airframe_index][:, None].expand(-1, 4)
    gen = torch.Generator(device=env.device).manual_seed(args.seed)
    ret = torch.zeros(env.num_envs, dtype=env.state.dtype, device=env.device)
    terms = torch.zeros_like(ret)
    env.step(hover)  # warm-up (and, with --compile, the compilation) outside the timing
    env.reset()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        if args.actions == "random":
            a = torch.rand((env.num_envs, 4), generator=gen, device=env.device, dtype=ret.dtype) * 2 - 1
        else:
            a = hover
        _, r, term, _, _ = env.step(a)
        ret += r
        terms += term.to(ret.dtype)
    dt = time.perf_counter() - t0
    print(f"{env.num_envs} envs ({len(airframes)} airframes x {args.envs}) x {args.steps} steps, "
          f"{args.actions} actions, on {args.device}: {env.num_envs * args.steps / dt:,.0f} env-steps/s")
    print(f"terminations per env: {terms.mean().item():.2f}; reward per env-step: "
          f"{(ret.sum() / (env.num_envs * args.steps)).item():.3f}; non-finite states: "
          f"{int((~torch.isfinite(env.state)).any(-1).sum())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raptor",
                                description="Train, check, export and fly quadrotor foundation policies.")
    p.add_argument("--version", action="version", version=f"raptor {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("sample", help="sample randomized airframes (RAPTOR domain randomization) into a file")
    s.add_argument("--n", type=int, default=1000, help="number of airframes (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="sampler seed; 0 gives the 1000 RAPTOR teacher airframes")
    s.add_argument("-o", "--output", default="airframes.json", help="output file (default airframes.json)")
    s.add_argument("--full-precision", action="store_true",
                   help="keep full precision instead of the reference's 6-decimal rounding")
    s.set_defaults(func=_cmd_sample)

    s = sub.add_parser("sim", help="a short batched rollout with a summary (hover or random actions)")
    s.add_argument("--airframes", default="crazyflie", help="named | NAME,... | FILE | sampled:N:SEED")
    s.add_argument("--envs", type=int, default=64, help="envs per airframe (default 64)")
    s.add_argument("--steps", type=int, default=500, help="steps of 10 ms (default 500)")
    s.add_argument("--actions", choices=["hover", "random"], default="hover")
    s.add_argument("--device", default="cpu")
    s.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the fused transition (about 30 s to compile, then several times faster)")
    s.set_defaults(func=_cmd_sim)

    for register in _plugin_registrars():
        register(sub)
    return p


def _plugin_registrars():
    """Subcommands owned by other modules (eval, export, ...), imported lazily when present."""
    import importlib

    out = []
    for mod in ("raptor.evaluation", "raptor.rl.train", "raptor.distill.dagger", "raptor.policy_export.export",
                "raptor.hil.runner"):
        try:
            out.append(importlib.import_module(mod).add_parser)
        except ImportError:
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except RaptorError as e:
        print(f"raptor {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"raptor {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
