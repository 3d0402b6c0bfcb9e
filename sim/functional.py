"""The functional env core: a frozen record of everything that changes while a batch of envs flies, and pure
functions of it. `step(params, config, state, action, gen, physics) -> (state, outputs)` is one env step;
`BatchedQuadrotorEnv` (raptor.sim.env) holds a record and a generator and calls these, and the gymnasium and
stable-baselines3 adapters wrap that class.

The physics engine is a value (`Physics`): our reference integrator, the fused compiled transition
(raptor.sim.fused) or MuJoCo (raptor.sim.mujoco_engine); the MDP (initial states, observation, reward, termination,
targets) is raptor.sim.mdp's. Randomness comes only from the generator passed in, in a fixed draw order, so the
same seed gives the same episodes whichever engine flies them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from raptor.conventions import OBS_FORCE, OBS_P, OBS_R, OBS_V, OBS_W, M
from raptor.sim import dynamics, mdp
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.config import MIXED_KINDS, EnvConfig

# The Langevin target process's rows (EnvState.target_state, transposed (B, 12)): the raw and the smoothed target.
LANGEVIN_RAW_V = slice(3, 6)
LANGEVIN_SMOOTH = slice(6, 12)  # [x_s, v_s]: the tracked target (p_des, v_des)
LANGEVIN_SMOOTH_V = slice(9, 12)

@dataclass(frozen=True)
class EnvState:
    """The evolving part of B envs. Per-env vectors are stored structure-of-arrays (component x batch, contiguous
    along the batch, as the fused transition reads them); `state` etc. are (B, k) views."""

    x: torch.Tensor  # (17, B): p m world, q wxyz body->world, v m/s world, w rad/s body, motors (action units)
    force: torch.Tensor  # (3, B) N world, constant per episode
    torque: torch.Tensor  # (3, B) N m body, constant per episode
    gust: torch.Tensor  # (3, B) N world, Ornstein-Uhlenbeck gust
    last_action: torch.Tensor  # (4, B) previous action in [-1, 1] (the reward's d_action); 0 after a reset
    prev_action_obs: torch.Tensor  # (4, B) the observed previous action; the normalized motors after a reset
    target_state: torch.Tensor  # (12, B) Langevin target process [x_raw, v_raw, x_s, v_s] (LANGEVIN_*), m, m/s world
    langevin: torch.Tensor  # (B,) bool: the episode tracks the Langevin target (target "airframe" / "langevin")
    steps: torch.Tensor  # (B,) long: env steps since the episode started
    step_time: torch.Tensor  # (B,) s: when the position setpoint steps (target "step")
    step_offset: torch.Tensor  # (B, 3) m world: the position step
    yaw_step_time: torch.Tensor  # (B,) s: when the yaw setpoint steps (target "step" with step_yaw_rad > 0)
    yaw_step: torch.Tensor  # (B,) rad about world z: the yaw setpoint after its step
    kind: torch.Tensor  # (B,) long: target "mixed": the episode's target, an index into MIXED_KINDS
    eight_radius: torch.Tensor  # (B,) m: target "mixed": the episode's figure-eight radius
    eight_period: torch.Tensor  # (B,) s: target "mixed": the episode's figure-eight period

    SOA = ("x", "force", "torque", "gust", "last_action", "prev_action_obs", "target_state")

    @property
    def state(self) -> torch.Tensor:
        """(B, 17) view of x."""
        return self.x.t()

    @property
    def batch_size(self) -> int:
        return self.x.shape[1]

    @staticmethod
    def zeros(batch: int, dtype: torch.dtype, device) -> EnvState:
        def z(*shape):
            return torch.zeros(shape, dtype=dtype, device=device)

        return EnvState(z(17, batch), z(3, batch), z(3, batch), z(3, batch), z(4, batch), z(4, batch), z(12, batch),
                        torch.zeros(batch, dtype=torch.bool, device=device),
                        torch.zeros(batch, dtype=torch.long, device=device), z(batch), z(batch, 3), z(batch), z(batch),
                        torch.zeros(batch, dtype=torch.long, device=device), z(batch), z(batch))

    def rows(self, idx: torch.Tensor | list[int]) -> EnvState:
        """The envs idx as a record of their own."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.x.device)
        return EnvState(**{f.name: (v[:, idx].contiguous() if f.name in self.SOA else v[idx].clone())
                           for f in fields(self) for v in (getattr(self, f.name),)})

    def with_rows(self, idx: torch.Tensor | None, new: EnvState) -> EnvState:
        """This record with envs idx (all when None) replaced by `new` (len(idx) envs)."""
        if idx is None:
            return new
        out = {}
        for f in fields(self):
            cur, val = getattr(self, f.name), getattr(new, f.name)
            cur = cur.clone()
            if f.name in self.SOA:
                cur[:, idx] = val
            else:
                cur[idx] = val
            out[f.name] = cur
        return EnvState(**out)




