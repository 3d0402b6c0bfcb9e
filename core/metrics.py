"""The one metrics module: per-episode success, termination, final error, settling time, RMS tracking error and
return, from recorded trajectories or streamed on the device while flying; their aggregates per airframe.

Success: not terminated and within SUCCESS_RADIUS_M of the target for the whole last second (SUCCESS_WINDOW_STEPS);
where the target has a yaw setpoint also within SUCCESS_YAW_RAD of it; where the record names a judging window
(`Rollouts.judge_from`, scenario step: STEP_SETTLE_S after the last setpoint step) over that window instead. Settling
time: the first time after which the error stays within the radius. `raptor eval`, teacher selection, distillation,
HIL and the SITL bridges report these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from raptor.conventions import DT_NATIVE_S, Q
from raptor.geometry import yaw

SUCCESS_RADIUS_M = 0.1
SUCCESS_WINDOW_STEPS = 100  # the last second
SUCCESS_YAW_RAD = math.radians(10.0)  # where the target has a yaw setpoint (scenario step)
STEP_SETTLE_S = 2.0  # target "step": judged from this long after the last setpoint step


@dataclass
class Rollouts:
    """Per-episode records of one evaluation (E = airframes x episodes, T steps).

    `rollout(..., trajectories=False)` keeps no trajectories (position, target, position_error are None): its
    per-episode metrics are accumulated on the device while it flies (`streamed`, the same definitions as
    episode_metrics, pinned by a test), so K = 1000 teachers x 500 episodes never leave the GPU."""

    airframe_names: list[str]
    airframe_index: np.ndarray  # (E,)
    position: np.ndarray | None  # (T + 1, E, 3) m world
    target: np.ndarray | None  # (T + 1, E, 3) m world
    position_error: np.ndarray | None  # (T + 1, E) m
    terminated: np.ndarray  # (E,) bool
    first_termination: np.ndarray  # (E,) step index, -1 if never
    returns: np.ndarray  # (E,)
    action_change: np.ndarray  # (E,) mean |a_t - a_{t-1}| per step and motor
    dt_s: float
    force: np.ndarray | None = None  # (E, 3) N world, each episode's constant disturbance force (our simulator)
    streamed: dict[str, np.ndarray] | None = None  # episode_metrics' arrays, accumulated while flying
    second_half_error: np.ndarray | None = None  # (E, 3) m world, mean p - p_des over steps (T + 1) // 2 .. T
    heading_error: np.ndarray | None = None  # (T + 1, E) rad, |yaw - yaw setpoint| where the target has a yaw
    judge_from: np.ndarray | None = None  # (E,) first step of the success window (None: the last second)


class MetricStream:
    """episode_metrics' per-episode quantities, accumulated step by step on the device in float64 (no trajectory
    is kept). Step index s = 0 .. T (s = 0: the start); an episode's steps count for the RMS error up to and
    including the step on which it terminated, as in episode_metrics."""

    def __init__(self, E: int, T: int, device, judge_from: torch.Tensor | None = None) -> None:
        self.T1 = T + 1
        self.half = self.T1 // 2
        self.judge_from = judge_from  # (E,) long, or None: the last second
        z = torch.zeros(E, dtype=torch.float64, device=device)
        self.last_out = torch.full((E,), -1, dtype=torch.long, device=device)  # last step outside the radius
        self.sq, self.count, self.final = z.clone(), z.clone(), z.clone()
        self.tail = torch.zeros(E, 3, dtype=torch.float64, device=device)

    def add(self, s: int, p: torch.Tensor, g: torch.Tensor, alive_after: torch.Tensor,
            heading_err: torch.Tensor | None = None) -> None:
        d = p.double() - g.double()
        err = torch.linalg.vector_norm(d, dim=-1)
        out = err >= SUCCESS_RADIUS_M
        if heading_err is not None:
            out = out | (heading_err >= SUCCESS_YAW_RAD)
        self.last_out = torch.where(out, torch.full_like(self.last_out, s), self.last_out)
        counted = alive_after if s > 0 else torch.ones_like(alive_after)
        self.sq += torch.where(counted, err * err, 0.0)
        self.count += counted.double()
        if s >= self.half:
            self.tail += d
        if s == self.T1 - 1:
            self.final = err

    def result(self, r: Rollouts) -> tuple[dict[str, np.ndarray], np.ndarray]:
        last_out = self.last_out.cpu().numpy()
        term = r.terminated
        judge = (max(self.T1 - SUCCESS_WINDOW_STEPS, 0) if self.judge_from is None
                 else self.judge_from.cpu().numpy())
        success = ~term & (last_out < judge)
        settled = ~term & (last_out < self.T1 - 1)
        m = {"success": success, "terminated": term, "final_position_error": np.where(term, np.nan,
                                                                                       self.final.cpu().numpy()),
             "settling_time_s": np.where(settled, (last_out + 1) * r.dt_s, np.nan),
             "rms_tracking_error": np.sqrt(self.sq.cpu().numpy() / self.count.cpu().numpy()),
             "return": r.returns, "action_change": r.action_change}
        return m, (self.tail / (self.T1 - self.half)).cpu().numpy()


def heading_error(state: torch.Tensor, yaw_setpoint: torch.Tensor) -> torch.Tensor:
    """(B,) rad in [0, pi]: the angle between the body x axis's heading (state (B, 17)) and the yaw setpoint (B,)."""
    d = yaw(state[:, Q].double()) - yaw_setpoint.double()
    return torch.atan2(torch.sin(d), torch.cos(d)).abs()


