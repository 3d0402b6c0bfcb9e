"""Gymnasium adapters over BatchedQuadrotorEnv: a VectorEnv (numpy in, numpy out) and a single Env.

| observation (student, 22) | p - p_des (3) m world, R(q) row-major (9), v - v_des (3) m/s world, w (3) rad/s body,
|                           | previous action (4) in [-1, 1]                                                     |
| observation (teacher, 26) | the student's 22 + motor state normalized to [-1, 1] (4)                             |
| observation (privileged)  | the teacher's 26 + the disturbance force in g, f / (m |g|), world (3): 29            |
| action (4)                | normalized motor commands in [-1, 1], RAPTOR order [FR, BR, BL, FL]; clipped         |
| reward                    | RAPTOR teacher reward (spec 4.5); -100 on termination                                 |
| episode                   | 500 steps of 10 ms; termination when |p_i|, |v_i| or |w_i| leaves its threshold     |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from raptor.errors import InputError
from raptor.sim.airframe import Airframe, named_airframe
from raptor.sim.airframe_files import resolve_airframes
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv


def _as_airframes(airframes: str | Airframe | Sequence[Airframe]) -> list[Airframe]:
    if isinstance(airframes, str):
        return resolve_airframes(airframes)
    if isinstance(airframes, Airframe):
        return [airframes]
    return list(airframes)


def _action_tensor(action: Any, env: BatchedQuadrotorEnv) -> torch.Tensor:
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"action must be a numeric array of shape ({env.num_envs}, 4), got {type(action)}") from None
    if a.shape == (4,) and env.num_envs == 1:
        a = a[None]
    return torch.as_tensor(a, dtype=env.state.dtype, device=env.device)


class QuadrotorVectorEnv(VectorEnv):
    """N airframes x M envs each as a gymnasium VectorEnv (same-step autoreset)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, airframes: str | Airframe | Sequence[Airframe] = "crazyflie", envs_per_airframe: int = 1,
                 config: EnvConfig = EnvConfig(), seed: int | None = None) -> None:
        self.core = BatchedQuadrotorEnv(_as_airframes(airframes), envs_per_airframe, config, seed)
        self.num_envs = self.core.num_envs
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.core.obs_dim,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs = self.core.reset(seed=seed)
        return obs.float().cpu().numpy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, rew, term, trunc, info = self.core.step(_action_tensor(actions, self.core))
        infos: dict = {}
        if "final_observation" in info:
            infos["final_obs"] = info["final_observation"].float().cpu().numpy()
            infos["_final_obs"] = info["_final_observation"].cpu().numpy()
        return (obs.float().cpu().numpy(), rew.float().cpu().numpy(), term.cpu().numpy(), trunc.cpu().numpy(),
                infos)


class QuadrotorEnv(gymnasium.Env):
    """One quadrotor (registered as `raptor/Quadrotor-v0`). Options: airframe (name or Airframe), config."""

    metadata = {"render_modes": []}

    def __init__(self, airframe: str | Airframe = "crazyflie", config: EnvConfig | None = None,
                 observation: str | None = None) -> None:
        af = named_airframe(airframe) if isinstance(airframe, str) else airframe
        cfg = config or EnvConfig(dtype="float64")
        if observation is not None:
            cfg = EnvConfig(**{**cfg.__dict__, "observation": observation})
        self.core = BatchedQuadrotorEnv([af], 1, cfg)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.core.obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is None and not getattr(self, "_seeded", False):
            seed = int(self.np_random.integers(2 ** 31))
        self._seeded = True
        obs = self.core.reset(seed=seed)
        return obs[0].float().numpy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        rew, term, _ = self.core.physics_step(_action_tensor(action, self.core))
        truncated = bool(self.core.steps[0] >= self.core.config.episode_steps) and not bool(term[0])
        return self.core.observe()[0].float().numpy(), float(rew[0]), bool(term[0]), truncated, {}
