"""A batched, torch-native quadrotor environment: N airframes x M envs each, stepped together.

This class owns what the pure functions do not: the RNG, the step counters, the per-episode disturbance, the
target process, the action history and autoreset. It speaks torch tensors on its device; the gymnasium adapters
in `raptor.sim.gym_env` wrap it for numpy users.

Step semantics (same-step autoreset): `step(a)` integrates, computes reward and termination of the step, then
resets every env that terminated or reached `episode_steps`; the returned observation of such an env is its new
first observation and `info["final_observation"]` holds the last one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import torch

from raptor.errors import ConfigError, InputError
from raptor.sim import dynamics, mdp
from raptor.sim.airframe import Airframe, AirframeBatch

TargetMode = Literal["airframe", "hover", "langevin", "figure_eight"]


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
    """Configuration of BatchedQuadrotorEnv."""

    episode_steps: int = 500
    observation: Literal["student", "teacher"] = "student"
    reward: mdp.RewardConfig = field(default_factory=mdp.RewardConfig)
    init: mdp.InitialStateConfig = field(default_factory=mdp.InitialStateConfig)
    target: TargetMode = "airframe"  # airframe: each airframe's trajectory mixture (POSITION or LANGEVIN)
    langevin: mdp.LangevinConfig = field(default_factory=mdp.LangevinConfig)
    figure_eight_radius_m: float = 0.5
    figure_eight_period_s: float = 5.0
    student_target_relative: bool = True  # student sees p - p_des, v - v_des (reference: absolute p, v)
    observation_noise: ObservationNoise = field(default_factory=ObservationNoise)
    disturbance: DisturbanceConfig = field(default_factory=DisturbanceConfig)
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "cpu"
    check_inputs: bool = True  # raise on wrong shapes / non-finite actions (one host sync per step on CUDA)

    def __post_init__(self) -> None:
        if self.episode_steps <= 0:
            raise ConfigError("EnvConfig.episode_steps must be positive")
        if self.observation not in ("student", "teacher"):
            raise ConfigError(f"EnvConfig.observation must be 'student' or 'teacher', got {self.observation!r}")
        if self.target not in ("airframe", "hover", "langevin", "figure_eight"):
            raise ConfigError(f"EnvConfig.target must be airframe|hover|langevin|figure_eight, got {self.target!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"EnvConfig.dtype must be float32 or float64, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float32 if self.dtype == "float32" else torch.float64

    @property
    def obs_dim(self) -> int:
        return 22 if self.observation == "student" else 26


def figure_eight(t_s: torch.Tensor, radius_m: float, period_s: float) -> torch.Tensor:
    """Lemniscate target (B, 6) = (p_des, v_des) world at times t_s (B,), centred at the origin, z = 0."""
    w = 2 * math.pi / period_s
    s, c = torch.sin(w * t_s), torch.cos(w * t_s)
    s2, c2 = torch.sin(2 * w * t_s), torch.cos(2 * w * t_s)
    z = torch.zeros_like(t_s)
    return torch.stack([radius_m * s, radius_m * s2 / 2, z, radius_m * w * c, radius_m * w * c2, z], -1)


class BatchedQuadrotorEnv:
    """N airframes x M envs per airframe; env b flies airframe `airframe_index[b]` = b // M."""

    def __init__(self, airframes: Sequence[Airframe] | AirframeBatch, envs_per_airframe: int = 1,
                 config: EnvConfig = EnvConfig(), seed: int | None = None) -> None:
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
        self.num_airframes = base.batch_size
        self.envs_per_airframe = envs_per_airframe
        self.airframe_index = torch.arange(self.num_airframes, device=self.device).repeat_interleave(envs_per_airframe)
        self.params = base.index(self.airframe_index)
        self.num_envs = self.params.batch_size
        self.obs_dim = config.obs_dim
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(0 if seed is None else seed)
        z = lambda *s: torch.zeros((self.num_envs, *s), dtype=dtype, device=self.device)  # noqa: E731
        self.state = z(17)  # (B, 17) see raptor.conventions
        self.force = z(3)  # (B, 3) N world, constant per episode
        self.torque = z(3)  # (B, 3) N m body, constant per episode
        self.gust = z(3)  # (B, 3) N world, Ornstein-Uhlenbeck
        self.last_action = z(4)  # (B, 4) previous unclipped action; 0 after reset (d_action reward)
        self.prev_action_obs = z(4)  # (B, 4) action history slot observed; motors in [-1, 1] after reset
        self.target_state = z(12)  # (B, 12) Langevin process [x_raw, v_raw, x_s, v_s]
        self.langevin = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.weight_n = (self.params.mass * torch.linalg.vector_norm(self.params.gravity, dim=-1))  # (B,) N

    # ------------------------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.gen.manual_seed(seed)

    def target(self) -> torch.Tensor:
        """Current target (B, 6) = (p_des, v_des), world."""
        if self.config.target == "figure_eight":
            t = self.steps.to(self.state.dtype) * self.params.dt
            return figure_eight(t, self.config.figure_eight_radius_m, self.config.figure_eight_period_s)
        tgt = self.target_state[:, 6:12]
        return torch.where(self.langevin[:, None], tgt, torch.zeros_like(tgt))

    def reset(self, seed: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reset all envs (or those where mask (B,) is True) and return observations (B, D)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        x, force, torque = mdp.sample_initial_state(self.params, self.gen, self.config.init)
        d = self.config.disturbance
        if not d.airframe_force:
            force = torch.zeros_like(force)
        if d.constant_force_fraction > 0:
            force = force + d.constant_force_fraction * self.weight_n[:, None] * torch.randn(
                force.shape, generator=self.gen, device=self.device, dtype=force.dtype)
        gust = torch.zeros_like(force)
        if d.gust_fraction > 0:
            gust = d.gust_fraction * self.weight_n[:, None] * torch.randn(
                force.shape, generator=self.gen, device=self.device, dtype=force.dtype)
        mode = self.config.target
        u = torch.rand(self.num_envs, generator=self.gen, device=self.device, dtype=x.dtype)
        if mode == "airframe":
            langevin = u < self.params.langevin_fraction
        else:
            langevin = torch.full_like(u, mode == "langevin", dtype=torch.bool)
        hist = mdp.normalized_motors(self.params, x[:, 13:17])
        self.set_state(x, force=force, torque=torque, mask=mask, prev_action_obs=hist, langevin=langevin, gust=gust)
        return self.observe()

    def set_state(self, state: torch.Tensor, *, force: torch.Tensor | None = None, torque: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None, prev_action_obs: torch.Tensor | None = None,
                  langevin: torch.Tensor | None = None, gust: torch.Tensor | None = None) -> None:
        """Start new episodes from given states (B, 17) (where mask is True); the reference's reset semantics."""
        state = torch.as_tensor(state, dtype=self.state.dtype, device=self.device)
        if state.shape != self.state.shape:
            raise InputError(f"state has shape {tuple(state.shape)}, expected {tuple(self.state.shape)}")
        m = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) if mask is None else mask
        mc = m[:, None]
        zeros3 = torch.zeros_like(self.force)
        if prev_action_obs is None:
            prev_action_obs = mdp.normalized_motors(self.params, state[:, 13:17])
        self.state = torch.where(mc, state, self.state)
        self.force = torch.where(mc, zeros3 if force is None else force, self.force)
        self.torque = torch.where(mc, zeros3 if torque is None else torque, self.torque)
        self.gust = torch.where(mc, zeros3 if gust is None else gust, self.gust)
        self.last_action = torch.where(mc, torch.zeros_like(self.last_action), self.last_action)
        self.prev_action_obs = torch.where(mc, prev_action_obs, self.prev_action_obs)
        self.target_state = torch.where(mc, torch.zeros_like(self.target_state), self.target_state)
        if langevin is not None:
            self.langevin = torch.where(m, langevin, self.langevin)
        self.steps = torch.where(m, torch.zeros_like(self.steps), self.steps)

    # ------------------------------------------------------------------------------------------------------------
    def observe(self) -> torch.Tensor:
        """Observation (B, D) of the current state: student (22) or teacher (26)."""
        tgt = self.target()
        if self.config.observation == "teacher":
            obs = mdp.observe_teacher(self.params, self.state, self.prev_action_obs, tgt)
        else:
            obs = mdp.observe_student(self.state, self.prev_action_obs,
                                      tgt if self.config.student_target_relative else None)
        noise = self.config.observation_noise
        if noise.enabled:
            std = torch.zeros(obs.shape[-1], dtype=obs.dtype, device=self.device)
            std[0:3], std[3:12], std[12:15], std[15:18] = (noise.position, noise.orientation,
                                                           noise.linear_velocity, noise.angular_velocity)
            obs = obs + std * torch.randn(obs.shape, generator=self.gen, device=self.device, dtype=obs.dtype)
        return obs

    def check_action(self, action: torch.Tensor) -> torch.Tensor:
        action = torch.as_tensor(action, dtype=self.state.dtype, device=self.device)
        if action.shape != (self.num_envs, 4):
            raise InputError(f"action has shape {tuple(action.shape)}, expected ({self.num_envs}, 4): "
                             "one normalized [-1, 1] command per motor, in RAPTOR motor order")
        if self.config.check_inputs and not bool(torch.isfinite(action).all()):
            bad = (~torch.isfinite(action)).any(-1).nonzero().flatten()[:8].tolist()
            raise InputError(f"action contains NaN or inf (envs {bad}); the state was not changed")
        return action

    def physics_step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every env by one step without autoreset: returns (reward (B,), terminated (B,), next_state)."""
        action = self.check_action(action)
        tgt = self.target()
        force = self.force + self.gust
        nxt = dynamics.integrate(self.params, self.state, dynamics.motor_command(self.params, action), force,
                                 self.torque)
        term = mdp.terminated(self.params, nxt)
        rew = mdp.reward(self.params, self.config.reward, self.state, action, nxt, self.last_action, tgt, term)
        self.state = nxt
        self.last_action = action
        self.prev_action_obs = action
        if self.config.target in ("airframe", "langevin"):
            self.target_state = mdp.langevin_step(self.target_state, self.params.dt, self.gen, self.config.langevin)
        d = self.config.disturbance
        if d.gust_fraction > 0:
            a = torch.exp(-self.params.dt / d.gust_time_constant_s)[:, None]
            sigma = d.gust_fraction * self.weight_n[:, None] * torch.sqrt(1 - a * a)
            self.gust = a * self.gust + sigma * torch.randn(self.gust.shape, generator=self.gen, device=self.device,
                                                            dtype=self.gust.dtype)
        self.steps = self.steps + 1
        return rew, term, nxt

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """(obs (B, D), reward (B,), terminated (B,), truncated (B,), info) with same-step autoreset."""
        rew, term, _ = self.physics_step(action)
        trunc = (self.steps >= self.config.episode_steps) & ~term
        obs = self.observe()
        done = term | trunc
        info: dict = {}
        if bool(done.any()):
            info["final_observation"] = obs.clone()
            info["_final_observation"] = done.clone()
            obs = torch.where(done[:, None], self.reset(mask=done), obs)
        return obs, rew, term, trunc, info
