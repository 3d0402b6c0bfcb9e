"""The recipe and the folder of a `raptor pipeline` run: PipelineConfig (its stages' configs as data), the flags a
user may set, the CPU-scale and quick recipes, and PipelineRun (pipeline.json and the stage folders)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from raptor.distill.dagger import DistillConfig
from raptor.errors import ConfigError
from raptor.fileio import atomic_write_text, read_json
from raptor.options import Flag
from raptor.rl.config import TrainConfig
from raptor.rl.ppo import PPOConfig
from raptor.rl.teacher import QualityBar

PIPELINE_FORMAT = "raptor-pipeline"
PIPELINE_VERSION = 1
STAGES = ("teachers", "retrain", "distill", "evaluate", "policy")


@dataclass(frozen=True)
class PipelineConfig:
    """The recipe of one pipeline run (the stage configs are raptor train's and raptor distill's own)."""

    airframes: str = "sampled:1000:0"
    ids: str | None = None
    device: str = "cpu"
    seed: int = 0
    retrain_rounds: int = 1  # --retrain-failed rounds for the teachers below the bar (0: none)
    retrain_steps_factor: float = 1.5  # a retrain round trains this many times the first round's steps
    fresh: str = "sampled:200:2027"  # the final evaluation's airframes: no decision of the run uses them
    fresh_episodes: int = 10
    eval_seed: int = 5
    quick: bool = False
    train: dict = field(default_factory=dict)  # TrainConfig fields that differ from its defaults
    distill: dict = field(default_factory=dict)  # DistillConfig fields that differ from its defaults

    def __post_init__(self) -> None:
        if self.retrain_rounds < 0 or not self.retrain_steps_factor > 0 or self.fresh_episodes <= 0:
            raise ConfigError("pipeline: retrain_rounds >= 0, retrain_steps_factor > 0 and fresh_episodes > 0")


# The options of `raptor pipeline`: its own fields, and those of the stages it lets a user set (the rest of each stage's
# recipe is full_config's / quick_config's; a resumed run keeps its stored recipe)
PIPELINE_FLAGS = (
    Flag("airframes", help="teacher airframes: sampled:N:SEED | FILE | NAME,... (e.g. sampled:1000:0, the "
                           "reference's 1000)"),
    Flag("ids", help="which airframes of the spec (e.g. 0-63; default all)"),
    Flag("device", help="cpu | cuda"),
    Flag("seed", help="training and distillation seed"),
    Flag("retrain_rounds", help="retrain rounds for the teachers below the bar"),
    Flag("fresh", help="final evaluation airframes, used by no decision"),
)
PIPELINE_TRAIN = ("steps", "teachers_per_shard", "time_limit_s", "compile")
PIPELINE_DISTILL = ("epochs", "batch_size", "init_from")


def stage_flags(flags: tuple[Flag, ...], fields: tuple[str, ...], recipe: dict | None = None) -> list[Flag]:
    """A stage's flags that the pipeline takes, their help showing the pipeline recipe's defaults."""
    return [dataclasses.replace(fl, shown_default=fl.shown_default if recipe is None or fl.field not in recipe else
                                f"{recipe[fl.field]:,}" if isinstance(recipe[fl.field], int) else str(recipe[fl.field]))
            for fl in flags if fl.field in fields]


def quick_config(**over) -> PipelineConfig:
    """A tiny end-to-end run: a few PPO iterations per teacher, short evaluations, four distillation epochs (the
    full recipe's targets and setpoint lead, so every code path of the real run is exercised), the teachers
    distilled whether or not they reach the bar."""
    train = {"steps": 6 * 8192, "eval_every_steps": 3 * 8192, "eval_episodes": 16, "calibration_episodes": 8,
             "feedback_gains": [1.0, 1.2], "gain_episodes": 32, "bar": {"episodes": 50}, "teachers_per_shard": 4}
    full = full_config().distill
    distill = {"epochs": 4, "bc_epochs": 2, "episodes_per_teacher": 4, "holdout": "sampled:4:4242",
               "holdout_episodes": 4, "eval_every": 1, "only_passed": False,
               "targets": ["hover", "figure_eight", "step", "langevin"],
               **{k: full[k] for k in ("lead_gain_s2", "lead_max_m")}}
    return PipelineConfig(**{"quick": True, "fresh": "sampled:6:2027", "fresh_episodes": 4, "train": train,
                             "distill": distill, **over})


def full_config(**over) -> PipelineConfig:
    """The CPU-scale recipe of the shipped default (docs/training.md, docs/distillation.md): 3M steps per teacher
    with a quarter of the starts at any yaw, then BC + DAgger with a cosine learning-rate decay on every target
    (hover in half the epochs; setpoint steps, figure-eights and Langevin targets with the feedforward labels), the
    student learning with the setpoint lead it ships with (k = 8 1/s^2, at most 0.3 m: benchmarks/lead_gain.py on
    held-out airframes, docs/policies-and-evaluation.md)."""
    train = {"steps": 3_000_000, "teachers_per_shard": 64, "any_yaw_fraction": 0.25}
    distill = {"epochs": 800, "bc_epochs": 30, "episodes_per_teacher": 7, "passes": 3, "learning_rate": 1e-3,
               "final_lr_fraction": 0.1, "any_yaw_fraction": 0.25, "eval_every": 10,
               "targets": ["hover", "figure_eight", "hover", "step", "hover", "langevin"],
               "lead_gain_s2": 8.0, "lead_max_m": 0.3}
    return PipelineConfig(**{"train": train, "distill": distill, **over})


def train_config(pc: PipelineConfig):
    d = dict(pc.train)
    kw: dict = {"device": pc.device, "seed": pc.seed}
    if "bar" in d:
        kw["bar"] = QualityBar(**d.pop("bar"))
    if "ppo" in d:
        kw["ppo"] = replace(PPOConfig(), **d.pop("ppo"))
    if "feedback_gains" in d:
        d["feedback_gains"] = tuple(d["feedback_gains"])
    return TrainConfig(**{**d, **kw})


def distill_config(pc: PipelineConfig):

    return DistillConfig(**{**pc.distill, "device": pc.device, "seed": pc.seed})


# ----------------------------------------------------------------------------------------------------------------
# The run folder


class PipelineRun:
    def __init__(self, out: str | Path) -> None:
        self.root = Path(out)
        self.file = self.root / "pipeline.json"
        self.teachers = self.root / "train"  # a raptor train run: train/teachers/NNNN
        self.student = self.root / "student"
        self.eval = self.root / "eval"
        self.policy = self.root / "policy.safetensors"
        self.report = self.root / "report.md"
        self.lock_file = self.root / "pipeline.lock"  # while a process runs the stages (not committed)

    def exists(self) -> bool:
        return self.file.is_file()

    def read(self) -> dict:
        if not self.root.is_dir() or (not self.file.exists() and not any(self.root.iterdir())):
            raise ConfigError(f"no pipeline run in '{self.root}'; start one with raptor pipeline --airframes SPEC "
                              f"--out {self.root}")
        if not self.file.exists():
            raise ConfigError(f"'{self.root}' holds no pipeline.json, so it is not a raptor pipeline run (a raptor "
                              "train run? see raptor train --status)")
        d = read_json(self.file, "pipeline record", f"start a new run in another --out (or delete {self.root})")
        if d.get("format") != PIPELINE_FORMAT:
            raise ConfigError(f"'{self.file}' is not a raptor pipeline record; choose another --out")
        return d

    def write(self, d: dict) -> None:
        atomic_write_text(self.file, json.dumps(d, indent=1))

    def config(self, d: dict) -> PipelineConfig:
        return PipelineConfig(**d["config"])


def _stage_line(i: int, name: str, state: str, detail: str = "") -> str:
    return f"[{i}/{len(STAGES)}] {name:<9} {state}" + (f": {detail}" if detail else "")
