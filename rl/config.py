"""How teachers are trained: TrainConfig, the teacher env and airframe, id lists (`raptor train`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from raptor.errors import ConfigError
from raptor.options import Flag, resume_changes, with_overrides
from raptor.rl.ppo import PPOConfig
from raptor.rl.teacher import (
    QualityBar,
)
from raptor.sim import mdp
from raptor.sim.airframe import Airframe, default_trajectory
from raptor.sim.config import EnvConfig
from raptor.sim.functional import MIXED_KINDS
from raptor.validate import check_device, check_fits, check_seed

RUN_FORMAT = "raptor-teachers"
RUN_VERSION = 9  # 9: the gain screen and tolerance; 8: each feedback gain scored on its own trim;
# 7: a teacher still climbing is not given up; 6: giving up on hopeless teachers; 5: early finish; 4: compile;
# 3: teacher targets and feedforward; 2: every TrainConfig field
# The fields each run-format version added, with the behaviour runs of the version before had
ADDED_IN_VERSION = {3: {"targets": None, "target_feedforward": False}, 4: {"compile": False},
                    5: {"finish_early": False, "finish_min_steps": 1_000_000},
                    6: {"give_up_below": 0.0, "give_up_min_steps": 1_500_000}, 7: {"give_up_stall_steps": 0},
                    8: {"gain_retrim": False}, 9: {"gain_screen_episodes": 0, "gain_tolerance": 0.0}}
BACKENDS = ("batched", "sb3", "ray")
ALGOS = ("ppo", "sac")


@dataclass(frozen=True)
class TrainConfig:
    """How teachers are trained. `steps` counts env steps per teacher."""

    backend: str = "batched"
    algo: str = "ppo"
    steps: int = 5_000_000
    device: str = "cpu"
    seed: int = 0
    teachers_per_shard: int = 16
    eval_every_steps: int = 500_000  # selection evaluations (hover, `eval_episodes`), keep the best snapshot
    eval_episodes: int = 100
    checkpoint_every_s: float = 60.0
    init_min_position_m: float = 0.5  # teachers also start within +-0.5 m: the hover scenario and distillation
    # ... and no farther (None: the airframe's own range, up to ~2 m on large frames, the reference's). Teachers are
    # judged and distilled from +-0.5 m starts; trained from 2 m they learn to fly fast toward the target and cross
    # the 2 m/s termination speed from the judged starts (on 4.3-4.8 kg benchmark frames: 2-3 % crashes and a slow
    # altitude drift, both gone with the cap).
    init_max_position_m: float | None = 0.5
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    # Trim each teacher's steady-state hover offset into its first-layer bias before every evaluation
    # (raptor.rl.teacher.calibrate_offsets): the selection and the final teacher see the trimmed actor.
    calibrate: bool = True
    calibration_episodes: int = 16
    # Before the final evaluation, each teacher's feedback around its hover command is scaled by the gain of this
    # list that scores best on `gain_episodes` hover episodes of its own (raptor.rl.teacher.calibrate_gain); (1.0,)
    # keeps the trained actor as it is.
    feedback_gains: tuple[float, ...] = (1.0, 1.1, 1.2, 1.3, 1.4)
    gain_episodes: int = 500
    # Each gain's teacher is trimmed again before it is scored, and keeps its own trim (calibrate_gain's retrim; with
    # `calibrate`): a gain != 1 otherwise moves the hover equilibrium by the error of its hover-command estimate.
    gain_retrim: bool = True
    # Cheaper, gentler scoring (part of --fast, FAST_RECIPE; measured on fresh ids, docs/benchmarks.md): every gain
    # first on gain_screen_episodes episodes and each teacher's two best on gain_episodes (0: every gain on them);
    # of the gains within gain_tolerance of the best score, the one closest to 1 (0: the best).
    gain_screen_episodes: int = 0
    gain_tolerance: float = 0.0
    any_yaw_fraction: float = 0.0  # fraction of training starts with any yaw (the reference: tilt <= 1 rad only)
    # Fraction of training episodes whose target moves (the reference's Langevin target process, raptor.sim.mdp); None
    # keeps each airframe's own trajectory mixture (the sampled airframes: the reference's [0.5, 0.5]; the named
    # airframes' files: hover only).
    langevin_fraction: float | None = None
    # What the teachers' targets do (issue #30), each episode one of these, uniformly: hover, langevin (the reference's
    # wandering target), figure_eight (radius 0.25-1 m, period 4-10 s), step (a 0.5 m setpoint jump at 1-3 s). None:
    # each airframe's own mixture of hover and Langevin (langevin_fraction). Selection and the bar stay on hover.
    targets: tuple[str, ...] | None = None
    # The privileged observation's force channel also shows the target's acceleration as a push (-m a_des): a
    # memoryless teacher can then follow a moving target without lag (EnvConfig.privileged_target_acceleration).
    target_feedforward: bool = False
    # Multiplies the linear and angular velocity ranges of the training starts (the evaluation keeps the spec's):
    # > 1 trains the recovery from faster starts than the teacher is judged on, where slow-motor airframes crash.
    start_velocity_scale: float = 1.0
    # What the teachers see: "privileged" (the teacher observation plus the episode's disturbance force, 29) or
    # "teacher" (the reference's 26). See raptor.sim.mdp.observe_privileged.
    observation: str = "privileged"
    # Training episodes end (truncated, bootstrapped from the critic) after this many steps: shorter than the
    # evaluation's 500 puts more of the data on the recovery from the start states, where teachers crash.
    train_episode_steps: int = 200
    # Training seconds per shard (None: no limit): at the limit the shard stops, takes a last selection evaluation
    # and finalizes its teachers with their best snapshots (eval.json records the steps actually trained).
    time_limit_s: float | None = None
    # Independent seeds trained per teacher in the shard (batched and ray backends): each airframe gets this many
    # networks, and the one ranked best by the selection evaluations (never the final evaluation's starts) is
    # finalized. PPO teachers of one airframe differ by seed: eight raptor061 seeds at 4M steps scored 0.72-0.87
    # (success - termination) in the same selection evaluation. The pick is ranked on few episodes, so its judged
    # result is typically lower (raptor061's first-ranked: 0.87 in selection, 0.81 judged).
    candidates: int = 1
    # With candidates > 1: instead of keeping the first-ranked candidate, train one actor per teacher to imitate the
    # mean action of all its candidates, each trimmed and gain-calibrated first (raptor.rl.teacher.merge_candidates,
    # DAgger: merge_rounds rounds of merge_envs hover episodes). Seeds crash on different starts; their mean on fewer.
    merge_candidates: bool = False
    # Train on the compiled fused simulator (EnvConfig.compile: about 30-60 s to compile once per shard, then the
    # simulation costs a tenth; the selection and final evaluations keep the reference integrator)
    compile: bool = False
    # A teacher leaves training once two selection evaluations in a row after finish_min_steps clear the bar with a
    # margin (success >= bar + 5 points, termination <= the published policy's on the same starts): its best
    # snapshot is finalized and judged as every teacher's; the others train on, alone, to `steps`
    # (raptor.rl.shard.EarlyFinish). Most airframes are at their final quality after 0.5-1M of the 3M steps.
    finish_early: bool = False
    finish_min_steps: int = 1_000_000
    # With finish_early, a teacher also leaves training once two selection evaluations in a row after
    # give_up_min_steps stay below give_up_below success: it is finalized and judged as every teacher (and fails the
    # bar, so a retrain round trains it again with a new seed). Chosen on the every-task run's 384 first-round curves
    # (docs/benchmarks.md): 54 stop at 2.0M instead of 3M, one of them would have passed at 3M. 0 turns it off.
    give_up_below: float = 0.7
    give_up_min_steps: int = 1_500_000
    # ... and only if it is not climbing: its best success within the last give_up_stall_steps is less than 10 points
    # above its best before them. With evaluations every 250k, "two in a row below 70 %" spans 250k steps, and on
    # fresh ids (600-663) it stopped 4 teachers at 1.78M that were climbing and pass at 3M (docs/benchmarks.md).
    # 0: the level test alone (runs of format 6).
    give_up_stall_steps: int = 500_000
    merge_rounds: int = 12
    merge_envs: int = 1024
    ppo: PPOConfig = field(default_factory=PPOConfig)
    bar: QualityBar = field(default_factory=QualityBar)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}")
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm '{self.algo}'; choose one of {', '.join(ALGOS)}")
        if self.backend in ("batched", "ray") and self.algo != "ppo":
            raise ConfigError(f"the {self.backend} backend trains PPO teachers (--algo ppo); "
                              "SAC is available as the stable-baselines3 reference (--backend sb3 --algo sac)")
        if self.observation not in ("privileged", "teacher"):
            raise ConfigError(f"unknown teacher observation '{self.observation}'; choose privileged or teacher")
        if self.steps <= 0 or self.teachers_per_shard <= 0 or self.eval_episodes <= 0 or self.candidates <= 0:
            raise ConfigError("--steps, --teachers-per-shard, --eval-episodes and --candidates must be positive")
        if self.merge_candidates and self.candidates < 2:
            raise ConfigError("--merge-candidates needs --candidates 2 or more")
        if self.merge_rounds <= 0 or self.merge_envs <= 0:
            raise ConfigError("merge_rounds and merge_envs must be positive")
        if self.candidates > 1 and self.backend == "sb3":
            raise ConfigError("--candidates needs the batched or ray backend (sb3 trains one network per run)")
        if self.backend == "sb3" and (self.compile or self.finish_early):
            raise ConfigError("--compile and --finish-early (and --fast, which sets them) are the batched and ray "
                              "backends'; stable-baselines3 steps its own env: drop them or use --backend batched")
        if not 0 <= self.gain_screen_episodes or not 0.0 <= self.gain_tolerance < 1.0:
            raise ConfigError(f"--gain-screen-episodes must be >= 0 and --gain-tolerance in [0, 1) (got "
                              f"{self.gain_screen_episodes}, {self.gain_tolerance})")
        if not self.feedback_gains or not all(g > 0 for g in self.feedback_gains) or self.gain_episodes <= 0:
            raise ConfigError(f"--feedback-gains must be positive numbers, e.g. 1,1.2,1.4 (got {self.feedback_gains})")
        if not self.init_min_position_m > 0:
            raise ConfigError(f"--start-position must be positive, got {self.init_min_position_m}")
        if self.init_max_position_m is not None and not self.init_max_position_m >= self.init_min_position_m:
            raise ConfigError(f"init_max_position_m ({self.init_max_position_m}) must be >= init_min_position_m "
                              f"({self.init_min_position_m}) or None")
        if not self.start_velocity_scale > 0:
            raise ConfigError(f"--start-scale must be positive, got {self.start_velocity_scale}")
        if not 0.0 <= self.give_up_below < 1.0 or self.give_up_min_steps < 0 or self.give_up_stall_steps < 0:
            raise ConfigError(f"--give-up-below must be a success rate in [0, 1) (0: never give up), "
                              f"--give-up-min-steps and --give-up-stall-steps >= 0 (got {self.give_up_below}, "
                              f"{self.give_up_min_steps}, {self.give_up_stall_steps})")
        if self.langevin_fraction is not None and not 0.0 <= self.langevin_fraction <= 1.0:
            raise ConfigError(f"--langevin must be a fraction in [0, 1], got {self.langevin_fraction}")
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))  # JSON gives a list
            bad = [t for t in self.targets if t not in MIXED_KINDS]
            if not self.targets or bad:
                raise ConfigError(f"--targets: choose from {', '.join(MIXED_KINDS)} (got {', '.join(bad) or 'none'})")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ConfigError(f"--time-limit must be a positive number of seconds, got {self.time_limit_s}")
        check_seed(self.seed)

    def check_machine(self) -> None:
        """What depends on this machine: the device exists, and one shard's envs fit in its memory (checked
        before a run folder is made)."""
        check_device(self.device)
        envs = self.ppo.envs_per_teacher * self.teachers_per_shard * self.candidates
        check_fits(envs * ENV_BYTES_ESTIMATE, self.device, f"a shard of {envs:,} envs ({self.teachers_per_shard} "
                   f"teachers x {self.candidates} candidates x {self.ppo.envs_per_teacher:,} envs)",
                   "use fewer --envs or --teachers-per-shard")

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("ppo", "bar")}
        d["ppo"] = self.ppo.to_json()
        d["bar"] = dataclasses.asdict(self.bar)
        d["feedback_gains"] = list(self.feedback_gains)
        d["targets"] = None if self.targets is None else list(self.targets)
        return d

    @staticmethod
    def from_json(d: dict) -> TrainConfig:
        """The config of a run.json of this version (every field; see migrate_run for older runs)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        missing, unknown = sorted(names - set(d)), sorted(set(d) - names)
        if missing or unknown:
            raise ConfigError(f"the stored training config does not match this raptor (missing {missing}, unknown "
                              f"{unknown}): the run was written by another version of raptor train")
        d = dict(d)
        d["ppo"] = PPOConfig.from_json(d["ppo"])
        d["bar"] = QualityBar(**d["bar"])
        d["feedback_gains"] = tuple(d["feedback_gains"])
        return TrainConfig(**d)