def episode_metrics(r: Rollouts) -> dict[str, np.ndarray]:
    """Per-episode success, termination, final error, settling time, RMS error, return and action change: from the
    trajectories where the record has them, else the same quantities streamed while flying (rollout)."""
    if r.position_error is None:
        if r.streamed is None:
            raise ValueError("this Rollouts record has neither trajectories nor streamed metrics")
        return r.streamed
    err = r.position_error  # (T + 1, E)
    T1, E = err.shape
    steps = np.arange(T1)[:, None]
    alive_mask = (r.first_termination[None, :] < 0) | (steps <= r.first_termination[None, :])
    within = err < SUCCESS_RADIUS_M
    if r.heading_error is not None:
        within = within & (r.heading_error < SUCCESS_YAW_RAD)
    # settling: first step after which the error stays within the radius (survivors only)
    outside = ~within
    last_out = np.where(outside.any(0), T1 - 1 - np.argmax(outside[::-1], axis=0), -1)
    judge = max(T1 - SUCCESS_WINDOW_STEPS, 0) if r.judge_from is None else r.judge_from
    success = ~r.terminated & (last_out < judge)
    settled = ~r.terminated & (last_out < T1 - 1)
    settling = np.where(settled, (last_out + 1) * r.dt_s, np.nan)
    rms = np.sqrt((np.where(alive_mask, err, 0.0) ** 2).sum(0) / alive_mask.sum(0))
    final = np.where(r.terminated, np.nan, err[-1])
    return {"success": success, "terminated": r.terminated, "final_position_error": final,
            "settling_time_s": settling, "rms_tracking_error": rms, "return": r.returns,
            "action_change": r.action_change}


def aggregate(m: dict[str, np.ndarray], sel: np.ndarray) -> dict:
    def nanmean(x):
        x = x[sel]
        return float(np.nanmean(x)) if np.isfinite(x).any() else None

    def nanmedian(x):
        x = x[sel]
        return float(np.nanmedian(x)) if np.isfinite(x).any() else None

    return {
        "episodes": int(sel.sum()),
        "success_rate": float(m["success"][sel].mean()),
        "termination_rate": float(m["terminated"][sel].mean()),
        "final_position_error_mean": nanmean(m["final_position_error"]),
        "final_position_error_median": nanmedian(m["final_position_error"]),
        "settling_time_mean_s": nanmean(m["settling_time_s"]),
        "rms_tracking_error_mean": float(m["rms_tracking_error"][sel].mean()),
        "mean_return": float(m["return"][sel].mean()),
        "mean_action_change": float(m["action_change"][sel].mean()),
    }


