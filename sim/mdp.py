"""The RAPTOR MDP as pure batched functions: initial states, observations, reward, termination, targets.

Spec sections 4.2-4.6. Every function takes an AirframeBatch (B rows) and tensors with a leading axis B.
Randomness comes from an explicit torch.Generator; nothing here keeps state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from raptor.conventions import TARGET_P, TARGET_V, M, P, Q, V, W
from raptor.geometry import quaternion_multiply, rotation_matrix
from raptor.sim.airframe_batch import AirframeBatch


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reference "squared" reward (spec 4.5); defaults are the RAPTOR teacher weights.

    orientation_term: "yaw" is the reference's 2 acos(1 - |q_z|) (a yaw-only penalty, sic);
    "full" is the attitude angle 2 acos|q_w|.
    """

    scale: float = 1.0
    constant: float = 1.5
    termination_penalty: float = -100.0
    position: float = 1.0
    position_clip: float = 0.0  # m; 0 = no clip
    orientation: float = 0.1
    linear_velocity: float = 0.0
    angular_velocity: float = 0.0
    linear_acceleration: float = 0.0
    angular_acceleration: float = 0.0
    action: float = 0.0
    d_action: float = 1.0
    non_negative: bool = False
    orientation_term: Literal["yaw", "full"] = "yaw"

    def __post_init__(self) -> None:
        if self.orientation_term not in ("yaw", "full"):
            raise ValueError(f"RewardConfig.orientation_term must be 'yaw' or 'full', got {self.orientation_term!r}")
        if self.position_clip < 0:
            raise ValueError("RewardConfig.position_clip must be >= 0 (0 disables the clip)")


# ----------------------------------------------------------------------------------------------------------------
# Initial states


def _uniform(shape: tuple[int, ...], lo: torch.Tensor, hi: torch.Tensor, gen: torch.Generator | None,
             like: torch.Tensor) -> torch.Tensor:
    u = torch.rand(shape, generator=gen, device=like.device, dtype=like.dtype)
    return lo + (hi - lo) * u


def sample_orientation(n: int, max_angle_rad: torch.Tensor | float, gen: torch.Generator | None,
                       like: torch.Tensor) -> torch.Tensor:
    """Quaternions (n, 4): axis uniform on the sphere, angle ~ U(0, max_angle_rad)."""
    u = torch.rand((n, 3), generator=gen, device=like.device, dtype=like.dtype)
    phi = 2 * math.pi * u[:, 0]
    cos_t = 1 - 2 * u[:, 1]
    sin_t = torch.sqrt((1 - cos_t * cos_t).clamp_min(0))
    axis = torch.stack([sin_t * torch.cos(phi), sin_t * torch.sin(phi), cos_t], -1)
    angle = u[:, 2] * max_angle_rad
    return torch.cat([torch.cos(angle / 2)[:, None], torch.sin(angle / 2)[:, None] * axis], -1)


def tilt_and_yaw(n: int, max_tilt_rad: float, gen: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Quaternions (n, 4): yaw U(-pi, pi), then a tilt U(0, max_tilt_rad) about a random horizontal world axis."""
    u = torch.rand((n, 3), generator=gen, device=like.device, dtype=like.dtype)
    yaw = (2 * u[:, 0] - 1) * math.pi
    zero = torch.zeros_like(yaw)
    q_yaw = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], -1)
    phi, tilt = 2 * math.pi * u[:, 1], u[:, 2] * max_tilt_rad
    s = torch.sin(tilt / 2)
    q_tilt = torch.stack([torch.cos(tilt / 2), s * torch.cos(phi), s * torch.sin(phi),
                          zero], -1)
    return quaternion_multiply(q_tilt, q_yaw)


def sample_uniform_rotation(n: int, gen: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Quaternions (n, 4) uniform on SO(3) (any tilt, any yaw), with w >= 0."""
    q = torch.randn((n, 4), generator=gen, device=like.device, dtype=like.dtype)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[:, :1] < 0, -q, q)


@dataclass(frozen=True)
class InitialStateConfig:
    """How episode starts are drawn.

    attitude: "reference" is RAPTOR's (tilt U(0, 1 rad) about a random axis, whatever max_angle says);
    "full" is a uniform random rotation (any tilt, any yaw); "max_angle" honours the airframe's max_angle;
    "tilt_any_yaw" draws yaw U(-pi, pi) and a tilt U(0, max_tilt_rad) about a random horizontal axis.
    The scales multiply the airframe's ranges (e.g. faster starts for a recovery scenario).
    """

    attitude: Literal["reference", "full", "max_angle", "tilt_any_yaw"] = "reference"
    max_tilt_rad: float = math.pi / 2  # for "tilt_any_yaw"
    position_scale: float = 1.0
    linear_velocity_scale: float = 1.0
    angular_velocity_scale: float = 1.0
    guidance: float | None = None  # override of the airframe's probability of a guided (hover at origin) start
    max_position_m: float | None = None  # override of the airframe's init range (RAPTOR post-training: 0.5 m)
    any_yaw_fraction: float = 0.0  # this fraction of starts gets an extra uniform yaw U(-pi, pi) (world z)

    def __post_init__(self) -> None:
        if self.attitude not in ("reference", "full", "max_angle", "tilt_any_yaw"):
            raise ValueError("InitialStateConfig.attitude must be reference|full|max_angle|tilt_any_yaw, "
                             f"got {self.attitude!r}")