def migrate_run(run: dict) -> dict:
    """A run.json brought to RUN_VERSION. Version 1 configs lack the fields added before versions were kept, which
    then behaved as the values filled in here (the reference's observation and 500-step episodes, uncapped starts,
    no gain calibration; the rest at their defaults); later versions add the fields of ADDED_IN_VERSION."""
    version = run.get("version", 1)
    if not isinstance(version, int) or version > RUN_VERSION:
        raise ConfigError(f"this run was written by a newer raptor (run format version {version}, this raptor reads "
                          f"up to {RUN_VERSION}): upgrade raptor to continue it")
    if version == RUN_VERSION:
        return run
    c = dict(run["config"])
    if version == 1:
        c = {"observation": "teacher", "train_episode_steps": 500, "init_max_position_m": None,
             "feedback_gains": [1.0], **c}
        defaults = TrainConfig().to_json()
        later = {k for added in ADDED_IN_VERSION.values() for k in added}
        c = {k: c.get(k, v) for k, v in defaults.items() if k not in later or k in c}
        c["ppo"] = {**defaults["ppo"], **c["ppo"]}
        c["bar"] = {**defaults["bar"], **c["bar"]}
        version = 2
    for v in range(version + 1, RUN_VERSION + 1):
        c = {**ADDED_IN_VERSION.get(v, {}), **c}
    return {**run, "version": RUN_VERSION, "config": c}


