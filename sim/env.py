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
from raptor.sim import dynamics, mdp
from raptor.sim.airframe import Airframe, AirframeBatch

TargetMode = Literal["airframe", "hover", "langevin", "figure_eight", "step"]


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
    # Evaluation: a physical crash box instead of the training termination (the airframe's 1-3.6 m position and
    # 2 m/s / 35 rad/s limits, which make thrown starts infeasible): terminate only beyond crash_box_m on an axis
    crash_box_m: float | None = None
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
        if self.target not in ("airframe", "hover", "langevin", "figure_eight", "step"):
            raise ConfigError("EnvConfig.target must be airframe|hover|langevin|figure_eight|step, got "
                              f"{self.target!r}")
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
    def teacher_observation(self) -> bool:
        """The target-relative teacher observation (26) or its privileged extension (29)."""
        return self.observation in ("teacher", "privileged")


def figure_eight(t_s: torch.Tensor, radius_m: float, period_s: float) -> torch.Tensor:
    """Lemniscate target (B, 6) = (p_des, v_des) world at times t_s (B,), centred at the origin, z = 0."""
    w = 2 * math.pi / period_s
    s, c = torch.sin(w * t_s), torch.cos(w * t_s)
    s2, c2 = torch.sin(2 * w * t_s), torch.cos(2 * w * t_s)
    z = torch.zeros_like(t_s)
    return torch.stack([radius_m * s, radius_m * s2 / 2, z, radius_m * w * c, radius_m * w * c2, z], -1)


