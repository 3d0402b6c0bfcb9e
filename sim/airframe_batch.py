"""Airframe parameters as tensors with a leading batch axis (one row per env): what the pure physics functions of
raptor.sim.dynamics and raptor.sim.mdp consume."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from raptor.errors import AirframeError
from raptor.sim.airframe import Airframe, parameter


@dataclass(frozen=True)
class AirframeBatch:
    """Airframe parameters as tensors with a leading batch axis B (one row per env)."""

    rotor_positions: torch.Tensor  # (B, 4, 3) m, body
    rotor_thrust_directions: torch.Tensor  # (B, 4, 3) unit, body
    rotor_torque_directions: torch.Tensor  # (B, 4, 3) unit, body (spin sign on z)
    rotor_thrust_coefficients: torch.Tensor  # (B, 4, 3) N per motor-state unit^k, k = 0, 1, 2
    rotor_torque_constants: torch.Tensor  # (B, 4) m (yaw torque per newton of thrust)
    tau_rise: torch.Tensor  # (B, 4) s
    tau_fall: torch.Tensor  # (B, 4) s
    mass: torch.Tensor  # (B,) kg
    gravity: torch.Tensor  # (B, 3) m/s^2, world
    J: torch.Tensor  # (B, 3, 3) kg m^2, body (gyroscopic term only)
    J_inv: torch.Tensor  # (B, 3, 3) 1/(kg m^2), body
    hovering_throttle_relative: torch.Tensor  # (B,) in [0, 1]
    action_min: torch.Tensor  # (B,) motor-command units
    action_max: torch.Tensor  # (B,) motor-command units
    dt: torch.Tensor  # (B,) s
    init_guidance: torch.Tensor  # (B,) probability of the guided (hover at origin) start
    init_max_position: torch.Tensor  # (B,) m
    init_max_angle: torch.Tensor  # (B,) rad (ignored by the reference sampler, see spec 4.2)
    init_max_linear_velocity: torch.Tensor  # (B,) m/s
    init_max_angular_velocity: torch.Tensor  # (B,) rad/s
    init_min_rpm: torch.Tensor  # (B,) relative motor range start
    init_max_rpm: torch.Tensor  # (B,) relative motor range end
    term_position: torch.Tensor  # (B,) m, per axis
    term_linear_velocity: torch.Tensor  # (B,) m/s, per axis
    term_angular_velocity: torch.Tensor  # (B,) rad/s, per axis
    term_enabled: torch.Tensor  # (B,) bool
    force_mean: torch.Tensor  # (B,) N, world, per axis
    force_std: torch.Tensor  # (B,) N
    torque_mean: torch.Tensor  # (B,) N m, body
    torque_std: torch.Tensor  # (B,) N m
    langevin_fraction: torch.Tensor  # (B,) probability that an episode tracks a Langevin target

    @property
    def batch_size(self) -> int:
        return int(self.mass.shape[0])

    @staticmethod
    def from_airframes(airframes: Sequence[Airframe], device: str | torch.device = "cpu",
                       dtype: torch.dtype = torch.float32) -> AirframeBatch:
        if not airframes:
            raise AirframeError("no airframes given")

        def stack(path: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([a.array(path) for a in airframes]), dtype=dtype, device=device)

        def mix(a: Airframe) -> float:
            m = a.array("trajectory.mixture")
            return float(m[1] / m.sum())

        return AirframeBatch(
            rotor_positions=stack("dynamics.rotor_positions"),
            rotor_thrust_directions=stack("dynamics.rotor_thrust_directions"),
            rotor_torque_directions=stack("dynamics.rotor_torque_directions"),
            rotor_thrust_coefficients=stack("dynamics.rotor_thrust_coefficients"),
            rotor_torque_constants=stack("dynamics.rotor_torque_constants"),
            tau_rise=stack("dynamics.rotor_time_constants_rising"),
            tau_fall=stack("dynamics.rotor_time_constants_falling"),
            mass=stack("dynamics.mass"),
            gravity=stack("dynamics.gravity"),
            J=stack("dynamics.J"),
            J_inv=stack("dynamics.J_inv"),
            hovering_throttle_relative=stack("dynamics.hovering_throttle_relative"),
            action_min=stack("dynamics.action_limit.min"),
            action_max=stack("dynamics.action_limit.max"),
            dt=stack("integration.dt"),
            init_guidance=stack("mdp.init.guidance"),
            init_max_position=stack("mdp.init.max_position"),
            init_max_angle=stack("mdp.init.max_angle"),
            init_max_linear_velocity=stack("mdp.init.max_linear_velocity"),
            init_max_angular_velocity=stack("mdp.init.max_angular_velocity"),
            init_min_rpm=stack("mdp.init.min_rpm"),
            init_max_rpm=stack("mdp.init.max_rpm"),
            term_position=stack("mdp.termination.position_threshold"),
            term_linear_velocity=stack("mdp.termination.linear_velocity_threshold"),
            term_angular_velocity=stack("mdp.termination.angular_velocity_threshold"),
            term_enabled=torch.as_tensor([bool(parameter(a.parameters, "mdp.termination.enabled")) for a in airframes],
                                         device=device),
            force_mean=stack("disturbances.random_force.mean"),
            force_std=stack("disturbances.random_force.std"),
            torque_mean=stack("disturbances.random_torque.mean"),
            torque_std=stack("disturbances.random_torque.std"),
            langevin_fraction=torch.as_tensor([mix(a) for a in airframes], dtype=dtype, device=device),
        )

    def index(self, idx: torch.Tensor) -> AirframeBatch:
        """Rows `idx` of every field (e.g. repeat each airframe M times with idx = arange(N).repeat_interleave(M))."""
        return AirframeBatch(**{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)})

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> AirframeBatch:
        def conv(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return AirframeBatch(**{f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)})
