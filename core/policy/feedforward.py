"""The setpoint's acceleration as a lead of the position error (issue #42 item 3).

RAPTOR's 22 inputs carry no setpoint acceleration (PX4's mc_raptor loads the same network), so a policy that
follows a moving setpoint settles behind it by about a_des / k, k its effective position gain: it must command an
acceleration it is not shown. Where a setpoint carries one (PX4's `trajectory_setpoint.acceleration`, the Crazyflie
commander's, a figure-eight's analytic second derivative), the runtime shows the policy a position error led by it:

    p_err' = p_err - clip(a_des / k, max_lead_m)       (world frame, before the heading frame turns it)

so the policy's own position response produces the acceleration. Zero acceleration leaves every input unchanged:
hover, setpoint steps and every figure without a moving setpoint are untouched. A policy file carries its lead in
metadata["deployment"]["lead"] ({gain_s2, max_lead_m}); a file without one flies without, unless a runtime is told
(`raptor eval --lead K`, `Policy.with_lead`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from raptor.conventions import OBS_P
from raptor.errors import PolicyFileError


@dataclass(frozen=True)
class SetpointLead:
    """gain_s2: k in 1/s^2 (the lead is a_des / k); max_lead_m: the largest lead, per axis."""

    gain_s2: float = 6.0
    max_lead_m: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gain_s2) and self.gain_s2 > 0):
            raise PolicyFileError(f"lead gain_s2 must be a positive number (1/s^2), got {self.gain_s2!r}")
        if not (math.isfinite(self.max_lead_m) and self.max_lead_m > 0):
            raise PolicyFileError(f"lead max_lead_m must be a positive number (m), got {self.max_lead_m!r}")

    def apply(self, obs: torch.Tensor, acceleration: torch.Tensor | None) -> torch.Tensor:
        """obs (B, 22) world -> the same with p_err led by acceleration (B, 3) m/s^2 world (None: unchanged)."""
        if acceleration is None:
            return obs
        inv, cap = self.constants()
        lead = (acceleration.to(obs.dtype) * inv).clamp(-cap, cap)
        out = obs.clone()
        out[:, OBS_P] = obs[:, OBS_P] - lead
        return out

    def constants(self) -> tuple[float, float]:
        """(1 / k, max_lead_m) as float32 values: what the C core stores (raptor_lead_t), the same arithmetic."""
        return float(np.float32(1.0 / self.gain_s2)), float(np.float32(self.max_lead_m))

    def to_metadata(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_metadata(metadata: dict) -> SetpointLead | None:
        block = (metadata.get("deployment") or {}).get("lead")
        if block is None:
            return None
        if not isinstance(block, dict) or set(block) - {"gain_s2", "max_lead_m"}:
            raise PolicyFileError(f"policy metadata deployment.lead must be {{gain_s2, max_lead_m}}, got {block!r}")
        try:
            return SetpointLead(**{k: float(v) for k, v in block.items()})
        except (TypeError, ValueError) as e:
            raise PolicyFileError(f"policy metadata deployment.lead: {e}") from None
