"""The heading frame: the policy flies in the frame of a reference heading that turns toward the yaw setpoint.

The student's 22 inputs are p - p_des, R(q), v - v_des, w (body) and the previous action, in the world frame
(`raptor.conventions`). Gravity is the only direction the physics singles out, so turning the world frame about z
changes nothing a quadrotor feels: a policy that hovers facing x hovers facing any heading if it is shown its
state in a frame that turns with it. The heading governor keeps one reference heading psi_ref per vehicle and shows
the policy p, v and R in the frame rotated by psi_ref about world z (w and the previous action are body quantities
and stay):

    p' = Rz(psi_ref)^T (p - p_des),  v' = Rz(psi_ref)^T (v - v_des),  R' = Rz(psi_ref)^T R(q)

psi_ref starts at the vehicle's heading (the first call after a reset: any start heading looks like heading 0),
turns toward the yaw setpoint by at most `rate_rad_s` x 10 ms per native step, and is kept within `lead_rad` of the
vehicle's heading (atan2(R10, R00), the body x axis in the horizontal plane; undefined when the body x axis is
vertical, then psi_ref is left as is). The policy so never sees a heading error above lead_rad: a yaw setpoint step
of 180 deg, or a start facing backwards, becomes a turn at a bounded rate, which the published policy and ours
handle far better than a step (docs/policies-and-evaluation.md). With no yaw setpoint the vehicle holds the heading
it had at the first call after a reset (its engagement heading), as the Crazyflie and PX4 glue always did.

Headings are unit complex numbers (cos, sin): no trigonometry at run time, the same arithmetic here and in the C
core (`raptor_policy.c`, pinned by tests/test_heading.py and the export parity tests). A policy file carries its
governor in metadata["deployment"]["heading"]; a file without one (the published policy) flies without the frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from raptor.conventions import DT_NATIVE_S, HEADING_MIN_NORM2
from raptor.errors import PolicyFileError


@dataclass(frozen=True)
class HeadingGovernor:
    """rate_rad_s: the fastest the reference heading turns toward the setpoint; lead_rad: the largest heading
    error the policy is shown (0 < lead_rad <= pi)."""

    rate_rad_s: float = 1.5
    lead_rad: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_rad_s) and self.rate_rad_s > 0):
            raise PolicyFileError(f"heading rate_rad_s must be a positive number, got {self.rate_rad_s!r}")
        if not (math.isfinite(self.lead_rad) and 0 < self.lead_rad <= math.pi):
            raise PolicyFileError(f"heading lead_rad must be in (0, pi], got {self.lead_rad!r}")

    def constants(self) -> tuple[float, float, float, float]:
        """(cos, sin) of one native step's turn and of the lead limit, as the C core stores them."""
        step = min(self.rate_rad_s * DT_NATIVE_S, math.pi)
        return math.cos(step), math.sin(step), math.cos(self.lead_rad), math.sin(self.lead_rad)

    def to_metadata(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_metadata(metadata: dict) -> HeadingGovernor | None:
        block = (metadata.get("deployment") or {}).get("heading")
        if block is None:
            return None
        if not isinstance(block, dict) or set(block) - {"rate_rad_s", "lead_rad"}:
            raise PolicyFileError(f"policy metadata deployment.heading must be {{rate_rad_s, lead_rad}}, got {block!r}")
        try:
            return HeadingGovernor(**{k: float(v) for k, v in block.items()})
        except (TypeError, ValueError) as e:
            raise PolicyFileError(f"policy metadata deployment.heading: {e}") from None


def yaw_to_unit(yaw_rad: torch.Tensor) -> torch.Tensor:
    """Yaw angles (B,) rad (world, about z) -> unit headings (B, 2) = (cos, sin)."""
    return torch.stack([torch.cos(yaw_rad), torch.sin(yaw_rad)], -1)


def _turn(a: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Heading a (B, 2) turned by the angle (c, s)."""
    return torch.stack([a[:, 0] * c - a[:, 1] * s, a[:, 0] * s + a[:, 1] * c], -1)


def _relative(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of the angle from heading b to heading a: a (x) conj(b)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1], a[:, 1] * b[:, 0] - a[:, 0] * b[:, 1]


class HeadingFrame:
    """Batched governor state: `reset(B)`, then `apply(obs, setpoint, commit)` once per control call."""

    def __init__(self, governor: HeadingGovernor) -> None:
        self.governor = governor
        # the C core's float32 constants, as Python scalars (no tensor built per call)
        self._constants = tuple(float(torch.tensor(v, dtype=torch.float32)) for v in governor.constants())
        self.ref: torch.Tensor | None = None  # (B, 2) committed reference heading (cos, sin), world
        self.hold: torch.Tensor | None = None  # (B, 2) the heading at the first call after the reset (no setpoint)
        self.valid: torch.Tensor | None = None  # (B,) bool: ref and hold were set since the reset

    def reset(self, batch_size: int, mask: torch.Tensor | None = None, like: torch.Tensor | None = None) -> None:
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else "cpu"
        if mask is None or self.ref is None or self.ref.shape[0] != batch_size:
            self.ref = torch.zeros((batch_size, 2), dtype=dtype, device=device)
            self.ref[:, 0] = 1
            self.hold = self.ref.clone()
            self.valid = torch.zeros(batch_size, dtype=torch.bool, device=device)
        else:
            self.valid = self.valid & ~torch.as_tensor(mask, device=self.valid.device)

    def apply(self, obs: torch.Tensor, setpoint: torch.Tensor | None = None, commit: bool = True) -> torch.Tensor:
        """obs (B, 22) world frame -> the same observation in the reference-heading frame.

        setpoint: (B, 2) unit headings (cos, sin) of the yaw setpoint, None = hold the heading of the first call
        after the reset. commit: advance the governor (native calls); an intermediate call sees the one-step
        candidate and discards it."""
        B = obs.shape[0]
        if self.ref is None or self.ref.shape[0] != B:
            self.reset(B, like=obs)
        ref = self.ref.to(obs.dtype)
        cs, ss, cl, sl = self._constants
        hx, hy = obs[:, 3], obs[:, 6]  # R00, R10: the body x axis in the world x-y plane
        n2 = hx * hx + hy * hy
        has = n2 > HEADING_MIN_NORM2
        inv = torch.rsqrt(torch.where(has, n2, torch.ones_like(n2)))
        h = torch.stack([hx * inv, hy * inv], -1)
        unit_x = torch.zeros_like(h)
        unit_x[:, 0] = 1
        hold = torch.where(self.valid[:, None], self.hold.to(obs.dtype), torch.where(has[:, None], h, unit_x))
        setpoint = hold if setpoint is None else setpoint.to(obs.dtype)
        ref = torch.where(self.valid[:, None], ref, torch.where(has[:, None], h, setpoint))
        # turn toward the setpoint by at most one step
        rc, rs = _relative(setpoint, ref)
        sign = torch.where(rs >= 0, 1.0, -1.0).to(obs.dtype)
        ref = torch.where((rc >= cs)[:, None], setpoint, _turn(ref, cs, sign * ss))
        # stay within the lead limit of the vehicle's heading
        lc, ls = _relative(ref, h)
        sign = torch.where(ls >= 0, 1.0, -1.0).to(obs.dtype)
        ref = torch.where((has & (lc < cl))[:, None], _turn(h, cl, sign * sl), ref)
        ref = ref * (1.5 - 0.5 * (ref * ref).sum(-1, keepdim=True))  # back to unit length (one Newton step)
        if commit:
            self.ref, self.hold, self.valid = ref, hold, torch.ones_like(self.valid)
        return rotate_observation(obs, ref)


def rotate_observation(obs: torch.Tensor, heading: torch.Tensor) -> torch.Tensor:
    """obs (B, 22) world -> the frame turned by heading (B, 2) (cos, sin) about world z: p, R rows, v turned."""
    c, s = heading[:, 0:1], heading[:, 1:2]
    out = obs.clone()
    for a, b in ((0, 1), (12, 13), (3, 6), (4, 7), (5, 8)):  # (x, y) pairs: p, v, and R's rows 0 and 1 per column
        x, y = obs[:, a:a + 1], obs[:, b:b + 1]
        out[:, a:a + 1] = c * x + s * y
        out[:, b:b + 1] = c * y - s * x
    return out
