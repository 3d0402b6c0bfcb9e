"""The one episode loop: a policy flies a batched env for a number of steps and the loop returns the Rollouts record.

`raptor eval`, teacher evaluation and calibration, DAgger's data collection, the export's self-test flights, HIL
(the policy on a device) and the Betaflight SITL bridge (the policy inside Betaflight) all fly through
`run_episodes`; what differs between them is the policy and the hooks, not the loop.

The policy (the interface of `raptor.policy.Policy`):
- `reset(batch_size)`: new episodes in every env;
- `step(obs (B, D)[, yaw_setpoint=(B,) rad])` -> actions (B, 4) in [-1, 1], RAPTOR motor order; the yaw setpoint is
  passed where the env's target has one (scenario step) and `heading` is not False;
- optional `bind(env)`: called before `reset`, for remote policies that send more than the observation
  (the HIL device and Betaflight read the state's quaternion and the target-relative p, v);
- optional `dtype`: the dtype its inputs are cast to (else the env's).

The deployment rate: with `native_every = n` the env steps at n x 100 Hz (its dt 0.01 / n) and the policy is called
at every env step, as a flight controller calls it (the GRU advances at 100 Hz inside the policy). Metrics are
taken at the native 100 Hz instants (every n-th env step) and on the step an episode terminates: returns sum the
reward of those steps, the action change compares consecutive native actions.

Episodes that terminated get zero observations and their actions are replaced by zeros (the env keeps stepping
them in the batch); their recorded position stays at the state on which they terminated. The loop ends early
when every episode has terminated.

Hooks: objects with any of
- `observe(t, env, obs, alive)`: before the policy's call at env step t (obs (B, D) as the env returned it);
- `after_step(t, env, action, reward, terminated, alive)`: after env step t (alive: after this step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from raptor.conventions import TARGET_P, P
from raptor.metrics import STEP_SETTLE_S, MetricStream, Rollouts, heading_error


def judge_window(env, steps: int, native_every: int = 1) -> torch.Tensor | None:
    """(B,) long: the first native step of each episode's success window where the target steps (scenario step:
    STEP_SETTLE_S after its last setpoint step), else None (the last second)."""
    if env.config.target != "step":
        return None
    dt = float(env.params.dt[0]) * native_every  # s per native step
    return torch.ceil((env.step_times().double() + STEP_SETTLE_S) / dt - 1e-9).long().clamp(max=steps)


def run_episodes(policy, env, steps: int, *, hooks: Sequence = (), native_every: int = 1, reset: bool = True,
                 seed: int | None = None, heading: bool | None = None, trajectories: bool = True,
                 airframe_names: Sequence[str] | None = None, progress: str | None = None) -> Rollouts:
    """Fly `policy` in every env of `env` (raptor.sim.env.BatchedQuadrotorEnv or the MuJoCo envs) for `steps` native
    steps (100 Hz) and return the per-episode record, metrics as raptor.metrics defines them.

    reset: start the episodes with env.reset(seed) (False: the env's current state, e.g. set with env.set_state);
    heading: pass the env's yaw setpoint to the policy and judge the heading (None: where the target has one);
    trajectories: keep positions and targets (T + 1, E, 3) (False: per-episode metrics streamed on the device);
    progress: a tqdm label, or None for no progress bar."""
    if native_every < 1:
        raise ValueError(f"native_every must be >= 1, got {native_every}")
    obs = (env.reset() if seed is None else env.reset(seed=seed)) if reset else env.observe()
    E, T, n = env.num_envs, steps, native_every
    dev = env.device
    force = env.force.detach().cpu().double().numpy().copy() if hasattr(env, "force") else None
    has_yaw = env.config.has_yaw_target if heading is None else bool(heading) and env.config.has_yaw_target
    has_acc = (getattr(policy, "accepts_acceleration", False) and getattr(policy, "lead", None) is not None
               and env.config.has_moving_target)
    judge = judge_window(env, T, n)
    acc = MetricStream(E, T, dev, judge)
    pos, tgt, head = [], [], []
    if hasattr(policy, "bind"):
        policy.bind(env)
    policy.reset(E)
    dtype = getattr(policy, "dtype", None)
    observers = [h.observe for h in hooks if hasattr(h, "observe")]
    after = [h.after_step for h in hooks if hasattr(h, "after_step")]

    alive = torch.ones(E, dtype=torch.bool, device=dev)
    p_rec = env.state[:, P].clone()  # the recorded position: frozen at the terminal state

    def record(s: int, alive_now: torch.Tensor) -> None:  # native step s (0: the start)
        g = env.target()[:, TARGET_P]
        he = heading_error(env.state, env.target_yaw()) if has_yaw else None
        acc.add(s, p_rec, g, alive_now, he)
        if trajectories:
            pos.append(p_rec.detach().clone())
            tgt.append(g.detach().clone())
            if he is not None:
                head.append(he.detach().clone())

    first_term = torch.full((E,), -1, dtype=torch.long, device=dev)
    ret = torch.zeros(E, dtype=torch.float64, device=dev)
    dact = torch.zeros(E, dtype=torch.float64, device=dev)
    record(0, alive)
    prev_a = None
    iterator = range(T)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=progress, unit="step", leave=False)
    k = 0  # env steps taken
    t_end = T
    for t in iterator:
        for j in range(n):
            for f in observers:
                f(k, env, obs, alive)
            x = torch.where(alive[:, None], obs, torch.zeros_like(obs))  # finished episodes: inputs ignored
            if dtype is not None:
                x = x.to(dtype)
            kw = {}
            if has_yaw:  # the yaw setpoint reaches the policy (a policy with a heading governor turns to it)
                ys = env.target_yaw()
                kw["yaw_setpoint"] = ys if dtype is None else ys.to(dtype)
            if has_acc:  # the setpoint's acceleration, for a policy that leads its position error with it
                kw["acceleration_setpoint"] = env.target_acceleration().to(x.dtype)
            a = policy.step(x, **kw)
            a = torch.as_tensor(a, device=dev).to(env.state.dtype)
            a = torch.where(alive[:, None], a, torch.zeros_like(a))
            boundary = j == n - 1
            if boundary:
                if prev_a is not None:
                    dact += torch.where(alive, (a - prev_a).abs().mean(-1).double(), 0.0)
                prev_a = a
            rew, term, obs = env.physics_step(a)
            newly = term & alive
            ret += torch.where(alive if boundary else newly, rew.double(), 0.0)
            first_term = torch.where(newly, torch.full_like(first_term, t), first_term)
            p_rec = torch.where(alive[:, None], env.state[:, P], p_rec)
            alive = alive & ~term
            for f in after:
                f(k, env, a, rew, term, alive)
            k += 1
            if n > 1 and not bool(alive.any()):
                break
        record(t + 1, alive)
        if (E <= 64 or t % 25 == 24) and not bool(alive.any()):  # (a host sync: not every step of a big batch)
            t_end = t + 1
            break
    for s in range(t_end + 1, T + 1):  # every episode ended: the rest of the record stays where they ended
        record(s, alive)
    ft = first_term.cpu().numpy()
    n_steps = np.where(ft < 0, T, ft + 1)
    position = target = error = None
    if trajectories:
        position = torch.stack(pos).cpu().double().numpy()
        target = torch.stack(tgt).cpu().double().numpy()
        error = np.linalg.norm(position - target, axis=-1)
    names = list(airframe_names) if airframe_names is not None else [a.name for a in env.airframes]
    r = Rollouts(
        airframe_names=names, airframe_index=env.airframe_index.cpu().numpy(),
        position=position, target=target, position_error=error,
        terminated=ft >= 0, first_termination=ft, returns=ret.cpu().numpy(),
        action_change=dact.cpu().numpy() / np.maximum(n_steps - 1, 1), dt_s=float(env.params.dt[0]) * n,
        force=force, heading_error=torch.stack(head).cpu().double().numpy() if head else None,
        judge_from=None if judge is None else judge.cpu().numpy())
    r.streamed, r.second_half_error = acc.result(r)
    return r


def concatenate(records: Sequence[Rollouts]) -> Rollouts:
    """One record of the episodes of several (the same airframes and T; episode-by-episode runs such as HIL)."""
    if not records:
        raise ValueError("no records to concatenate")
    first = records[0]

    def cat(name: str, axis: int):
        parts = [getattr(r, name) for r in records]
        return None if any(p is None for p in parts) else np.concatenate(parts, axis=axis)

    streamed = None
    if all(r.streamed is not None for r in records):
        streamed = {k: np.concatenate([r.streamed[k] for r in records]) for k in first.streamed}
    return Rollouts(first.airframe_names, cat("airframe_index", 0), cat("position", 1), cat("target", 1),
                    cat("position_error", 1), cat("terminated", 0), cat("first_termination", 0), cat("returns", 0),
                    cat("action_change", 0), first.dt_s, cat("force", 0), streamed, cat("second_half_error", 0),
                    cat("heading_error", 1), cat("judge_from", 0))
