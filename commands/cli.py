"""The `raptor` command: one console script with subcommands (`python -m raptor` is the same).

The roof of the package: every subcommand is a module of raptor.commands that registers itself here through
`add_parser` and calls the library below it (raptor, raptor.sim, raptor.rl, raptor.distill, raptor.policy_export,
raptor.hil); nothing below imports a command module (tests/test_lint.py holds the layers of docs/architecture.md).
Errors the user can fix (RaptorError) are printed as one line with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from raptor import __version__
from raptor.errors import RaptorError
from raptor.validate import check_device, check_seed

# Every subcommand: the module that registers it and its one-line help. `raptor --help` reads
# only this table, so it answers without importing torch; `raptor CMD ...` imports CMD's module alone.
COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("raptor.commands.sample", "sample randomized airframes (RAPTOR domain randomization) into a file"),
    "sim": ("raptor.commands.sim", "a short batched rollout with a summary (hover or random actions)"),
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


def _register(sub: argparse._SubParsersAction, name: str) -> None:
    """Register subcommand `name` with its arguments; a missing optional extra is reported with the fix."""
    import importlib

    module = COMMANDS[name][0]
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
    except BrokenPipeError:  # the reader of stdout went away (`raptor ... | head`): not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0


if __name__ == "__main__":
    sys.exit(main())
