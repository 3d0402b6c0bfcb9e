"""The configuration of a simulated flight task, as data: the env's observation, target, starts, disturbances,
noise, reward and physics choices (`EnvConfig`, frozen and checked). `raptor.sim.functional` (the pure step) and
`raptor.sim.env` (the stateful wrapper) both read it; it imports neither."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from raptor.conventions import PRIVILEGED_OBS_DIM, STUDENT_OBS_DIM, TEACHER_OBS_DIM
from raptor.errors import ConfigError
from raptor.sim import mdp

MIXED_KINDS = ("hover", "langevin", "figure_eight", "step")  # target "mixed": EnvState.kind indexes this

TargetMode = Literal["airframe", "hover", "langevin", "figure_eight", "step", "mixed"]


@dataclass(frozen=True)
class ObservationNoise:
    """Additive Gaussian observation noise stds (all 0 in RAPTOR)."""

    position: float = 0.0  # m
    orientation: float = 0.0  # per rotation-matrix entry
    linear_velocity: float = 0.0  # m/s
    angular_velocity: float = 0.0  # rad/s

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in (self.position, self.orientation, self.linear_velocity, self.angular_velocity))


@dataclass(frozen=True)
class DisturbanceConfig:
    """Disturbances on top of the airframe's per-episode constant force (std from its parameters).

    constant_force_fraction: extra constant world force per episode, std as a fraction of weight.
    gust_fraction: an Ornstein-Uhlenbeck gust force with this stationary std as a fraction of weight.
    """

    airframe_force: bool = True
    constant_force_fraction: float = 0.0
    gust_fraction: float = 0.0
    gust_time_constant_s: float = 0.5


@dataclass(frozen=True)
class EnvConfig:
    """Configuration of BatchedQuadrotorEnv. The reward is the env's (`reward`), the same for every airframe:
    an airframe file's own "mdp.reward" block is not used (a warning says so where it differs)."""

    episode_steps: int = 500
    observation: Literal["student", "teacher", "privileged"] = "student"
    reward: mdp.RewardConfig = field(default_factory=mdp.RewardConfig)
    init: mdp.InitialStateConfig = field(default_factory=mdp.InitialStateConfig)
    target: TargetMode = "airframe"  # airframe: each airframe's trajectory mixture (POSITION or LANGEVIN)
    langevin: mdp.LangevinConfig = field(default_factory=mdp.LangevinConfig)
    figure_eight_radius_m: float = 0.5
    figure_eight_period_s: float = 5.0
    # target "step": the target starts at the origin and jumps once, at a time uniform in step_time_s, by step_size_m
    # in a uniformly random direction (a position setpoint step)
    step_size_m: float = 0.5
    step_time_s: tuple[float, float] = (1.0, 3.0)
    # target "step": also a yaw setpoint step, U(-step_yaw_rad, step_yaw_rad) about world z, at its own time
    # U(step_time_s) (0: no yaw setpoint; env.target_yaw() is 0)
    step_yaw_rad: float = 0.0
    # target "mixed" (teachers on moving targets): each episode draws one of `mixed_targets` uniformly; a figure-eight
    # draws its radius and period uniformly from the ranges below, a setpoint step is target "step"'s
    mixed_targets: tuple[str, ...] = ("hover", "langevin", "figure_eight", "step")
    figure_eight_radius_range_m: tuple[float, float] = (0.25, 1.0)
    figure_eight_period_range_s: tuple[float, float] = (4.0, 10.0)
    # Evaluation: a physical crash box instead of the training termination (the airframe's 1-3.6 m position and
    # 2 m/s / 35 rad/s limits, which make thrown starts infeasible): terminate only beyond crash_box_m on an axis
    crash_box_m: float | None = None
    # observation "privileged": the force channel shows the disturbance minus m a_des of the target (its acceleration:
    # a moving target is a push in its own frame); off: the disturbance alone, as the reference teachers were trained
    privileged_target_acceleration: bool = False
    student_target_relative: bool = True  # student sees p - p_des, v - v_des (reference: absolute p, v)
    observation_noise: ObservationNoise = field(default_factory=ObservationNoise)
    disturbance: DisturbanceConfig = field(default_factory=DisturbanceConfig)
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "cpu"
    check_inputs: bool = True  # raise on wrong shapes / non-finite actions (one host sync per step on CUDA)
    compile: bool = False  # torch.compile the fused transition (faster after a one-off compile of ~30-60 s)

    def __post_init__(self) -> None:
        if self.episode_steps <= 0:
            raise ConfigError("EnvConfig.episode_steps must be positive")
        if self.observation not in ("student", "teacher", "privileged"):
            raise ConfigError("EnvConfig.observation must be 'student', 'teacher' or 'privileged', "
                              f"got {self.observation!r}")
        if self.target not in ("airframe", "hover", "langevin", "figure_eight", "step", "mixed"):
            raise ConfigError("EnvConfig.target must be airframe|hover|langevin|figure_eight|step|mixed, got "
                              f"{self.target!r}")
        object.__setattr__(self, "mixed_targets", tuple(self.mixed_targets))
        bad = [t for t in self.mixed_targets if t not in MIXED_KINDS]
        if not self.mixed_targets or bad:
            raise ConfigError(f"EnvConfig.mixed_targets: choose from {', '.join(MIXED_KINDS)} (got "
                              f"{', '.join(bad) or 'none'})")
        (r0, r1), (p0, p1) = self.figure_eight_radius_range_m, self.figure_eight_period_range_s
        if not (0 <= r0 <= r1 and 0 < p0 <= p1):
            raise ConfigError("EnvConfig.figure_eight_radius_range_m must be 0 <= lo <= hi and "
                              "figure_eight_period_range_s 0 < lo <= hi")
        if self.crash_box_m is not None and not self.crash_box_m > 0:
            raise ConfigError(f"EnvConfig.crash_box_m must be positive, got {self.crash_box_m}")
        if not 0 <= self.step_yaw_rad <= math.pi:
            raise ConfigError(f"EnvConfig.step_yaw_rad must be in [0, pi], got {self.step_yaw_rad}")
        if not (self.step_size_m >= 0 and 0 <= self.step_time_s[0] <= self.step_time_s[1]):
            raise ConfigError("EnvConfig.step_size_m must be >= 0 and step_time_s an interval (lo <= hi)")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"EnvConfig.dtype must be float32 or float64, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float32 if self.dtype == "float32" else torch.float64

    @property
    def obs_dim(self) -> int:
        return {"student": STUDENT_OBS_DIM, "teacher": TEACHER_OBS_DIM,
                "privileged": PRIVILEGED_OBS_DIM}[self.observation]

    @property
    def has_yaw_target(self) -> bool:
        """The target has a yaw setpoint (env.target_yaw()) that the policy is given and judged by."""
        return self.target == "step" and self.step_yaw_rad > 0

    @property
    def has_moving_target(self) -> bool:
        """The target can move (env.target_acceleration() non-zero): figure-eight, Langevin, mixed, airframe."""
        return self.target in ("figure_eight", "langevin", "mixed", "airframe")

    @property
    def teacher_observation(self) -> bool:
        """The target-relative teacher observation (26) or its privileged extension (29)."""
        return self.observation in ("teacher", "privileged")
