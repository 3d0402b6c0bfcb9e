"""`raptor export`: the command over raptor.policy_export.export (C headers, target glue, ONNX, RLtools)."""

from __future__ import annotations

import argparse
from pathlib import Path

from raptor.policy_export.export import TARGETS, export


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a policy for a flight controller, as portable C, or as ONNX",
                       description="Export a policy: --target crazyflie | px4 | betaflight (firmware glue, C core, "
                                   "weights; DIR/README.md says how to build and fly), generic (the C core with host "
                                   "and QEMU Cortex-M test builds), rltools (policy.tar for stock PX4's mc_raptor "
                                   "module, no firmware build) or onnx.")
    p.add_argument("--policy", default="default",
                   help="default (the shipped student) | official | PATH (default: default)")
    p.add_argument("--target", default="generic", choices=TARGETS, help=" | ".join(TARGETS) + " (default generic)")
    p.add_argument("--out", required=True, help="output folder (created; files of the same name are replaced)")
    p.add_argument("--rate-hz", type=int, default=400, help="control rate; the GRU advances at 100 Hz (default 400)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    files = export(args.policy, args.target, args.out, args.rate_hz)
    out = Path(args.out)
    names = sorted(str(p.relative_to(out)) if p.is_relative_to(out) else str(p) for p in files)
    print(f"exported {args.policy} for {args.target} to {out}/ ({len(names)} files): " + ", ".join(names))
    if (out / "README.md").is_file():
        print(f"next: {out}/README.md says how to build, run and fly it")
    return 0
