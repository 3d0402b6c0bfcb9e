"""Quadrotor dynamics as pure batched functions of (params, state, action), following spec section 1.

All tensors carry a leading batch axis B. The state layout is `raptor.conventions` (17 values):
p (3) m world, q (4) wxyz body->world, v (3) m/s world, w (3) rad/s body, m (4) motor state in action-limit units.
The same code runs on CPU and CUDA, in float32 or float64.
"""

from __future__ import annotations

import torch

from raptor.conventions import M, P, Q, V, W
from raptor.sim.airframe_batch import AirframeBatch

POSITION_CLAMP = 1e5  # p, v and w are clamped to +-1e5 after each step (never triggers in practice)


def motor_command(params: AirframeBatch, action: torch.Tensor) -> torch.Tensor:
    """Normalized action (B, 4) in [-1, 1] (clipped here) -> motor command (B, 4) in action-limit units."""
    a = action.clamp(-1.0, 1.0)
    half = ((params.action_max - params.action_min) / 2)[:, None]
    return a * half + params.action_min[:, None] + half


def rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """R(q) v for q (B, 4) wxyz (not necessarily unit, as inside RK4) and v (B, 3): v + 2w(u x v) + 2u x (u x v)."""
    w, u = q[:, :1], q[:, 1:]
    uv = torch.linalg.cross(u, v, dim=-1)
    return v + 2.0 * w * uv + 2.0 * torch.linalg.cross(u, uv, dim=-1)


def rotor_wrench(params: AirframeBatch, motors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total thrust force (B, 3) N and torque (B, 3) N m in the body frame from the motor state (B, 4)."""
    c = params.rotor_thrust_coefficients
    f = c[..., 0] + c[..., 1] * motors + c[..., 2] * motors * motors  # (B, 4) N
    forces = f[..., None] * params.rotor_thrust_directions  # (B, 4, 3) N body
    torques = (params.rotor_torque_constants * f)[..., None] * params.rotor_torque_directions \
        + torch.linalg.cross(params.rotor_positions, forces, dim=-1)  # (B, 4, 3) N m body
    return forces.sum(1), torques.sum(1)


def _matvec(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (m * v[:, None, :]).sum(-1)


def derivative(params: AirframeBatch, x: torch.Tensor, command: torch.Tensor,
               force_w: torch.Tensor, torque_b: torch.Tensor) -> torch.Tensor:
    """Time derivative (B, 17) of the state x (B, 17) under motor command (B, 4) and constant disturbances.

    force_w (B, 3) N world, torque_b (B, 3) N m body. The motor lag uses the rising time constant where the
    command is at or above the motor state and the falling one elsewhere, chosen per evaluation (per RK4 stage).
    """
    q, v, w, m = x[:, Q], x[:, V], x[:, W], x[:, M]
    thrust_b, tau_b = rotor_wrench(params, m)
    mass = params.mass[:, None]
    q_dot = 0.5 * torch.stack([
        -(q[:, 1] * w[:, 0] + q[:, 2] * w[:, 1] + q[:, 3] * w[:, 2]),
        q[:, 0] * w[:, 0] + q[:, 2] * w[:, 2] - q[:, 3] * w[:, 1],
        q[:, 0] * w[:, 1] + q[:, 3] * w[:, 0] - q[:, 1] * w[:, 2],
        q[:, 0] * w[:, 2] + q[:, 1] * w[:, 1] - q[:, 2] * w[:, 0],
    ], dim=-1)
    v_dot = rotate(q, thrust_b) / mass + params.gravity + force_w / mass
    gyro = torch.linalg.cross(w, _matvec(params.J, w), dim=-1)
    w_dot = _matvec(params.J_inv, tau_b - gyro + torque_b)
    tau = torch.where(command >= m, params.tau_rise, params.tau_fall)
    m_dot = (command - m) / tau
    return torch.cat([v, q_dot, v_dot, w_dot, m_dot], dim=-1)


def integrate(params: AirframeBatch, x: torch.Tensor, command: torch.Tensor,
              force_w: torch.Tensor, torque_b: torch.Tensor) -> torch.Tensor:
    """One classical RK4 step of dt = params.dt with the command held, then post-integration (spec 1.4)."""
    dt = params.dt[:, None]
    k1 = derivative(params, x, command, force_w, torque_b)
    k2 = derivative(params, x + 0.5 * dt * k1, command, force_w, torque_b)
    k3 = derivative(params, x + 0.5 * dt * k2, command, force_w, torque_b)
    k4 = derivative(params, x + dt * k3, command, force_w, torque_b)
    x = x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return post_integration(params, x)


def post_integration(params: AirframeBatch, x: torch.Tensor) -> torch.Tensor:
    """Renormalize q, clamp p, v, w to +-1e5 and the motor state to the action limits."""
    p, q, v, w, m = x[:, P], x[:, Q], x[:, V], x[:, W], x[:, M]
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    m = torch.maximum(torch.minimum(m, params.action_max[:, None]), params.action_min[:, None])
    return torch.cat([p.clamp(-POSITION_CLAMP, POSITION_CLAMP), q,
                      v.clamp(-POSITION_CLAMP, POSITION_CLAMP), w.clamp(-POSITION_CLAMP, POSITION_CLAMP), m],
                     dim=-1)


def step(params: AirframeBatch, x: torch.Tensor, action: torch.Tensor,
         force_w: torch.Tensor | None = None, torque_b: torch.Tensor | None = None) -> torch.Tensor:
    """next_state (B, 17) = one 10 ms step of state x (B, 17) under normalized action (B, 4)."""
    if force_w is None:
        force_w = torch.zeros_like(x[:, P])
    if torque_b is None:
        torque_b = torch.zeros_like(x[:, W])
    return integrate(params, x, motor_command(params, action), force_w, torque_b)
