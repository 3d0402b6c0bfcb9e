"""Deployment semantics of the RAPTOR executor (spec 6), the reference for the C core, export and HIL.

Inference at an intermediate rate (e.g. 400 Hz) with the GRU advanced only at the native 100 Hz rate: a native
call runs the GRU and commits the new hidden state; an intermediate call runs the GRU on a copy of the committed
state and discards it. The previous-action input is the mean of the previous actions received since the last
native step. The output is clamped to [-1, 1]. As in PX4's mc_raptor (FORCE_SYNC_NATIVE), every `native_every`-th
call is native, counting from the first call after a reset.
"""

from __future__ import annotations

import torch

from raptor.conventions import (  # the executor's history after a reset
    OBS_P,
    OBS_PREV_ACTION,
    OBS_R,
    OBS_V,
    OBS_W,
    RESET_ACTION_HISTORY,
)
from raptor.errors import InputError
from raptor.geometry import rotation_matrix
from raptor.policy.feedforward import SetpointLead
from raptor.policy.heading import HeadingFrame, HeadingGovernor, yaw_to_unit
from raptor.policy.network import RaptorPolicyNet


class DeploymentRunner:
    """Batched executor: `reset(B)`, then `control(p, q, v, w, previous_action)` once per control tick."""

    def __init__(self, net: RaptorPolicyNet, native_every: int = 1, heading: HeadingGovernor | None = None,
                 lead: SetpointLead | None = None) -> None:
        if native_every < 1:
            raise ValueError("native_every must be >= 1 (4 for 400 Hz, 10 for 1 kHz control)")
        self.net = net
        self.native_every = native_every
        self.heading = HeadingFrame(heading) if heading is not None else None
        self.lead = lead
        self.batch_size = 0

    @property
    def rate_hz(self) -> float:
        return 100.0 * self.native_every

    def reset(self, batch_size: int) -> None:
        p = next(self.net.parameters())
        self.batch_size = batch_size
        self.h = self.net.initial_hidden(batch_size).detach()  # (B, 16) committed hidden state
        self.history = torch.full((batch_size, 4), RESET_ACTION_HISTORY, dtype=p.dtype, device=p.device)
        self.calls_since_native = 0
        self.calls = 0
        if self.heading is not None:
            self.heading.reset(batch_size, like=self.h)

    @torch.no_grad()
    def control(self, position: torch.Tensor, orientation: torch.Tensor, linear_velocity: torch.Tensor,
                angular_velocity: torch.Tensor, previous_action: torch.Tensor,
                yaw_setpoint: torch.Tensor | None = None,
                acceleration_setpoint: torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
        """Inputs (B, 3) m world, (B, 4) wxyz, (B, 3) m/s world, (B, 3) rad/s body, (B, 4) last command, the yaw
        setpoint (B,) rad world (with a heading governor; None = hold the heading of the first call after a reset:
        the governor advances on native calls) and the setpoint's acceleration (B, 3) m/s^2 world (with a lead).

        Returns (action (B, 4) clamped to [-1, 1], whether this call was a native step).
        """
        if self.batch_size == 0:
            raise InputError("call reset(batch_size) before control()")
        c = self.calls_since_native
        if c == 0:
            self.history = previous_action.clone()
        else:
            self.history = (self.history * c + previous_action) / (c + 1)
        self.calls_since_native += 1
        obs = torch.cat([position, rotation_matrix(orientation), linear_velocity, angular_velocity, self.history], -1)
        native = self.calls % self.native_every == 0
        if self.lead is not None:
            obs = self.lead.apply(obs, acceleration_setpoint)
        if self.heading is not None:
            obs = self.heading.apply(obs, None if yaw_setpoint is None else yaw_to_unit(yaw_setpoint), commit=native)
        action, h = self.net.step(obs, self.h)
        if native:
            self.h = h
            self.calls_since_native = 0
        self.calls += 1
        return action.clamp(-1.0, 1.0), native

    def control_obs(self, obs: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The same from a 22-dim observation whose last 4 entries are the previous action and rotation matrix
        entries 3:12 (row-major); the quaternion is recovered from the matrix."""
        q = matrix_to_quaternion(obs[:, OBS_R])
        return self.control(obs[:, OBS_P], q, obs[:, OBS_V], obs[:, OBS_W], obs[:, OBS_PREV_ACTION])


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Row-major rotation matrices (B, 9) -> unit quaternions (B, 4) wxyz with w >= 0 (Shepperd's method)."""
    m = R.reshape(-1, 3, 3)
    m00, m01, m02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    m10, m11, m12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    m20, m21, m22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    cands = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
        torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
        torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
    ], 1)  # (B, 4 candidates, 4)
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = best.argmax(-1)
    q = cands[torch.arange(m.shape[0], device=m.device), k]
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    return torch.where(q[:, :1] < 0, -q, q)
