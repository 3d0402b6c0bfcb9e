"""The portable C core (firmware/raptor_policy.c, the code every target runs), through its pybind11 build, as a
policy of the one episode loop (raptor.runtime.run_episodes): one core instance per env, fed the observation a
flight controller gives it. `raptor eval`'s figures for a policy and for its C build are pinned to each other by
tests/test_export.py through this adapter."""

from __future__ import annotations

import math

import numpy as np
import torch


def firmware_observation(state: torch.Tensor, obs: torch.Tensor) -> np.ndarray:
    """The C core's input (B, 17) float32 [p, q wxyz, v, w body, previous action] from the env's state (B, 17) (the
    quaternion) and its student observation (B, 22) (p and v relative to the target, the previous action)."""
    s, o = state.detach().cpu().numpy(), obs.detach().cpu().numpy()
    return np.concatenate([o[:, 0:3], s[:, 3:7], o[:, 12:15], s[:, 10:13], o[:, 18:22]], -1).astype(np.float32)


class CorePolicy:
    """A policy (raptor.policy.Policy) run by the C core: B instances, 100 Hz calls (native_every 1), the heading
    frame as exported (RAPTOR_HEADING), the yaw setpoint passed per call where the env's target has one."""

    def __init__(self, policy) -> None:
        self.params = {k: v.detach().float().numpy() for k, v in policy.net.flat_parameters().items()}
        self.heading = policy.governor.constants() if policy.governor else None
        self.lead = policy.lead.constants() if policy.lead else None
        self.env = None
        self.cores: list = []

    def bind(self, env) -> None:
        self.env = env

    def reset(self, batch_size: int) -> None:
        from raptor.policy_export import _core

        self.cores = []
        for _ in range(batch_size):
            core = _core.Core(self.params, 1, 0)
            core.set_heading(self.heading)
            core.set_lead(self.lead)
            self.cores.append(core)
        self.k = 0

    accepts_acceleration = True

    @property
    def lead_enabled(self) -> bool:
        return self.lead is not None

    def step(self, obs: torch.Tensor, yaw_setpoint: torch.Tensor | None = None,
             acceleration_setpoint: torch.Tensor | None = None) -> torch.Tensor:
        x = firmware_observation(self.env.state, obs)
        ts = np.array([10**9 + self.k * 10**7], np.uint64)
        self.k += 1
        out = np.zeros((len(self.cores), 4), np.float32)
        for b, core in enumerate(self.cores):
            if yaw_setpoint is not None:
                y = float(yaw_setpoint[b])
                core.set_yaw_setpoint(math.cos(y), math.sin(y))
            if acceleration_setpoint is not None:
                core.set_acceleration_setpoint(*(float(v) for v in acceleration_setpoint[b]))
            out[b] = core.control(ts, x[b:b + 1])[0][0]
        return torch.as_tensor(out)