def summarize(r: Rollouts) -> dict:
    m = episode_metrics(r)
    per = {}
    for i, name in enumerate(r.airframe_names):
        key = name if name not in per else f"{name}#{i}"
        if (r.airframe_index == i).any():  # (a partial HIL run may have none of an airframe's episodes)
            per[key] = aggregate(m, r.airframe_index == i)
    return {"overall": aggregate(m, np.ones_like(m["success"], dtype=bool)), "per_airframe": per}


def judge_timed(t_s: np.ndarray, error_m: np.ndarray, terminated: bool, episode_s: float) -> dict:
    """One episode sampled at irregular times (a SITL's telemetry: t_s (N,) s from its start, error_m (N,) m), judged
    as episode_metrics judges a 100 Hz record: success = not terminated and within SUCCESS_RADIUS_M at every sample
    of the last second (SUCCESS_WINDOW_STEPS * DT_NATIVE_S) before episode_s; settling_s = the time of the first
    sample after which the error stays within the radius (None if it never does); final and RMS error."""
    t, e = np.asarray(t_s, dtype=np.float64), np.asarray(error_m, dtype=np.float64)
    if not len(e):
        return {"success": False, "settling_s": None, "final": 1e9, "rms": 1e9}
    last = t >= episode_s - SUCCESS_WINDOW_STEPS * DT_NATIVE_S
    outside = np.flatnonzero(e >= SUCCESS_RADIUS_M)
    first_inside = 0 if not len(outside) else outside[-1] + 1
    return {"success": bool(not terminated and last.any() and (e[last] < SUCCESS_RADIUS_M).all()),
            "settling_s": float(t[first_inside]) if first_inside < len(t) else None,
            "final": float(e[-1]), "rms": float(np.sqrt((e ** 2).mean()))}


def success_in_envelope(metrics: dict) -> tuple[float, int] | None:
    """(success rate, episodes) over the airframes without an envelope note (inside the training envelope), or None
    where every airframe has one; the overall figure where none has."""
    inside = [v for v in metrics["per_airframe"].values() if not v.get("envelope_note")]
    eps = sum(v["episodes"] for v in inside)
    return (sum(v["success_rate"] * v["episodes"] for v in inside) / eps, eps) if eps else None


def markdown_table(metrics: dict, title: str = "") -> str:
    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    rows = [f"### {title}" if title else "", "",
            "| airframe | episodes | success | terminated | final error mean / median [m] | settling [s] | "
            "RMS error [m] | mean return |", "|---|---|---|---|---|---|---|---|"]
    items = list(metrics["per_airframe"].items()) + [("**overall**", metrics["overall"])]
    for name, s in items:
        if s.get("envelope_note"):
            name = f"{name} (*)"
        rows.append(f"| {name} | {s['episodes']} | {100 * s['success_rate']:.1f}% | {100 * s['termination_rate']:.1f}% "
                    f"| {f(s['final_position_error_mean'], '.3f')} / {f(s['final_position_error_median'], '.3f')} "
                    f"| {f(s['settling_time_mean_s'], '.2f')} | {s['rms_tracking_error_mean']:.3f} "
                    f"| {s['mean_return']:.1f} |")
    notes = [f"(*) {k}: {v['envelope_note']}" for k, v in metrics["per_airframe"].items() if v.get("envelope_note")]
    if notes:
        inside = success_in_envelope(metrics)
        if inside is not None:
            notes.append(f"Success within the training envelope: {100 * inside[0]:.1f}% of {inside[1]} episodes.")
        rows += [""] + notes
    return "\n".join(rows).strip() + "\n"
