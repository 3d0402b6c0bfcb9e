"""`raptor distill`: the command over raptor.distill.dagger (BC, then DAgger, then a held-out report)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from raptor.commands.evaluate import evaluate
from raptor.distill.dagger import DISTILL_FLAGS, DistillConfig, distill, resume_overrides, status_lines, stored_config
from raptor.errors import ConfigError
from raptor.metrics import markdown_table
from raptor.options import add_flags, given


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distill teachers into the 2084-parameter student (BC, then DAgger)")
    p.add_argument("--teachers", help="a raptor train output directory (required unless --status)")
    p.add_argument("--out", help="output directory (student, log, checkpoint, eval report; required unless --status)")
    add_flags(p, DistillConfig, DISTILL_FLAGS)
    p.add_argument("--include-failed", action="store_true", help="also distill teachers below the quality bar")
    p.add_argument("--eval-episodes", type=int, default=100, help="episodes per airframe of the final report")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs and batch jobs)")
    p.add_argument("--status", metavar="DIR", help="where the distillation in DIR stands: epochs done, CPU time left, "
                                                   "best held-out student, how to go on")
    p.set_defaults(func=_cmd_distill)


def _cmd_distill(args: argparse.Namespace) -> int:
    if args.status:
        print("\n".join(status_lines(Path(args.status))))
        return 0
    if not args.teachers or not args.out:
        raise ConfigError("--teachers DIR and --out DIR are required (or --status DIR)")
    kw = given(args, DISTILL_FLAGS)
    if args.include_failed:
        kw["only_passed"] = False
    if args.init_from is not None and args.disturbance_aux is None and not args.resume:
        kw["disturbance_aux_weight"] = 0.0
        print("--init-from: the disturbance auxiliary loss is off (--disturbance-aux 0); a fresh head would pull the "
              "trained student's hidden state before it has learned to read it")
    applied: dict[str, object] = {}
    if args.resume and (Path(args.out) / "config.json").is_file():  # else distill() says there is nothing to resume
        stored = stored_config(Path(args.out))
        if args.include_failed and stored.only_passed:
            raise ConfigError("a resumed distillation keeps its recipe: this run distills only the teachers at the "
                              "bar; drop --include-failed (another recipe needs another --out)")
        kw.pop("only_passed", None)
        applied, lines = resume_overrides(stored, kw)
        for line in lines:
            print(line)
        cfg = dataclasses.replace(stored, **applied)
    else:
        cfg = DistillConfig(**kw)
    t0 = time.perf_counter()
    last = distill(args.teachers, args.out, cfg, resume=args.resume, progress=not args.no_progress,
                   epochs=applied.get("epochs"), device=applied.get("device"))
    if args.resume:
        cfg = stored_config(Path(args.out))
    student = str(Path(args.out) / "student.safetensors")
    metrics = evaluate(student, cfg.holdout, "hover", args.eval_episodes, 0, cfg.device, str(Path(args.out) / "eval"),
                       progress=not args.no_progress)
    print(markdown_table(metrics, f"student, hover, held-out airframes {cfg.holdout}"))
    print(f"last epoch: {json.dumps(last)}")
    print(f"({time.perf_counter() - t0:.0f} s; student in {student}, report in {args.out}/eval)")
    return 0
