"""`raptor train`: the command line (flags -> TrainConfig, resume, status, retrain)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from raptor.errors import ConfigError
from raptor.rl.config import TrainConfig
from raptor.rl.ppo import PPOConfig
from raptor.rl.run import RunDir, status, status_table
from raptor.rl.train import train

# ----------------------------------------------------------------------------------------------------------------
# CLI


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one RL teacher per airframe (batched, sb3 or ray backend)")
    p.add_argument("--airframes", default=None, help="named | NAME,... | FILE | sampled:N:SEED")
    p.add_argument("--ids", default=None, help="which airframes of the spec, e.g. 0-999 or 0-9,12 (default all); "
                                                 "with --resume, the ids the run lacks are added and trained "
                                                 "with its stored recipe")
    p.add_argument("--out", default=None, help="output directory (teachers, checkpoints, run.json)")
    p.add_argument("--algo", default=None, help="ppo (batched, ray, sb3) | sac (sb3) (default ppo)")
    p.add_argument("--backend", default=None, help="batched | sb3 | ray (default batched)")
    p.add_argument("--device", default=None, help="cpu | cuda (default cpu)")
    p.add_argument("--steps", type=int, default=None, help="env steps per teacher (default 5,000,000 for PPO, "
                                                           "300,000 for sb3 SAC)")
    p.add_argument("--envs", type=int, default=None, help="PPO envs per teacher (default 256)")
    p.add_argument("--teachers-per-shard", type=int, default=None, help="teachers trained together (default 16)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--checkpoint-every", type=float, default=None, metavar="SECONDS",
                   help="seconds between checkpoints (default 60)")
    p.add_argument("--eval-every", type=int, default=None, metavar="STEPS",
                   help="env steps between selection evaluations (default 500,000; sb3 SAC 10,000)")
    p.add_argument("--eval-episodes", type=int, default=None, metavar="N",
                   help="hover episodes per teacher in each selection evaluation (default 100; with "
                        "--retrain-failed it applies to that round)")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="independent seeds trained per teacher; the best by the selection evaluations is kept "
                        "(default 1; batched and ray backends; with --retrain-failed it applies to that round)")
    p.add_argument("--merge-candidates", action="store_true",
                   help="with --candidates N: train one actor per teacher on the mean action of its N candidates "
                        "(gain-calibrated) instead of keeping the first-ranked (also per --retrain-failed round)")
    p.add_argument("--any-yaw", type=float, default=None, metavar="FRACTION",
                   help="fraction of training starts with a uniform random yaw (default 0: the reference's starts)")
    p.add_argument("--langevin", type=float, default=None, metavar="FRACTION",
                   help="fraction of training episodes that track a moving (Langevin) target instead of hovering "
                        "(default: each airframe's own mixture: 0.5 for sampled airframes, the reference's; 0 for the "
                        "named airframes' files)")
    p.add_argument("--start-scale", type=float, default=None, metavar="FACTOR",
                   help="multiply the training starts' linear and angular velocity ranges (default 1: the spec's; "
                        "the final evaluation always uses the spec's starts)")
    p.add_argument("--start-position", type=float, default=None, metavar="METERS",
                   help="training starts within +-METERS of the target on every axis (default 0.5, the hover "
                        "scenario's; larger trains the recovery from the box's edge; evaluations keep 0.5; with "
                        "--retrain-failed it applies to that round)")
    p.add_argument("--feedback-gains", default=None, metavar="LIST",
                   help="gains tried on each finished teacher's feedback around hover, the best on its own hover "
                        "episodes kept (default 1,1.1,1.2,1.3,1.4; 1 keeps the trained actor)")
    p.add_argument("--observation", default=None, choices=("privileged", "teacher"),
                   help="what teachers see: privileged = the teacher observation + the disturbance force (default), "
                        "teacher = the reference's 26 values")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="training seconds per shard; at the limit its teachers are finalized with their best "
                        "snapshot so far (default: train all --steps)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--retrain-failed", action="store_true", help="retrain the finished teachers below the bar")
    p.add_argument("--status", metavar="DIR", default=None, help="list the teachers of a run and exit")
    p.add_argument("--json", action="store_true", help="with --status: JSON instead of a table")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars to OUT/tensorboard")
    p.add_argument("--address", default=None, help="ray backend: cluster address (auto) or none for a local one")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs and batch jobs)")
    p.set_defaults(func=_cmd_train)


# --flag (argparse dest) -> TrainConfig field, for the flags that map one to one
FLAG_FIELDS = {"device": "device", "seed": "seed", "teachers_per_shard": "teachers_per_shard", "threads": "threads",
               "eval_every": "eval_every_steps", "eval_episodes": "eval_episodes", "candidates": "candidates",
               "any_yaw": "any_yaw_fraction", "langevin": "langevin_fraction", "observation": "observation",
               "start_scale": "start_velocity_scale", "checkpoint_every": "checkpoint_every_s",
               "time_limit": "time_limit_s"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    backend = args.backend or "batched"
    algo = args.algo or "ppo"
    default_steps = 300_000 if algo == "sac" else 5_000_000
    ppo = PPOConfig() if args.envs is None else replace(PPOConfig(), envs_per_teacher=args.envs)
    kw = {"backend": backend, "algo": algo, "steps": default_steps if args.steps is None else args.steps, "ppo": ppo}
    if algo == "sac":
        kw["eval_every_steps"] = 10_000
    for flag, name in FLAG_FIELDS.items():  # flags given override the config's defaults
        if getattr(args, flag) is not None:
            kw[name] = getattr(args, flag)
    if args.merge_candidates:
        kw["merge_candidates"] = True
    if args.feedback_gains is not None:
        try:
            kw["feedback_gains"] = tuple(float(x) for x in args.feedback_gains.split(","))
        except ValueError:
            raise ConfigError(f"bad --feedback-gains '{args.feedback_gains}': use e.g. 1,1.2,1.4") from None
    if args.start_position is not None:
        kw["init_min_position_m"] = kw["init_max_position_m"] = args.start_position
    return TrainConfig(**kw)


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
    cfg = None if (args.resume or args.retrain_failed) and args.backend is None else config_from_args(args)
    t0 = time.perf_counter()
    train(args.out, args.airframes, args.ids, cfg, resume=args.resume, retrain_failed=args.retrain_failed,
          progress=not args.no_progress, tensorboard=args.tensorboard, address=args.address,
          retrain_steps=args.steps if args.retrain_failed else None,
          retrain_eval_episodes=args.eval_episodes if args.retrain_failed else None,
          retrain_candidates=args.candidates if args.retrain_failed else None,
          retrain_start_position=args.start_position if args.retrain_failed else None,
          retrain_merge_candidates=True if args.retrain_failed and args.merge_candidates else None)
    rows = status(RunDir(args.out))
    print(status_table(rows))
    print(f"({time.perf_counter() - t0:.0f} s; teachers in {args.out}/teachers)")
    return 0