def sample_initial_state(params: AirframeBatch, gen: torch.Generator | None,
                         config: InitialStateConfig = InitialStateConfig(),
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """State (B, 17), disturbance force (B, 3) N world, torque (B, 3) N m body, as spec 4.2."""
    like = params.mass
    n = params.batch_size

    def col(t: torch.Tensor) -> torch.Tensor:
        return t[:, None]

    guidance = params.init_guidance if config.guidance is None else torch.full_like(like, config.guidance)
    guided = torch.rand((n,), generator=gen, device=like.device, dtype=like.dtype) < guidance
    pmax_m = params.init_max_position if config.max_position_m is None else torch.full_like(like, config.max_position_m)
    pmax = col(pmax_m) * config.position_scale
    p = _uniform((n, 3), -pmax, pmax, gen, like)
    if config.attitude == "full":
        q = sample_uniform_rotation(n, gen, like)
    elif config.attitude == "tilt_any_yaw":
        q = tilt_and_yaw(n, config.max_tilt_rad, gen, like)
    else:
        max_angle = params.init_max_angle if config.attitude == "max_angle" else torch.ones_like(like)
        q = sample_orientation(n, max_angle, gen, like)
    vmax = col(params.init_max_linear_velocity) * config.linear_velocity_scale
    wmax = col(params.init_max_angular_velocity) * config.angular_velocity_scale
    v = _uniform((n, 3), -vmax, vmax, gen, like)
    w = _uniform((n, 3), -wmax, wmax, gen, like)
    identity = torch.zeros_like(q)
    identity[:, 0] = 1
    g = col(guided)
    p, v, w = torch.where(g, 0.0, p), torch.where(g, 0.0, v), torch.where(g, 0.0, w)
    q = torch.where(g, identity, q)
    force = col(params.force_mean) + col(params.force_std) * torch.randn((n, 3), generator=gen, device=like.device,
                                                                         dtype=like.dtype)
    tstd = torch.stack([params.torque_std, params.torque_std, params.torque_std / 100], -1)
    torque = col(params.torque_mean) + tstd * torch.randn((n, 3), generator=gen, device=like.device, dtype=like.dtype)
    span = col(params.action_max - params.action_min)
    lo = col(params.action_min) + (col(params.init_min_rpm) + 1) / 2 * span
    hi = col(params.action_min) + (col(params.init_max_rpm) + 1) / 2 * span
    m = _uniform((n, 4), lo, hi, gen, like)
    if config.any_yaw_fraction > 0:  # drawn last: the reference's draw order above is unchanged
        u = torch.rand((n, 2), generator=gen, device=like.device, dtype=like.dtype)
        yaw = torch.where(u[:, 0] < config.any_yaw_fraction, (2 * u[:, 1] - 1) * math.pi, torch.zeros_like(u[:, 1]))
        zero = torch.zeros_like(yaw)
        q = quaternion_multiply(torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], -1), q)
    return torch.cat([p, q, v, w, m], -1), force, torque


def normalized_motors(params: AirframeBatch, motors: torch.Tensor) -> torch.Tensor:
    """Motor state (B, 4) in action-limit units -> [-1, 1]."""
    lo, hi = params.action_min[:, None], params.action_max[:, None]
    return 2 * (motors - lo) / (hi - lo) - 1


# ----------------------------------------------------------------------------------------------------------------
# Observations


def observe_student(state: torch.Tensor, prev_action: torch.Tensor,
                    target: torch.Tensor | None = None) -> torch.Tensor:
    """Student observation (B, 22): [p - p_des, R(q) row-major, v - v_des, w body, previous action].

    target (B, 6) = (p_des, v_des) in world; None means the origin at rest (the reference's absolute p, v).
    """
    p, v = state[:, P], state[:, V]
    if target is not None:
        p, v = p - target[:, TARGET_P], v - target[:, TARGET_V]
    return torch.cat([p, rotation_matrix(state[:, Q]), v, state[:, W], prev_action], -1)


