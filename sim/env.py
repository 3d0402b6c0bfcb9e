"""A batched, torch-native quadrotor environment: N airframes x M envs each, stepped together.

This class owns what the pure functions do not: the RNG, the step counters, the per-episode disturbance, the
target process, the action history and autoreset. It speaks torch tensors on its device; the gymnasium adapters
in `raptor.sim.gym_env` wrap it for numpy users.

Step semantics (same-step autoreset): `step(a)` integrates, computes reward and termination of the step, then
resets every env that terminated or reached `episode_steps`; the returned observation of such an env is its new
first observation and `info["final_observation"]` holds the last one.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from raptor.conventions import PRIVILEGED_OBS_DIM, STUDENT_OBS_DIM, TEACHER_OBS_DIM
from raptor.errors import ConfigError, InputError
from raptor.sim import functional as F
from raptor.sim import mdp
from raptor.sim.airframe import Airframe, AirframeBatch
from raptor.sim.functional import (
    MIXED_KINDS,
    EnvState,
    Physics,
)

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


_REWARD_WARNED: set[tuple[str, str]] = set()


def warn_reward_mismatch(airframes: Sequence[Airframe], reward: mdp.RewardConfig) -> None:
    """Warn (once per airframe and field) where an airframe file's reward weights differ from the env's: the
    env's RewardConfig is the one applied, the file's block is ignored."""
    for a in airframes:
        block = a.parameters.get("mdp", {}).get("reward", {})
        for name, value in block.items():
            if not hasattr(reward, name) or isinstance(value, str):
                continue
            if float(value) != float(getattr(reward, name)) and (a.name, name) not in _REWARD_WARNED:
                _REWARD_WARNED.add((a.name, name))
                warnings.warn(f"airframe '{a.name}' sets reward {name} = {value}, but the env applies its own "
                              f"reward ({name} = {getattr(reward, name)}); set it with "
                              f"EnvConfig(reward=RewardConfig({name}={value}, ...))", stacklevel=3)


class BatchedQuadrotorEnv:
    """N airframes x M envs per airframe; env b flies airframe `airframe_index[b]` = b // M.

    A thin stateful wrapper over the functional core (raptor.sim.functional): it holds the parameters, the config,
    the generator, the physics engine (`physics`, a value) and the record of the envs (`s`, an EnvState), and
    replaces that record on every reset and step. `state`, `force`, ... are (B, k) views of the record.
    """

    def __init__(self, airframes: Sequence[Airframe] | AirframeBatch, envs_per_airframe: int = 1,
                 config: EnvConfig = EnvConfig(), seed: int | None = None, physics: Physics | None = None) -> None:
        if envs_per_airframe <= 0:
            raise ConfigError("envs_per_airframe must be positive")
        self.config = config
        self.device = torch.device(config.device)
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("EnvConfig.device is 'cuda' but torch sees no CUDA device; use --device cpu")
        dtype = config.torch_dtype
        if isinstance(airframes, AirframeBatch):
            base = airframes.to(self.device, dtype)
            self.airframes: list[Airframe] = []
        else:
            self.airframes = list(airframes)
            base = AirframeBatch.from_airframes(self.airframes, self.device, dtype)
            warn_reward_mismatch(self.airframes, config.reward)
        self.num_airframes = base.batch_size
        self.envs_per_airframe = envs_per_airframe
        self.airframe_index = torch.arange(self.num_airframes, device=self.device).repeat_interleave(envs_per_airframe)
        self.params = base.index(self.airframe_index)
        if config.crash_box_m is not None:
            inf = torch.full_like(self.params.term_position, math.inf)
            self.params = dataclasses.replace(self.params, term_position=torch.full_like(inf, config.crash_box_m),
                                              term_linear_velocity=inf, term_angular_velocity=inf,
                                              term_enabled=torch.ones_like(self.params.term_enabled))
        self.num_envs = self.params.batch_size
        self.obs_dim = config.obs_dim
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(0 if seed is None else seed)
        self.s = EnvState.zeros(self.num_envs, dtype, self.device)
        self.weight_n = F.weight_n(self.params)  # (B,) N
        if physics is None:
            physics = Physics()
            if config.compile:
                from raptor.sim.fused import make_transition, pack_constants

                relative = config.teacher_observation or config.student_target_relative
                constants, index = pack_constants(self.params)
                physics = Physics("fused", fused=torch.compile(
                    make_transition(index, config.reward, config.observation, relative), dynamic=False),
                    constants=constants)
        self.physics = physics

    # (B, k) views of the record
    state = property(lambda self: self.s.state, doc="(B, 17) state: p, q wxyz, v, w body, motors")
    force = property(lambda self: self.s.force.t(), doc="(B, 3) N world, constant disturbance force")
    torque = property(lambda self: self.s.torque.t(), doc="(B, 3) N m body, constant disturbance torque")
    gust = property(lambda self: self.s.gust.t(), doc="(B, 3) N world, gust force")
    last_action = property(lambda self: self.s.last_action.t(), doc="(B, 4) previous action (reward)")
    prev_action_obs = property(lambda self: self.s.prev_action_obs.t(), doc="(B, 4) observed previous action")
    target_state = property(lambda self: self.s.target_state.t(), doc="(B, 12) Langevin process state")
    langevin = property(lambda self: self.s.langevin, doc="(B,) bool: the episode tracks the Langevin target")
    steps = property(lambda self: self.s.steps, doc="(B,) env steps since the episode started")

    # ------------------------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.gen.manual_seed(seed)

    def target(self) -> torch.Tensor:
        """Current target (B, 6) = (p_des, v_des), world."""
        return F.target(self.params, self.config, self.s)

    def target_yaw(self) -> torch.Tensor:
        """Current yaw setpoint (B,) rad about world z (FLU); 0 unless the config has a yaw target."""
        return F.target_yaw(self.params, self.config, self.s)

    def step_times(self) -> torch.Tensor:
        """(B,) s: the last setpoint step time of each episode (target "step"; the yaw step's too), else 0."""
        return F.step_times(self.config, self.s)

    def reset(self, seed: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Start new episodes in all envs (or where mask (B,) is True); returns observations (B, D)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        idx = None if mask is None else mask.nonzero().squeeze(-1)
        params = self.params if idx is None else self.params.index(idx)
        self.s = self.s.with_rows(idx, F.new_episodes(params, self.config, self.gen))
        return self.observe()

    def load(self, s: EnvState) -> torch.Tensor:
        """Continue from a record (e.g. episode e of another env of the same airframe and config: `env.s.rows([e])`,
        to fly it alone, as HIL and the SITL bridges do); returns the observation (B, D)."""
        if s.batch_size != self.num_envs:
            raise InputError(f"the record has {s.batch_size} envs, this env {self.num_envs}")
        self.s = EnvState(**{k: v.to(self.device, self.s.x.dtype) if v.is_floating_point() else v.to(self.device)
                             for k, v in vars(s).items()})
        return self.observe()

    def set_state(self, state: torch.Tensor, *, force: torch.Tensor | None = None, torque: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> None:
        """Start new episodes from given states (B, 17) where mask is True, with the reference's reset semantics:
        previous-action observation = normalized motor state, last action 0, target at the origin."""
        state = torch.as_tensor(state, dtype=self.s.x.dtype, device=self.device)
        if state.shape != self.state.shape:
            raise InputError(f"state has shape {tuple(state.shape)}, expected {tuple(self.state.shape)}")
        if not bool(torch.isfinite(state).all()):
            raise InputError("state contains NaN or inf")
        idx = None if mask is None else mask.nonzero().squeeze(-1)
        pick = (lambda t: t) if idx is None else (lambda t: t[idx])  # noqa: E731
        zeros = torch.zeros_like(pick(self.force))
        params = self.params if idx is None else self.params.index(idx)
        current = self.s if idx is None else self.s.rows(idx)
        self.s = self.s.with_rows(idx, F.restart(params, current, pick(state), zeros if force is None else pick(force),
                                                 zeros if torque is None else pick(torque)))

    # ------------------------------------------------------------------------------------------------------------
    def observe(self) -> torch.Tensor:
        """Observation (B, D) of the current state: student (22), teacher (26) or privileged teacher (29)."""
        return F.observe(self.params, self.config, self.s, self.gen)

    def check_action(self, action: torch.Tensor) -> torch.Tensor:
        action = torch.as_tensor(action, dtype=self.s.x.dtype, device=self.device)
        if action.shape != (self.num_envs, 4):
            raise InputError(f"action has shape {tuple(action.shape)}, expected ({self.num_envs}, 4): "
                             "one normalized [-1, 1] command per motor, in RAPTOR motor order")
        if self.config.check_inputs and not bool(torch.isfinite(action).all()):
            bad = (~torch.isfinite(action)).any(-1).nonzero().flatten()[:8].tolist()
            raise InputError(f"action contains NaN or inf (envs {bad}); the state was not changed")
        return action

    def target_acceleration(self) -> torch.Tensor:
        """(B, 3) m/s^2 world: the target's acceleration now."""
        return F.target_acceleration(self.params, self.config, self.s)

    def external_force(self) -> torch.Tensor:
        """(B, 3) N world: the episode's constant disturbance force plus the gust, if any."""
        return F.external_force(self.config, self.s).t()

    def physics_step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every env by one step without autoreset: (reward (B,), terminated (B,), observation (B, D))."""
        action = self.check_action(action)
        self.s, out = F.step(self.params, self.config, self.s, action, self.gen, self.physics)
        return out.reward, out.terminated, out.observation

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """(obs (B, D), reward (B,), terminated (B,), truncated (B,), info) with same-step autoreset."""
        rew, term, obs = self.physics_step(action)
        trunc = (self.steps >= self.config.episode_steps) & ~term
        done = term | trunc
        info: dict = {}
        if bool(done.any()):
            info["final_observation"] = obs.clone()
            info["_final_observation"] = done.clone()
            obs = torch.where(done[:, None], self.reset(mask=done), obs)
        return obs, rew, term, trunc, info
