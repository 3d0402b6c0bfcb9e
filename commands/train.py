"""`raptor train`: the command line (flags -> TrainConfig, resume, status, retrain)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from raptor.errors import ConfigError
from raptor.options import add_flags, given, with_overrides
from raptor.rl.config import FAST_RECIPE, RETRAIN_FIELDS, TRAIN_FLAGS, TrainConfig
from raptor.rl.run import RunDir, status, status_table
from raptor.rl.train import train


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one RL teacher per airframe (batched, sb3 or ray backend)")
    p.add_argument("--airframes", default=None, help="named | NAME,... | FILE | sampled:N:SEED")
    p.add_argument("--ids", default=None, help="which airframes of the spec, e.g. 0-999 or 0-9,12 (default all); "
                                                 "with --resume, the ids the run lacks are added and trained "
                                                 "with its stored recipe")
    p.add_argument("--out", default=None, help="output directory (teachers, checkpoints, run.json)")
    add_flags(p, TrainConfig, TRAIN_FLAGS)
    p.add_argument("--fast", action="store_true",
                   help="the measured fast recipe (3x the teachers at the bar per CPU-hour, docs/benchmarks.md): "
                        + " ".join(f"{_option(k)} {v}" if not isinstance(v, bool) else _option(k)
                                   for k, v in FAST_RECIPE.items()) + "; flags given beside it win")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--retrain-failed", action="store_true",
                   help="retrain the finished teachers below the bar; --" + ", --".join(
                       fl.option.lstrip("-") for fl in TRAIN_FLAGS if fl.field in RETRAIN_FIELDS)
                   + " apply to that round")
    p.add_argument("--status", metavar="DIR", default=None, help="list the teachers of a run and exit")
    p.add_argument("--json", action="store_true", help="with --status: JSON instead of a table")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars to OUT/tensorboard")
    p.add_argument("--address", default=None, help="ray backend: cluster address (auto) or none for a local one")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs and batch jobs)")
    p.set_defaults(func=_cmd_train)


def _option(field: str) -> str:
    return next(fl.option for fl in TRAIN_FLAGS if fl.field == field)


def _given(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the command line sets: --fast's recipe, then the flags given (which win)."""
    return {**(FAST_RECIPE if getattr(args, "fast", False) else {}), **given(args, TRAIN_FLAGS)}


def _with_start_position(over: dict) -> dict:
    """--start-position sets both ends of the training starts' position range."""
    if "init_min_position_m" in over:
        over = {**over, "init_max_position_m": over["init_min_position_m"]}
    return over


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    over = _given(args)
    if over.get("algo") == "sac":  # the stable-baselines3 SAC reference trains shorter and evaluates more often
        over = {"steps": 300_000, "eval_every_steps": 10_000, **over}
    return with_overrides(TrainConfig(), _with_start_position(over))


def retrain_overrides(args: argparse.Namespace) -> dict:
    """The flags of a --retrain-failed round, as TrainConfig fields."""
    return _with_start_position({k: v for k, v in _given(args).items() if k in RETRAIN_FIELDS})


def _resume_with_envs(rd: RunDir, envs: int) -> None:
    """--resume --envs N: a run that has not trained anything yet (e.g. stopped because its envs did not fit) takes
    the new size; a run with progress keeps its recipe, and saying otherwise is refused rather than ignored."""
    run = rd.read_run()
    stored = TrainConfig.from_json(run["config"])
    if envs == stored.ppo.envs_per_teacher:
        return
    started = any(rd.finished(i) for i in run["ids"]) or (rd.checkpoints.is_dir() and any(rd.checkpoints.iterdir()))
    if started:
        raise ConfigError(f"'{rd.root}' trains with --envs {stored.ppo.envs_per_teacher} and has progress; a resume "
                          "keeps its recipe: drop --envs, or start another --out")
    new = replace(stored, ppo=replace(stored.ppo, envs_per_teacher=envs))
    new.check_machine()
    run["config"] = new.to_json()
    rd.write_run(run)


def _cmd_train(args: argparse.Namespace) -> int:
    if args.status:
        rows = status(RunDir(args.status))
        print(json.dumps(rows, indent=1) if args.json else status_table(rows))
        return 0
    if not args.out:
        raise ConfigError("--out DIR is required (or --status DIR)")
    if (args.resume or args.retrain_failed) and args.envs is not None:
        _resume_with_envs(RunDir(args.out), args.envs)
    again = args.resume or args.retrain_failed
    cfg = None if again else config_from_args(args)
    # A resume or retrain round applies the layout flags it is given and refuses recipe changes (except a retrain
    # round's own fields) in one line; none is dropped without a word
    overrides = None
    if again:
        overrides = {k: v for k, v in _with_start_position(_given(args)).items()
                     if not (args.retrain_failed and k in RETRAIN_FIELDS + ("init_max_position_m",))
                     and k != "ppo.envs_per_teacher"}
    t0 = time.perf_counter()
    train(args.out, args.airframes, args.ids, cfg, resume=args.resume, retrain_failed=args.retrain_failed,
          progress=not args.no_progress, tensorboard=args.tensorboard, address=args.address,
          retrain=retrain_overrides(args) if args.retrain_failed else None, overrides=overrides)
    rows = status(RunDir(args.out))
    print(status_table(rows))
    print(f"({time.perf_counter() - t0:.0f} s; teachers in {args.out}/teachers)")
    return 0