def observe_teacher(params: AirframeBatch, state: torch.Tensor, prev_action: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
    """Teacher observation (B, 26): the student's, relative to the target, plus the motor state in [-1, 1]."""
    return torch.cat([observe_student(state, prev_action, target), normalized_motors(params, state[:, M])], -1)


def observe_privileged(params: AirframeBatch, state: torch.Tensor, prev_action: torch.Tensor, target: torch.Tensor,
                       force_w: torch.Tensor) -> torch.Tensor:
    """Privileged teacher observation (B, 29): the teacher's 26, then the external force f_dist (B, 3) N world as
    an acceleration in g, f_dist / (m |g|).

    The reference's teachers do not see the disturbance. A memoryless teacher cannot tell a constant push from an
    offset, so on airframes with a large disturbance (its std grows with the surplus thrust) it hovers tens of cm
    from the target; seeing the force, it cancels it, and the recurrent student learns to infer it from its history.
    """
    weight = params.mass * torch.linalg.vector_norm(params.gravity, dim=-1)
    return torch.cat([observe_teacher(params, state, prev_action, target), force_w / weight[:, None]], -1)


# ----------------------------------------------------------------------------------------------------------------
# Reward and termination


def terminated(params: AirframeBatch, state: torch.Tensor) -> torch.Tensor:
    """(B,) bool: any |p_i|, |v_i|, |w_i| above its per-axis threshold (applied to the post-step state)."""
    bad = (state[:, P].abs() > params.term_position[:, None]).any(-1)
    bad |= (state[:, V].abs() > params.term_linear_velocity[:, None]).any(-1)
    bad |= (state[:, W].abs() > params.term_angular_velocity[:, None]).any(-1)
    return bad & params.term_enabled


def reward(params: AirframeBatch, cfg: RewardConfig, state: torch.Tensor, action: torch.Tensor,
           next_state: torch.Tensor, last_action: torch.Tensor, target: torch.Tensor | None,
           is_terminated: torch.Tensor) -> torch.Tensor:
    """(B,) reward of the step state -> next_state under action (spec 4.5); costs use the pre-step state."""
    p, v, w = state[:, P], state[:, V], state[:, W]
    if target is not None:
        p, v = p - target[:, TARGET_P], v - target[:, TARGET_V]
    c_pos = torch.linalg.vector_norm(p, dim=-1)
    if cfg.position_clip > 0:
        c_pos = c_pos.clamp_max(cfg.position_clip)
    if cfg.orientation_term == "yaw":
        c_ori = 2 * torch.acos((1 - state[:, 6].abs()).clamp(-1, 1))
    else:
        c_ori = 2 * torch.acos(state[:, 3].abs().clamp(-1, 1))
    cost = cfg.position * c_pos + cfg.orientation * c_ori
    cost = cost + cfg.d_action * torch.linalg.vector_norm(action - last_action, dim=-1)
    if cfg.linear_velocity:
        cost = cost + cfg.linear_velocity * torch.linalg.vector_norm(v, dim=-1)
    if cfg.angular_velocity:
        cost = cost + cfg.angular_velocity * torch.linalg.vector_norm(w, dim=-1)
    if cfg.linear_acceleration or cfg.angular_acceleration:
        dt = params.dt
        dv = torch.linalg.vector_norm(next_state[:, V] - state[:, V], dim=-1)
        cost = cost + cfg.linear_acceleration * dv / dt
        cost = cost + cfg.angular_acceleration * torch.linalg.vector_norm(next_state[:, W] - w, dim=-1) / dt
    if cfg.action:
        cost = cost + cfg.action * (((action + 1) / 2 - params.hovering_throttle_relative[:, None]) ** 2).sum(-1)
    r = -cfg.scale * cost + cfg.constant
    if cfg.non_negative:
        r = r.clamp_min(0)
    return torch.where(is_terminated, torch.full_like(r, cfg.termination_penalty), r)


# ----------------------------------------------------------------------------------------------------------------
# Langevin targets (spec 4.6)


@dataclass(frozen=True)
class LangevinConfig:
    gamma: float = 1.0
    omega: float = 2.0
    sigma: float = 0.5
    alpha: float = 0.01


def langevin_step(target_state: torch.Tensor, dt_s: torch.Tensor, gen: torch.Generator | None,
                  cfg: LangevinConfig = LangevinConfig()) -> torch.Tensor:
    """Advance the target process (B, 12) = [x_raw, v_raw, x_s, v_s] (each (B, 3) world) by one step.

    The tracked target (p_des, v_des) is target_state[:, raptor.sim.functional.LANGEVIN_SMOOTH].
    """
    x_raw, v_raw, x_s, v_s = target_state.split(3, dim=-1)
    dt = dt_s[:, None]
    dW = torch.sqrt(dt) * torch.randn(x_raw.shape, generator=gen, device=x_raw.device, dtype=x_raw.dtype)
    v_raw = v_raw + (-cfg.gamma * v_raw - cfg.omega ** 2 * x_raw) * dt + cfg.sigma * dW
    x_raw = x_raw + v_raw * dt
    v_s = cfg.alpha * v_raw + (1 - cfg.alpha) * v_s
    x_s = x_s + v_s * dt
    return torch.cat([x_raw, v_raw, x_s, v_s], -1)