# The options of `raptor train` that set TrainConfig fields: type and default from the dataclass (raptor.options).
TRAIN_FLAGS = (
    Flag("backend", help="batched | sb3 | ray"),
    Flag("algo", help="ppo (batched, ray, sb3) | sac (sb3)"),
    Flag("device", help="cpu | cuda"),
    Flag("steps", help="env steps per teacher", shown_default="5,000,000 for PPO, 300,000 for sb3 SAC"),
    Flag("ppo.envs_per_teacher", "--envs", help="PPO envs per teacher"),
    Flag("teachers_per_shard", help="teachers trained together"),
    Flag("seed", help="training seed"),
    Flag("threads", help="torch CPU threads per process (0: torch's default)"),
    Flag("checkpoint_every_s", "--checkpoint-every", metavar="SECONDS", help="seconds between checkpoints"),
    Flag("eval_every_steps", "--eval-every", metavar="STEPS", help="env steps between selection evaluations",
         shown_default="500,000; sb3 SAC 10,000"),
    Flag("eval_episodes", metavar="N", help="hover episodes per teacher in each selection evaluation"),
    Flag("candidates", metavar="N", help="independent seeds trained per teacher; the best by the selection "
                                         "evaluations is kept (batched and ray backends)"),
    Flag("merge_candidates", help="with --candidates N: train one actor per teacher on the mean action of its N "
                                  "candidates (gain-calibrated) instead of keeping the first-ranked"),
    Flag("any_yaw_fraction", "--any-yaw", metavar="FRACTION",
         help="fraction of training starts with a uniform random yaw (0: the reference's starts)"),
    Flag("langevin_fraction", "--langevin", metavar="FRACTION",
         help="fraction of training episodes that track a moving (Langevin) target instead of hovering",
         shown_default="each airframe's own mixture: 0.5 for sampled airframes, the reference's; 0 for the named "
                       "airframes' files"),
    Flag("targets", metavar="LIST", help="the teachers' targets, each episode one of: hover,langevin,figure_eight,step "
                                         "(the bar and selection stay on hover)",
         shown_default="each airframe's own mixture of hover and langevin"),
    Flag("target_feedforward", help="teachers see the target's acceleration as a push in their force channel "
                                    "(privileged observation)"),
    Flag("start_velocity_scale", "--start-scale", metavar="FACTOR",
         help="multiply the training starts' linear and angular velocity ranges (the final evaluation always uses "
              "the spec's starts)"),
    Flag("init_min_position_m", "--start-position", metavar="METERS",
         help="training starts within +-METERS of the target on every axis (larger trains the recovery from the "
              "box's edge; evaluations keep 0.5)"),
    Flag("feedback_gains", metavar="LIST", help="gains tried on each finished teacher's feedback around hover, the "
                                                "best on its own hover episodes kept (1 keeps the trained actor)"),
    Flag("gain_retrim", help="score each of --feedback-gains on the teacher as it hovers with that gain, without "
                             "trimming it again (the behaviour of runs before format 8)"),
    Flag("gain_screen_episodes", metavar="N", help="score every feedback gain on N hover episodes first and only "
                                                   "each teacher's two best on all of them (0: every gain on all)"),
    Flag("gain_tolerance", metavar="SCORE", help="keep the feedback gain closest to 1 among those scored within "
                                                 "SCORE (success - termination) of the best (0: the best)"),
    Flag("observation", choices=("privileged", "teacher"),
         help="what teachers see: privileged = the teacher observation + the disturbance force, teacher = the "
              "reference's 26 values"),
    Flag("compile", help="train on the compiled simulator (a one-off compile of ~30-60 s per shard, then the "
                         "simulation costs a tenth; evaluations keep the reference integrator)"),
    Flag("finish_early", help="a teacher stops training once two selection evaluations in a row clear the bar with "
                              "a margin (after --finish-min-steps); the final judge is unchanged"),
    Flag("finish_min_steps", metavar="STEPS", help="env steps before a teacher may finish early"),
    Flag("give_up_below", metavar="SUCCESS", help="with --finish-early: a teacher whose success stays below this in "
                                                  "two selection evaluations in a row (after --give-up-min-steps) "
                                                  "stops too, judged as every teacher (0: never)"),
    Flag("give_up_min_steps", metavar="STEPS", help="env steps before a teacher may be given up"),
    Flag("give_up_stall_steps", metavar="STEPS",
         help="a teacher is given up only if its best success in the last STEPS is under 10 points above its best "
              "before them (0: the level test alone)"),
    Flag("time_limit_s", "--time-limit", metavar="SECONDS",
         help="training seconds per shard; at the limit its teachers are finalized with their best snapshot so far",
         shown_default="none: train all --steps"),
)
# `raptor train --fast`: the recipe measured at 3.0x the teachers-to-bar per CPU-hour of the trainer #41 started
# from (cf43f09), same job, fresh ids, quality on 500 judged episodes no worse (docs/benchmarks.md, "The gain screen and
# tolerance"): the compiled simulator, the early finish and give-up from evaluations every 250k steps, the cheaper,
# gentler gain calibration. Flags given beside --fast win; a resumed run keeps its recipe (refused in one line).
FAST_RECIPE = {"compile": True, "finish_early": True, "eval_every_steps": 250_000, "finish_min_steps": 750_000,
               "gain_screen_episodes": 100, "gain_tolerance": 0.01}
