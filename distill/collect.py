"""Distillation data: labelled episodes, each visited state labelled by its airframe's teacher (the hand-off of
raptor.rl, raptor.rl.teachers.TeacherSet), the teacher flying for behaviour cloning, the student for DAgger, through
the one episode loop (raptor.runtime.run_episodes)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raptor.conventions import OBS_FORCE, OBS_P, TARGET_P, P
from raptor.metrics import episode_metrics
from raptor.policy.feedforward import SetpointLead
from raptor.policy.network import RaptorPolicyNet
from raptor.rl.teachers import TeacherSet
from raptor.runtime import run_episodes
from raptor.sim import mdp
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.functional import target_push


@dataclass
class Dataset:
    student_obs: torch.Tensor  # (T, E, 22) position corrected by the teacher's offset
    labels: torch.Tensor  # (T, E, 4) teacher actions
    mask: torch.Tensor  # (T, E) bool, steps before termination
    returns: torch.Tensor  # (E,) RAPTOR reward of the flying policy
    terminated: torch.Tensor  # (E,) bool
    final_position: torch.Tensor  # (250, E, 3) positions over steps 250-499 (offset estimate)
    disturbance: torch.Tensor  # (E, 3) the episode's constant disturbance force in g (f / (m |g|)), world frame
    success: torch.Tensor  # (E,) bool, raptor.metrics' success of the flying policy (streamed by run_episodes)

    def failed(self) -> torch.Tensor:
        """(E,) bool: the episode did not succeed as raptor.metrics judges it."""
        return ~self.success


class Labeller:
    """A run_episodes hook that labels every visited state with its airframe's teacher action (from the privileged
    teacher observation of that state) and records the student's view of it; as a policy, the teacher flying (BC)."""

    def __init__(self, env: BatchedQuadrotorEnv, teachers: TeacherSet, T: int, offsets: torch.Tensor | None,
                 feedforward: bool = True, lead: SetpointLead | None = None) -> None:
        B, dev, dt = env.num_envs, env.device, env.state.dtype
        self.feedforward = feedforward  # label with the target's acceleration felt as a push (lag-free tracking)
        self.lead = lead if env.config.has_moving_target else None  # the student's input led as deployed
        self.teachers, self.T, self.K, self.M = teachers, T, teachers.K, B // teachers.K
        self.S = torch.zeros((T, B, 22), device=dev, dtype=dt)
        self.L = torch.zeros((T, B, 4), device=dev, dtype=dt)
        self.mask = torch.zeros((T, B), dtype=torch.bool, device=dev)
        self.final_pos = torch.zeros((max(T - T // 2, 1), B, 3), device=dev, dtype=dt)  # p - p_des
        self.off = None if offsets is None else offsets.repeat_interleave(self.M, 0)  # (B, 3)
        self.disturbance: torch.Tensor | None = None
        self.label: torch.Tensor | None = None

    def observe(self, t: int, env: BatchedQuadrotorEnv, obs: torch.Tensor, alive: torch.Tensor) -> None:
        target = env.target()  # (B, 6) p_des, v_des world: the teachers see the state relative to it
        force = env.external_force()  # (B, 3) N world
        if self.feedforward:  # a target accelerating by a_des pushes by -m a_des in its frame (0 for hover targets)
            force = force + target_push(env.params, env.config, env.s)
        t_obs = mdp.observe_privileged(env.params, env.state, env.prev_action_obs, target, force)
        if self.disturbance is None:
            self.disturbance = t_obs[:, OBS_FORCE].clone()
        self.label = self.teachers(t_obs.reshape(self.K, self.M, -1)).reshape(-1, 4)
        s_obs = obs.clone() if self.lead is None else self.lead.apply(obs, env.target_acceleration())
        if self.off is not None:
            s_obs[:, OBS_P] -= self.off
        self.S[t], self.L[t], self.mask[t] = torch.where(alive[:, None], s_obs, 0.0), self.label, alive

    def after_step(self, t, env, action, reward, terminated, alive) -> None:
        if t >= self.T // 2:
            self.final_pos[t - self.T // 2] = env.state[:, P] - env.target()[:, TARGET_P]

    def reset(self, batch_size: int) -> None:
        pass

    def step(self, obs: torch.Tensor) -> torch.Tensor:
        return self.label


class StudentPolicy:
    """The student network as a run_episodes policy (raw actions, the recurrent state from its learned h0), its
    position input led by the setpoint's acceleration where it has a lead (as raptor.policy.Policy flies it)."""

    accepts_acceleration = True

    def __init__(self, net: RaptorPolicyNet, lead: SetpointLead | None = None) -> None:
        self.net, self.lead, self.h = net, lead, None

    def reset(self, batch_size: int) -> None:
        self.h = self.net.initial_hidden(batch_size)

    def step(self, obs: torch.Tensor, acceleration_setpoint: torch.Tensor | None = None) -> torch.Tensor:
        if self.lead is not None:
            obs = self.lead.apply(obs, acceleration_setpoint)
        a, self.h = self.net.step(obs, self.h)
        return a


@torch.no_grad()
def collect(env: BatchedQuadrotorEnv, teachers: TeacherSet, student: RaptorPolicyNet | None, T: int,
            offsets: torch.Tensor | None, seed: int, feedforward: bool = True,
            lead: SetpointLead | None = None) -> Dataset:
    """Fly every airframe's episodes with the teacher (student None) or the student; label every state (feedforward:
    the teachers see the target's acceleration as a push, raptor.sim.functional.target_acceleration). lead: the
    student's position input is led by the target's acceleration (raptor.policy.feedforward), in the data and when
    it flies."""
    lab = Labeller(env, teachers, T, offsets, feedforward, lead)
    r = run_episodes(lab if student is None else StudentPolicy(student, lead), env, T, hooks=[lab], seed=seed,
                     heading=False, trajectories=False, airframe_names=[""] * env.num_airframes)
    dev = env.device
    return Dataset(lab.S, lab.L, lab.mask, torch.as_tensor(r.returns, device=dev),
                   torch.as_tensor(r.terminated, device=dev), lab.final_pos, lab.disturbance,
                   torch.as_tensor(episode_metrics(r)["success"], device=dev))
