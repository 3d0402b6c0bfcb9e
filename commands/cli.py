"""The `raptor` command: one console script with subcommands (`python -m raptor` is the same).

The roof of the package: every subcommand is a module of raptor.commands that registers itself here through
`add_parser` and calls the library below it (raptor, raptor.sim, raptor.rl, raptor.distill, raptor.policy_export,
raptor.hil); nothing below imports a command module (tests/test_lint.py holds the layers of docs/architecture.md).
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
    from raptor.sim.sampling import RACE_RANGES, RandomizationRanges

    ranges = RACE_RANGES if args.race else RandomizationRanges()
    airframes = sample_airframes(args.n, args.seed, ranges, round_like_reference=not args.full_precision)
    save_airframes(args.output, airframes, {"sampler": "raptor-dr/1 (RAPTOR e43ae4bc ranges, std::mt19937 emulation)",
                                            "seed": args.seed, "n": args.n,
                                            "rounded_like_reference": not args.full_precision,
                                            "ranges": "race (thrust-to-weight 1.5-12)" if args.race else "raptor"})
    t2w = [a.thrust_to_weight for a in airframes]
    mass = [a.mass_kg for a in airframes]
    print(f"wrote {len(airframes)} airframes to {args.output} (seed {args.seed}): mass {min(mass):.3f}-{max(mass):.3f}"
          f" kg, thrust-to-weight {min(t2w):.2f}-{max(t2w):.2f}")
    return 0


class OpenLoop:
    """Hover or random actions as a policy of the episode loop (raptor sim): no feedback, a baseline of the
    simulator itself."""

    def __init__(self, hover, random: bool, seed: int) -> None:
        import torch

        self.hover, self.random, self.steps = hover, random, 0
        self.gen = torch.Generator(device=hover.device).manual_seed(seed)

    def reset(self, batch_size: int) -> None:
        pass

    def step(self, obs):
        import torch

        if not self.random:
            return self.hover
        a = torch.rand(self.hover.shape, generator=self.gen, device=self.hover.device, dtype=self.hover.dtype)
        return 2 * a - 1

    def after_step(self, t, env, action, reward, terminated, alive) -> None:  # as a hook: counts the env steps
        self.steps = t + 1


def _cmd_sim(args: argparse.Namespace) -> int:
    import torch

    from raptor.metrics import summarize
    from raptor.runtime import run_episodes
    from raptor.sim.airframe import resolve_airframes
    from raptor.sim.env import BatchedQuadrotorEnv, EnvConfig

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


# Every subcommand: the module that registers it (None: defined here) and its one-line help. `raptor --help` reads
# only this table, so it answers without importing torch; `raptor CMD ...` imports CMD's module alone.
COMMANDS: dict[str, tuple[str | None, str]] = {
    "sample": (None, "sample randomized airframes (RAPTOR domain randomization) into a file"),
    "sim": (None, "a short batched rollout with a summary (hover or random actions)"),
    "eval": ("raptor.commands.evaluate", "fly a policy on airframes and scenarios: tables, JSON, plots"),
    "train": ("raptor.commands.train", "train one RL teacher per airframe (batched; sb3 or ray backends)"),
    "distill": ("raptor.commands.distill", "distill teachers into the 2084-parameter student (BC, then DAgger)"),
    "export": ("raptor.commands.export",
               "export a policy for a flight controller (crazyflie, px4, betaflight), as portable C, or ONNX"),
    "pipeline": ("raptor.commands.pipeline", "the whole mission in one command: teachers, retrain, distill, evaluate"),
    "hil": ("raptor.commands.hil", "hardware in the loop: simulator here, policy on a board, QEMU MCU or SITL"),
}
EXTRAS = {"serial": "hil", "mujoco": "mujoco", "stable_baselines3": "rl", "ray": "ray", "onnx": "onnx",
          "h5py": "official", "foundation_policy": "official"}


def _register_local(sub: argparse._SubParsersAction, name: str) -> None:
    if name == "sample":
        s = sub.add_parser("sample", help=COMMANDS["sample"][1], description=COMMANDS["sample"][1])
        s.add_argument("--n", type=int, default=1000, help="number of airframes (default 1000)")
        s.add_argument("--seed", type=int, default=0, help="sampler seed; 0 gives the 1000 RAPTOR teacher airframes")
        s.add_argument("-o", "--output", default="airframes.json", help="output file (default airframes.json)")
        s.add_argument("--full-precision", action="store_true",
                       help="keep full precision instead of the reference's 6-decimal rounding")
        s.add_argument("--race", action="store_true",
                       help="race-class option: thrust-to-weight up to 12 (flightmare's), other ranges RAPTOR's")
        s.set_defaults(func=_cmd_sample)
    else:
        s = sub.add_parser("sim", help=COMMANDS["sim"][1], description=COMMANDS["sim"][1])
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


def _register(sub: argparse._SubParsersAction, name: str) -> None:
    """Register subcommand `name` with its arguments; a missing optional extra is reported with the fix."""
    import importlib

    module = COMMANDS[name][0]
    if module is None:
        _register_local(sub, name)
        return
    try:
        importlib.import_module(module).add_parser(sub)
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").split(".")[0])
        hint = f"pip install 'raptor-quadrotor[{extra}]'" if extra else "reinstall raptor (pip install .)"
        raise RaptorError(f"`raptor {name}` needs the module {e.name!r}, which is not installed: {hint}") from None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only` one subcommand's arguments (the others listed by name and help)."""
    p = argparse.ArgumentParser(prog="raptor",
                                description="Train, check, export and fly quadrotor foundation policies.",
                                epilog="`raptor COMMAND --help` for a command's options. Manual: README.md.")
    p.add_argument("--version", action="version", version=f"raptor {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        if only is None or name == only:
            _register(sub, name)
        else:
            sub.add_parser(name, help=help_text)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(only=command if command in COMMANDS else "")
    except RaptorError as e:
        print(f"raptor {command}: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        from raptor.validate import check_device, check_seed

        if getattr(args, "seed", None) is not None:
            check_seed(args.seed)
        if getattr(args, "device", None) is not None:
            check_device(args.device)
        return int(args.func(args) or 0)
    except RaptorError as e:
        print(f"raptor {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"raptor {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