# The options a --retrain-failed round takes (the same flags, applied to that round's recipe)
RETRAIN_FIELDS = ("steps", "eval_episodes", "candidates", "init_min_position_m", "merge_candidates")
# The options a resumed run takes: how and where it runs, never what its teachers learn (its recipe)
LAYOUT_FIELDS = ("backend", "device", "threads", "teachers_per_shard", "compile", "time_limit_s", "checkpoint_every_s")


def resume_config(stored: TrainConfig, over: dict, has_checkpoints: bool) -> tuple[TrainConfig, list[str]]:
    """The stored recipe with the layout flags of a resume applied, and one line per flag applied. A flag that would
    change the recipe is refused in one line (never dropped without a word), as is a new shard size while shards
    have checkpoints (their keys would change and their progress be lost)."""
    flags = {fl.field: fl.option for fl in TRAIN_FLAGS}
    changed, lines = resume_changes(
        stored, over, TRAIN_FLAGS, LAYOUT_FIELDS, "run",
        f"a --retrain-failed round takes {', '.join(flags[f] for f in RETRAIN_FIELDS)}",
        notes={"time_limit_s": " (training seconds per shard, counted from the shard's start)"})
    if "teachers_per_shard" in changed and has_checkpoints:
        raise ConfigError(f"this run has checkpoints of shards of {stored.teachers_per_shard} teachers; a new "
                          "--teachers-per-shard would restart them: resume without it, or change it once the "
                          "checkpointed shards are finished")
    new = with_overrides(stored, {k: v for k, (_, v) in changed.items()})
    if "device" in changed or "teachers_per_shard" in changed:
        new.check_machine()
    return new, lines


