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

import torch

from raptor.errors import ConfigError, InputError
from raptor.sim import functional as F
from raptor.sim import mdp
from raptor.sim.airframe import Airframe
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.config import EnvConfig
from raptor.sim.functional import EnvState, Physics
from raptor.sim.fused import make_transition, pack_constants

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