@dataclass(frozen=True)
class StepOutputs:
    reward: torch.Tensor  # (B,) the step's reward (spec 4.5)
    terminated: torch.Tensor  # (B,) bool, of the post-step state
    observation: torch.Tensor  # (B, D) of the post-step state, with observation noise where configured


@dataclass(frozen=True)
class Physics:
    """The physics engine as a value: `integrate(params, x (B, 17), command (B, 4), force_w (B, 3) N world,
    torque_b (B, 3) N m body) -> x'` (the reference RK4, MuJoCo), or `fused(constants, ...)`, the compiled fused
    transition of raptor.sim.fused over its packed per-env constants."""

    name: str = "reference"
    integrate: Callable = dynamics.integrate
    fused: Callable | None = None
    constants: torch.Tensor | None = None


def figure_eight(t_s: torch.Tensor, radius_m: float, period_s: float) -> torch.Tensor:
    """Lemniscate target (B, 6) = (p_des, v_des) world at times t_s (B,), centred at the origin, z = 0."""
    w = 2 * math.pi / period_s
    s, c = torch.sin(w * t_s), torch.cos(w * t_s)
    s2, c2 = torch.sin(2 * w * t_s), torch.cos(2 * w * t_s)
    z = torch.zeros_like(t_s)
    return torch.stack([radius_m * s, radius_m * s2 / 2, z, radius_m * w * c, radius_m * w * c2, z], -1)


def target(params: AirframeBatch, config: EnvConfig, s: EnvState, steps: torch.Tensor | None = None) -> torch.Tensor:
    """The target (B, 6) = (p_des, v_des) world after `steps` (default: the current step count)."""
    steps = s.steps if steps is None else steps
    mode = config.target
    dtype = s.x.dtype
    if mode == "figure_eight":
        return figure_eight(steps.to(dtype) * params.dt, config.figure_eight_radius_m, config.figure_eight_period_s)
    if mode == "hover":
        return torch.zeros((s.batch_size, 6), dtype=dtype, device=s.x.device)
    if mode == "step":
        after = (steps.to(dtype) * params.dt >= s.step_time)[:, None]
        p = torch.where(after, s.step_offset, torch.zeros_like(s.step_offset))
        return torch.cat([p, torch.zeros_like(p)], -1)
    if mode == "mixed":  # each episode its own kind: hover, Langevin, a figure-eight of its own size, a step
        t = steps.to(dtype) * params.dt
        eight = figure_eight(t, s.eight_radius, s.eight_period.clamp_min(1e-3))
        after = (t >= s.step_time)[:, None]
        jump = torch.where(after, s.step_offset, torch.zeros_like(s.step_offset))
        jump = torch.cat([jump, torch.zeros_like(jump)], -1)
        k = s.kind[:, None]
        zero = torch.zeros_like(eight)
        langevin = s.target_state.t()[:, LANGEVIN_SMOOTH]
        return torch.where(k == 1, langevin, torch.where(k == 2, eight, torch.where(k == 3, jump, zero)))
    tgt = s.target_state.t()[:, LANGEVIN_SMOOTH]
    return torch.where(s.langevin[:, None], tgt, torch.zeros_like(tgt))