# Memory of one PPO env, measured to within a factor of ~2: the rollout buffer (horizon 32 x observation, action,
# log-prob, value, reward, flags) and the simulator state, float32 on the CPU (about 7 KB).
ENV_BYTES_ESTIMATE = 8 * 1024


def parse_ids(text: str | None, n: int) -> list[int]:
    """'0-9,12,20-21' -> [0, ..., 9, 12, 20, 21]; None -> all n."""
    if text is None:
        return list(range(n))
    ids: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if b < a:
                    raise ConfigError(f"bad --ids '{text}': the range {part} is empty (write {b}-{a})")
                ids.extend(range(a, b + 1))
            else:
                ids.append(int(part))
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"bad --ids '{text}': use e.g. 0-999 or 0-9,12") from None
    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ConfigError(f"--ids {bad[:5]} out of range: the airframe spec has {n} airframes (ids 0-{n - 1})")
    return sorted(set(ids))


def training_env_config(cfg: TrainConfig) -> EnvConfig:
    """The env teachers train in: the airframe's own targets (hover and Langevin), short episodes, and starts
    widened by any_yaw_fraction and start_velocity_scale (the final evaluation keeps the spec's)."""
    init = mdp.InitialStateConfig(any_yaw_fraction=cfg.any_yaw_fraction, linear_velocity_scale=cfg.start_velocity_scale,
                                  angular_velocity_scale=cfg.start_velocity_scale)
    targets = {} if cfg.targets is None else {"target": "mixed", "mixed_targets": cfg.targets}
    if cfg.target_feedforward:
        targets["privileged_target_acceleration"] = True
    return EnvConfig(**{"observation": cfg.observation, "target": "airframe", "device": cfg.device,
                        "check_inputs": False, "episode_steps": cfg.train_episode_steps, "init": init,
                        "compile": cfg.compile, **targets})


def teacher_airframe(a: Airframe, cfg: TrainConfig) -> Airframe:
    """The airframe a teacher trains on: its own parameters, with starts covering at least +-init_min_position_m and
    at most +-init_max_position_m (None: no cap)."""
    p = json.loads(json.dumps(a.parameters))
    init = p["mdp"]["init"]
    init["max_position"] = max(float(init["max_position"]), cfg.init_min_position_m)
    if cfg.init_max_position_m is not None:
        init["max_position"] = min(init["max_position"], cfg.init_max_position_m)
    if cfg.langevin_fraction is not None:
        trajectory = p.setdefault("trajectory", default_trajectory())
        trajectory["mixture"] = [1.0 - cfg.langevin_fraction, cfg.langevin_fraction]
    return Airframe(a.name, p, dict(a.meta))