def transition(params: AirframeBatch, reward_cfg: mdp.RewardConfig, observation: str, state: torch.Tensor,
               action: torch.Tensor, last_action: torch.Tensor, force_w: torch.Tensor, torque_b: torch.Tensor,
               target: torch.Tensor, next_target: torch.Tensor | None, integrate=dynamics.integrate,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One env step as a pure function of the physics engine `integrate(params, x, command, force_w, torque_b)`.

    Returns (next_state (B, 17), reward (B,), terminated (B,), observation (B, D) of next_state). target (B, 6)
    is the pre-step target the reward uses, next_target the one the observation is relative to (None: absolute).
    """
    nxt = integrate(params, state, dynamics.motor_command(params, action), force_w, torque_b)
    term = mdp.terminated(params, nxt)
    rew = mdp.reward(params, reward_cfg, state, action, nxt, last_action, target, term)
    if observation == "teacher":
        assert next_target is not None
        obs = mdp.observe_teacher(params, nxt, action, next_target)
    elif observation == "privileged":
        assert next_target is not None
        obs = mdp.observe_privileged(params, nxt, action, next_target, force_w)
    else:
        obs = mdp.observe_student(nxt, action, next_target)
    return nxt, rew, term, obs


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

    Per-env arrays are stored structure-of-arrays (component x batch, contiguous along the batch), which the
    fused compiled transition reads and writes directly; `state`, `force`, ... are (B, k) views of them.
    """

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
        self.num_envs = B = self.params.batch_size
        self.obs_dim = config.obs_dim
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(0 if seed is None else seed)
        z = lambda k: torch.zeros((k, B), dtype=dtype, device=self.device)  # noqa: E731
        self._x = z(17)  # (17, B) state, see raptor.conventions
        self._force = z(3)  # (3, B) N world, constant per episode
        self._torque = z(3)  # (3, B) N m body, constant per episode
        self._gust = z(3)  # (3, B) N world, Ornstein-Uhlenbeck
        self._last_action = z(4)  # (4, B) previous unclipped action; 0 after reset (d_action reward)
        self._prev_action_obs = z(4)  # (4, B) observed action-history slot; normalized motors after reset
        self._target_state = z(12)  # (12, B) Langevin process [x_raw, v_raw, x_s, v_s]
        self._zero_target = z(6)
        self._step_time = torch.zeros(B, dtype=dtype, device=self.device)  # s, target "step"
        self._step_offset = torch.zeros((B, 3), dtype=dtype, device=self.device)  # m world
        self._yaw_step_time = torch.zeros(B, dtype=dtype, device=self.device)  # s, target "step" with a yaw step
        self._yaw_step = torch.zeros(B, dtype=dtype, device=self.device)  # rad about world z
        self.langevin = torch.zeros(B, dtype=torch.bool, device=self.device)
        self.steps = torch.zeros(B, dtype=torch.long, device=self.device)
        self.weight_n = self.params.mass * torch.linalg.vector_norm(self.params.gravity, dim=-1)  # (B,) N
        self._relative = config.teacher_observation or config.student_target_relative
        self._integrate = dynamics.integrate  # the physics engine; raptor.sim.mujoco_engine swaps in MuJoCo
        if config.compile:
            from raptor.sim.fused import make_transition, pack_constants

            self._constants, index = pack_constants(self.params)
            self._fused = torch.compile(make_transition(index, config.reward, config.observation, self._relative),
                                        dynamic=False)

    # (B, k) views of the structure-of-arrays storage
    state = property(lambda self: self._x.t(), doc="(B, 17) state: p, q wxyz, v, w body, motors")
    force = property(lambda self: self._force.t(), doc="(B, 3) N world, constant disturbance force")
    torque = property(lambda self: self._torque.t(), doc="(B, 3) N m body, constant disturbance torque")
    gust = property(lambda self: self._gust.t(), doc="(B, 3) N world, gust force")
    last_action = property(lambda self: self._last_action.t(), doc="(B, 4) previous action (reward)")
    prev_action_obs = property(lambda self: self._prev_action_obs.t(), doc="(B, 4) observed previous action")
    target_state = property(lambda self: self._target_state.t(), doc="(B, 12) Langevin process state")

    # ------------------------------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.gen.manual_seed(seed)

    def target(self) -> torch.Tensor:
        """Current target (B, 6) = (p_des, v_des), world."""
        return self._next_target(self.steps)

    def target_yaw(self) -> torch.Tensor:
        """Current yaw setpoint (B,) rad about world z (FLU); 0 unless the config has a yaw target."""
        if not self.config.has_yaw_target:
            return torch.zeros(self.num_envs, dtype=self._x.dtype, device=self.device)
        after = self.steps.to(self._x.dtype) * self.params.dt >= self._yaw_step_time
        return torch.where(after, self._yaw_step, torch.zeros_like(self._yaw_step))

    def step_times(self) -> torch.Tensor:
        """(B,) s: the last setpoint step time of each episode (target "step"; the yaw step's too), else 0."""
        if self.config.target != "step":
            return torch.zeros(self.num_envs, dtype=self._x.dtype, device=self.device)
        if self.config.has_yaw_target:
            return torch.maximum(self._step_time, self._yaw_step_time)
        return self._step_time

    def _next_target(self, steps: torch.Tensor) -> torch.Tensor:
        mode = self.config.target
        if mode == "figure_eight":
            t = steps.to(self._x.dtype) * self.params.dt
            return figure_eight(t, self.config.figure_eight_radius_m, self.config.figure_eight_period_s)
        if mode == "hover":
            return self._zero_target.t()
        if mode == "step":
            after = (steps.to(self._x.dtype) * self.params.dt >= self._step_time)[:, None]
            p = torch.where(after, self._step_offset, torch.zeros_like(self._step_offset))
            return torch.cat([p, torch.zeros_like(p)], -1)
        tgt = self.target_state[:, 6:12]
        return torch.where(self.langevin[:, None], tgt, torch.zeros_like(tgt))

    def reset(self, seed: int | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Start new episodes in all envs (or where mask (B,) is True); returns observations (B, D)."""
        if seed is not None:
            self.gen.manual_seed(seed)
        idx = None if mask is None else mask.nonzero().squeeze(-1)
        params = self.params if idx is None else self.params.index(idx)
        weight = (self.weight_n if idx is None else self.weight_n[idx])[:, None]
        x, force, torque = mdp.sample_initial_state(params, self.gen, self.config.init)
        d = self.config.disturbance
        if not d.airframe_force:
            force = torch.zeros_like(force)
        if d.constant_force_fraction > 0:
            force = force + d.constant_force_fraction * weight * torch.randn(
                force.shape, generator=self.gen, device=self.device, dtype=force.dtype)
        gust = torch.zeros_like(force)
        if d.gust_fraction > 0:
            gust = d.gust_fraction * weight * torch.randn(force.shape, generator=self.gen, device=self.device,
                                                          dtype=force.dtype)
        u = torch.rand(params.batch_size, generator=self.gen, device=self.device, dtype=x.dtype)
        if self.config.target == "airframe":
            langevin = u < params.langevin_fraction
        else:
            langevin = torch.full_like(u, self.config.target == "langevin", dtype=torch.bool)
        self._start(idx, x, force, torque, gust, langevin, mdp.normalized_motors(params, x[:, 13:17]))
        if self.config.target == "step":
            n = params.batch_size
            lo, hi = self.config.step_time_s
            t = lo + (hi - lo) * torch.rand(n, generator=self.gen, device=self.device, dtype=x.dtype)
            d = torch.randn((n, 3), generator=self.gen, device=self.device, dtype=x.dtype)
            d = self.config.step_size_m * d / torch.linalg.vector_norm(d, dim=-1, keepdim=True).clamp_min(1e-9)
            if idx is None:
                self._step_time, self._step_offset = t, d
            else:
                self._step_time, self._step_offset = self._step_time.clone(), self._step_offset.clone()
                self._step_time[idx], self._step_offset[idx] = t, d
            if self.config.has_yaw_target:  # drawn after the position step: its draws are unchanged
                ty = lo + (hi - lo) * torch.rand(n, generator=self.gen, device=self.device, dtype=x.dtype)
                yaw = self.config.step_yaw_rad * (2 * torch.rand(n, generator=self.gen, device=self.device,
                                                                 dtype=x.dtype) - 1)
                if idx is None:
                    self._yaw_step_time, self._yaw_step = ty, yaw
                else:
                    self._yaw_step_time, self._yaw_step = self._yaw_step_time.clone(), self._yaw_step.clone()
                    self._yaw_step_time[idx], self._yaw_step[idx] = ty, yaw
        return self.observe()

    def set_state(self, state: torch.Tensor, *, force: torch.Tensor | None = None, torque: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> None:
        """Start new episodes from given states (B, 17) where mask is True, with the reference's reset semantics:
        previous-action observation = normalized motor state, last action 0, target at the origin."""
        state = torch.as_tensor(state, dtype=self._x.dtype, device=self.device)
        if state.shape != self.state.shape:
            raise InputError(f"state has shape {tuple(state.shape)}, expected {tuple(self.state.shape)}")
        if not bool(torch.isfinite(state).all()):
            raise InputError("state contains NaN or inf")
        idx = None if mask is None else mask.nonzero().squeeze(-1)
        pick = (lambda t: t) if idx is None else (lambda t: t[idx])  # noqa: E731
        zeros = torch.zeros_like(pick(self.force))
        params = self.params if idx is None else self.params.index(idx)
        self._start(idx, pick(state), zeros if force is None else pick(force),
                    zeros if torque is None else pick(torque),
                    zeros, pick(self.langevin), mdp.normalized_motors(params, pick(state)[:, 13:17]))

    def _start(self, idx: torch.Tensor | None, x: torch.Tensor, force: torch.Tensor, torque: torch.Tensor,
               gust: torch.Tensor, langevin: torch.Tensor, prev_action_obs: torch.Tensor) -> None:
        """Write new episodes (values (n, k)) into rows idx (all rows when None); storage stays contiguous SoA."""
        def put(current: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
            if idx is None:
                return value.t().contiguous()
            out = current.clone()
            out[:, idx] = value.t()
            return out

        n = x.shape[0]
        self._x = put(self._x, x)
        self._force = put(self._force, force)
        self._torque = put(self._torque, torque)
        self._gust = put(self._gust, gust)
        self._prev_action_obs = put(self._prev_action_obs, prev_action_obs)
        self._last_action = put(self._last_action, torch.zeros_like(prev_action_obs))
        self._target_state = put(self._target_state, torch.zeros((n, 12), dtype=x.dtype, device=self.device))
        if idx is None:
            self.langevin, self.steps = langevin.clone(), torch.zeros_like(self.steps)
        else:
            self.langevin = self.langevin.clone()
            self.langevin[idx] = langevin
            self.steps = self.steps.clone()
            self.steps[idx] = 0

    # ------------------------------------------------------------------------------------------------------------
    def observe(self) -> torch.Tensor:
        """Observation (B, D) of the current state: student (22), teacher (26) or privileged teacher (29)."""
        tgt = self.target()
        if self.config.observation == "teacher":
            obs = mdp.observe_teacher(self.params, self.state, self.prev_action_obs, tgt)
        elif self.config.observation == "privileged":
            obs = mdp.observe_privileged(self.params, self.state, self.prev_action_obs, tgt, self.external_force())
        else:
            obs = mdp.observe_student(self.state, self.prev_action_obs,
                                      tgt if self.config.student_target_relative else None)
        return self._add_noise(obs)

    def _add_noise(self, obs: torch.Tensor) -> torch.Tensor:
        noise = self.config.observation_noise
        if not noise.enabled:
            return obs
        std = torch.zeros(obs.shape[-1], dtype=obs.dtype, device=self.device)
        std[0:3], std[3:12], std[12:15], std[15:18] = (noise.position, noise.orientation,
                                                       noise.linear_velocity, noise.angular_velocity)
        return obs + std * torch.randn(obs.shape, generator=self.gen, device=self.device, dtype=obs.dtype)

    def check_action(self, action: torch.Tensor) -> torch.Tensor:
        action = torch.as_tensor(action, dtype=self._x.dtype, device=self.device)
        if action.shape != (self.num_envs, 4):
            raise InputError(f"action has shape {tuple(action.shape)}, expected ({self.num_envs}, 4): "
                             "one normalized [-1, 1] command per motor, in RAPTOR motor order")
        if self.config.check_inputs and not bool(torch.isfinite(action).all()):
            bad = (~torch.isfinite(action)).any(-1).nonzero().flatten()[:8].tolist()
            raise InputError(f"action contains NaN or inf (envs {bad}); the state was not changed")
        return action

    def _external_force_soa(self) -> torch.Tensor:
        return self._force + self._gust if self.config.disturbance.gust_fraction > 0 else self._force

    def external_force(self) -> torch.Tensor:
        """(B, 3) N world: the episode's constant disturbance force plus the gust, if any."""
        return self._external_force_soa().t()

    def physics_step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance every env by one step without autoreset: (reward (B,), terminated (B,), observation (B, D))."""
        action = self.check_action(action)
        tgt = self.target()
        if self.config.target in ("airframe", "langevin"):
            self._target_state = mdp.langevin_step(self.target_state, self.params.dt, self.gen,
                                                   self.config.langevin).t().contiguous()
        next_tgt = self._next_target(self.steps + 1)
        force = self._external_force_soa()
        a_soa = action.t().contiguous()
        if self.config.compile:
            if self.config.target == "hover":  # the stored zero target is already (6, B) and contiguous
                tgt_soa = next_soa = self._zero_target
            else:
                tgt_soa, next_soa = tgt.t().contiguous(), next_tgt.t().contiguous()
            x, rew, term, obs = self._fused(self._constants, self._x, a_soa, self._last_action, force, self._torque,
                                            tgt_soa, next_soa)
            self._x, obs = x, obs.t()
        else:
            nxt, rew, term, obs = transition(self.params, self.config.reward, self.config.observation, self.state,
                                             action, self.last_action, force.t(), self.torque, tgt,
                                             next_tgt if self._relative else None, self._integrate)
            self._x = nxt.t().contiguous()
        self._last_action = a_soa
        self._prev_action_obs = a_soa
        d = self.config.disturbance
        if d.gust_fraction > 0:
            a = torch.exp(-self.params.dt / d.gust_time_constant_s)
            sigma = d.gust_fraction * self.weight_n * torch.sqrt(1 - a * a)
            self._gust = a * self._gust + sigma * torch.randn(self._gust.shape, generator=self.gen,
                                                              device=self.device, dtype=self._gust.dtype)
        self.steps = self.steps + 1
        return rew, term, self._add_noise(obs)

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