def figure_eight_acceleration(t_s: torch.Tensor, radius_m, period_s) -> torch.Tensor:
    """(B, 3) m/s^2 world: the second derivative of figure_eight's position at times t_s (B,)."""
    w = 2 * math.pi / period_s
    ax = -radius_m * w * w * torch.sin(w * t_s)
    ay = -2 * radius_m * w * w * torch.sin(2 * w * t_s)
    return torch.stack([ax, ay, torch.zeros_like(ax)], -1)


def target_acceleration(params: AirframeBatch, config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(B, 3) m/s^2 world: the target's acceleration now (0 for hover and between setpoint steps; the Langevin
    process's smoothed acceleration alpha (v_raw - v_s) / dt). Relative to a target that accelerates by a_des the
    vehicle feels a push -m a_des: what a privileged teacher is shown with EnvConfig.privileged_target_acceleration
    (a memoryless teacher otherwise lags a moving target)."""
    dtype = s.x.dtype
    zero = torch.zeros((s.batch_size, 3), dtype=dtype, device=s.x.device)
    t = s.steps.to(dtype) * params.dt

    def langevin() -> torch.Tensor:
        ts = s.target_state.t()
        return config.langevin.alpha * (ts[:, LANGEVIN_RAW_V] - ts[:, LANGEVIN_SMOOTH_V]) / params.dt[:, None]

    if config.target == "figure_eight":
        return figure_eight_acceleration(t, config.figure_eight_radius_m, config.figure_eight_period_s)
    if config.target in ("airframe", "langevin"):
        return torch.where(s.langevin[:, None], langevin(), zero)
    if config.target == "mixed":
        eight = figure_eight_acceleration(t, s.eight_radius, s.eight_period.clamp_min(1e-3))
        k = s.kind[:, None]
        return torch.where(k == 1, langevin(), torch.where(k == 2, eight, zero))
    return zero


def target_push(params: AirframeBatch, config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(B, 3) N world: -m a_des, the push a target accelerating by a_des exerts on the vehicle in its frame."""
    return -params.mass[:, None] * target_acceleration(params, config, s)


def felt_force(params: AirframeBatch, config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(B, 3) N world: the external force as the privileged observation shows it: the disturbance, plus the target's
    push where EnvConfig.privileged_target_acceleration is set."""
    f = external_force(config, s).t()
    return f + target_push(params, config, s) if config.privileged_target_acceleration else f


def weight_n(params: AirframeBatch) -> torch.Tensor:
    """(B,) N: m |g|."""
    return params.mass * torch.linalg.vector_norm(params.gravity, dim=-1)


def target_yaw(params: AirframeBatch, config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(B,) rad about world z (FLU): the yaw setpoint; 0 unless the config has a yaw target."""
    if not config.has_yaw_target:
        return torch.zeros(s.batch_size, dtype=s.x.dtype, device=s.x.device)
    after = s.steps.to(s.x.dtype) * params.dt >= s.yaw_step_time
    return torch.where(after, s.yaw_step, torch.zeros_like(s.yaw_step))


def step_times(config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(B,) s: the last setpoint step time of each episode (target "step"; the yaw step's too), else 0."""
    if config.target != "step":
        return torch.zeros(s.batch_size, dtype=s.x.dtype, device=s.x.device)
    return torch.maximum(s.step_time, s.yaw_step_time) if config.has_yaw_target else s.step_time


def external_force(config: EnvConfig, s: EnvState) -> torch.Tensor:
    """(3, B) N world: the episode's constant disturbance force plus the gust, if any."""
    return s.force + s.gust if config.disturbance.gust_fraction > 0 else s.force


def add_noise(config: EnvConfig, obs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    noise = config.observation_noise
    if not noise.enabled:
        return obs
    std = torch.zeros(obs.shape[-1], dtype=obs.dtype, device=obs.device)
    std[OBS_P], std[OBS_R], std[OBS_V], std[OBS_W] = (noise.position, noise.orientation,
                                                   noise.linear_velocity, noise.angular_velocity)
    return obs + std * torch.randn(obs.shape, generator=gen, device=obs.device, dtype=obs.dtype)


def observe(params: AirframeBatch, config: EnvConfig, s: EnvState, gen: torch.Generator) -> torch.Tensor:
    """Observation (B, D) of the current state: student (22), teacher (26) or privileged teacher (29)."""
    tgt = target(params, config, s)
    if config.observation == "teacher":
        obs = mdp.observe_teacher(params, s.state, s.prev_action_obs.t(), tgt)
    elif config.observation == "privileged":
        obs = mdp.observe_privileged(params, s.state, s.prev_action_obs.t(), tgt, felt_force(params, config, s))
    else:
        obs = mdp.observe_student(s.state, s.prev_action_obs.t(), tgt if config.student_target_relative else None)
    return add_noise(config, obs, gen)


def new_episodes(params: AirframeBatch, config: EnvConfig, gen: torch.Generator) -> EnvState:
    """New episodes for the envs of `params` (B rows): initial state, disturbances, target process and setpoint
    steps, drawn from `gen` in the reference's order (initial state first)."""
    x, force, torque = mdp.sample_initial_state(params, gen, config.init)
    dev, dtype, n = x.device, x.dtype, params.batch_size
    weight = weight_n(params)[:, None]  # (B, 1) N
    d = config.disturbance
    if not d.airframe_force:
        force = torch.zeros_like(force)
    if d.constant_force_fraction > 0:
        force = force + d.constant_force_fraction * weight * torch.randn(force.shape, generator=gen, device=dev,
                                                                         dtype=dtype)
    gust = torch.zeros_like(force)
    if d.gust_fraction > 0:
        gust = d.gust_fraction * weight * torch.randn(force.shape, generator=gen, device=dev, dtype=dtype)
    u = torch.rand(n, generator=gen, device=dev, dtype=dtype)
    if config.target == "airframe":
        langevin = u < params.langevin_fraction
    else:
        langevin = torch.full_like(u, config.target == "langevin", dtype=torch.bool)
    z = EnvState.zeros(n, dtype, dev)
    step_time, step_offset, yaw_step_time, yaw_step = z.step_time, z.step_offset, z.yaw_step_time, z.yaw_step
    if config.target in ("step", "mixed"):
        lo, hi = config.step_time_s
        step_time = lo + (hi - lo) * torch.rand(n, generator=gen, device=dev, dtype=dtype)
        dirs = torch.randn((n, 3), generator=gen, device=dev, dtype=dtype)
        step_offset = config.step_size_m * dirs / torch.linalg.vector_norm(dirs, dim=-1, keepdim=True).clamp_min(1e-9)
        if config.has_yaw_target:  # drawn after the position step: its draws are unchanged
            yaw_step_time = lo + (hi - lo) * torch.rand(n, generator=gen, device=dev, dtype=dtype)
            yaw_step = config.step_yaw_rad * (2 * torch.rand(n, generator=gen, device=dev, dtype=dtype) - 1)
    kind, eight_radius, eight_period = z.kind, z.eight_radius, z.eight_period
    if config.target == "mixed":  # drawn last: the other modes' draws are unchanged
        codes = torch.tensor([MIXED_KINDS.index(k) for k in config.mixed_targets], device=dev)
        kind = codes[torch.randint(len(codes), (n,), generator=gen, device=dev)]
        u = torch.rand((n, 2), generator=gen, device=dev, dtype=dtype)
        (r0, r1), (p0, p1) = config.figure_eight_radius_range_m, config.figure_eight_period_range_s
        eight_radius, eight_period = r0 + (r1 - r0) * u[:, 0], p0 + (p1 - p0) * u[:, 1]
        langevin = kind == MIXED_KINDS.index("langevin")
    return EnvState(x.t().contiguous(), force.t().contiguous(), torque.t().contiguous(), gust.t().contiguous(),
                    z.last_action, mdp.normalized_motors(params, x[:, M]).t().contiguous(), z.target_state,
                    langevin, z.steps, step_time, step_offset, yaw_step_time, yaw_step, kind, eight_radius,
                    eight_period)


def restart(params: AirframeBatch, s: EnvState, x: torch.Tensor, force: torch.Tensor,
            torque: torch.Tensor) -> EnvState:
    """Episodes of `s` started again from given states x (B, 17), force (B, 3) N world, torque (B, 3) N m body, with
    the reference's reset semantics (previous-action observation = the normalized motors, last action 0, no gust,
    the target process at the origin); the episodes' targets and setpoint steps are kept."""
    z = EnvState.zeros(s.batch_size, s.x.dtype, s.x.device)
    return dataclasses.replace(s, x=x.t().contiguous(), force=force.t().contiguous(), torque=torque.t().contiguous(),
                               gust=z.gust, last_action=z.last_action,
                               prev_action_obs=mdp.normalized_motors(params, x[:, M]).t().contiguous(),
                               target_state=z.target_state, langevin=s.langevin.clone(), steps=z.steps)


def transition(params: AirframeBatch, reward_cfg: mdp.RewardConfig, observation: str, state: torch.Tensor,
               action: torch.Tensor, last_action: torch.Tensor, force_w: torch.Tensor, torque_b: torch.Tensor,
               target: torch.Tensor, next_target: torch.Tensor | None, integrate=dynamics.integrate,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The MDP's transition over a physics engine `integrate(params, x, command, force_w, torque_b)`.

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


def step(params: AirframeBatch, config: EnvConfig, s: EnvState, action: torch.Tensor, gen: torch.Generator,
         physics: Physics = Physics()) -> tuple[EnvState, StepOutputs]:
    """One env step of every env, no autoreset: action (B, 4) in [-1, 1] (checked by the caller)."""
    relative = config.teacher_observation or config.student_target_relative
    tgt = target(params, config, s)
    target_state = s.target_state
    if config.target in ("airframe", "langevin", "mixed"):
        target_state = mdp.langevin_step(target_state.t(), params.dt, gen, config.langevin).t().contiguous()
    moved = dataclasses.replace(s, target_state=target_state)
    next_tgt = target(params, config, moved, s.steps + 1)
    force = external_force(config, s)
    a_soa = action.t().contiguous()
    if physics.fused is not None:
        x, rew, term, obs = physics.fused(physics.constants, s.x, a_soa, s.last_action, force, s.torque,
                                          tgt.t().contiguous(), next_tgt.t().contiguous())
        obs = obs.t()
    else:
        nxt, rew, term, obs = transition(params, config.reward, config.observation, s.state, action,
                                         s.last_action.t(), force.t(), s.torque.t(), tgt,
                                         next_tgt if relative else None, physics.integrate)
        x = nxt.t().contiguous()
    gust = s.gust
    d = config.disturbance
    if d.gust_fraction > 0:
        a = torch.exp(-params.dt / d.gust_time_constant_s)
        sigma = d.gust_fraction * weight_n(params) * torch.sqrt(1 - a * a)
        gust = a * gust + sigma * torch.randn(gust.shape, generator=gen, device=gust.device, dtype=gust.dtype)
    new = dataclasses.replace(s, x=x, gust=gust, last_action=a_soa, prev_action_obs=a_soa, target_state=target_state,
                              steps=s.steps + 1)
    if config.observation == "privileged" and config.privileged_target_acceleration:  # the target's push, felt
        push = target_push(params, config, new) / weight_n(params)[:, None]  # in g, as the force channel
        obs = torch.cat([obs[:, :OBS_FORCE.start], obs[:, OBS_FORCE] + push, obs[:, OBS_FORCE.stop:]], -1)
    return new, StepOutputs(rew, term, add_noise(config, obs, gen))
