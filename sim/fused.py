"""The fused env transition: dynamics, reward, termination and observation as one pointwise program.

Same mathematics as `raptor.sim.dynamics` + `raptor.sim.mdp` (pinned to them by tests/test_fused.py), written
over structure-of-arrays tensors: every quantity is a (B,) row, per-rotor sums are unrolled, and the per-env
constants (thrust polynomial, torque per newton of thrust r x d + k_q s, J, J_inv, ...) are packed once into a
(K, B) table. Under `torch.compile` this becomes a single vectorized loop over the batch; that is where the
simulator's speed comes from (see benchmarks/sim_throughput.py). Eagerly it is slow: use the reference path.

Layouts (SoA, batch last): state (17, B), action (4, B), force (3, B) N world, torque (3, B) N m body,
target (6, B) = (p_des, v_des) world; observation (D, B).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from raptor.conventions import M, P, Q, V, W
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.mdp import RewardConfig

Rows = list[torch.Tensor]


def pack_constants(p: AirframeBatch) -> tuple[torch.Tensor, dict[str, int]]:
    """(K, B) table of per-env constants and the row index of each name."""
    cols: dict[str, torch.Tensor] = {}
    per_newton = p.rotor_torque_constants[..., None] * p.rotor_torque_directions + torch.linalg.cross(
        p.rotor_positions, p.rotor_thrust_directions, dim=-1)  # (B, 4, 3) N m per N of thrust, body
    for i in range(4):
        for k in range(3):
            cols[f"c{i}{k}"] = p.rotor_thrust_coefficients[:, i, k]
            cols[f"d{i}{k}"] = p.rotor_thrust_directions[:, i, k]
            cols[f"t{i}{k}"] = per_newton[:, i, k]
        cols[f"rise{i}"] = p.tau_rise[:, i]
        cols[f"fall{i}"] = p.tau_fall[:, i]
    for a in range(3):
        for b in range(3):
            cols[f"J{a}{b}"] = p.J[:, a, b]
            cols[f"Ji{a}{b}"] = p.J_inv[:, a, b]
        cols[f"g{a}"] = p.gravity[:, a]
    cols.update(inv_mass=1 / p.mass, dt=p.dt, amin=p.action_min, amax=p.action_max, hover=p.hovering_throttle_relative,
                term_p=p.term_position, term_v=p.term_linear_velocity, term_w=p.term_angular_velocity,
                term_on=p.term_enabled.to(p.mass.dtype))
    names = list(cols)
    return torch.stack([cols[n] for n in names], 0).contiguous(), {n: i for i, n in enumerate(names)}


def make_transition(index: dict[str, int], reward_cfg: RewardConfig, observation: str,
                    relative: bool) -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The fused transition for a constants layout, reward weights and observation kind (compile-time constants).

    Returns f(C, x, a, last_a, force, torque, target, next_target) -> (next x (17, B), reward (B,),
    terminated (B,) bool, observation (D, B)).
    """

    def c(name: str, C: torch.Tensor) -> torch.Tensor:
        return C[index[name]]

    def derivative(C: torch.Tensor, s: Rows, u: Rows, fw: Rows, tb: Rows) -> Rows:
        qw, qx, qy, qz = s[Q]
        vx, vy, vz = s[V]
        wx, wy, wz = s[W]
        m = s[M]
        Fx = Fy = Fz = Tx = Ty = Tz = None
        dm = []
        for i in range(4):
            f = c(f"c{i}0", C) + c(f"c{i}1", C) * m[i] + c(f"c{i}2", C) * m[i] * m[i]
            terms = (f * c(f"d{i}0", C), f * c(f"d{i}1", C), f * c(f"d{i}2", C),
                     f * c(f"t{i}0", C), f * c(f"t{i}1", C), f * c(f"t{i}2", C))
            if Fx is None:
                Fx, Fy, Fz, Tx, Ty, Tz = terms
            else:
                Fx, Fy, Fz = Fx + terms[0], Fy + terms[1], Fz + terms[2]
                Tx, Ty, Tz = Tx + terms[3], Ty + terms[4], Tz + terms[5]
            tau = torch.where(u[i] >= m[i], c(f"rise{i}", C), c(f"fall{i}", C))
            dm.append((u[i] - m[i]) / tau)
        # R(q) F = F + 2 qw (u x F) + 2 u x (u x F), u = (qx, qy, qz); q not normalized inside RK4
        cx, cy, cz = qy * Fz - qz * Fy, qz * Fx - qx * Fz, qx * Fy - qy * Fx
        ccx, ccy, ccz = qy * cz - qz * cy, qz * cx - qx * cz, qx * cy - qy * cx
        im = c("inv_mass", C)
        ax = (Fx + 2 * qw * cx + 2 * ccx) * im + c("g0", C) + fw[0] * im
        ay = (Fy + 2 * qw * cy + 2 * ccy) * im + c("g1", C) + fw[1] * im
        az = (Fz + 2 * qw * cz + 2 * ccz) * im + c("g2", C) + fw[2] * im
        Jw = [c(f"J{r}0", C) * wx + c(f"J{r}1", C) * wy + c(f"J{r}2", C) * wz for r in range(3)]
        rx = Tx - (wy * Jw[2] - wz * Jw[1]) + tb[0]
        ry = Ty - (wz * Jw[0] - wx * Jw[2]) + tb[1]
        rz = Tz - (wx * Jw[1] - wy * Jw[0]) + tb[2]
        dw = [c(f"Ji{r}0", C) * rx + c(f"Ji{r}1", C) * ry + c(f"Ji{r}2", C) * rz for r in range(3)]
        dq = [-0.5 * (qx * wx + qy * wy + qz * wz), 0.5 * (qw * wx + qy * wz - qz * wy),
              0.5 * (qw * wy + qz * wx - qx * wz), 0.5 * (qw * wz + qx * wy - qy * wx)]
        return [vx, vy, vz, *dq, ax, ay, az, *dw, *dm]

    def rotation_rows(q: Rows) -> Rows:
        w, x, y, z = q
        return [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]

    def norm(rows: Rows) -> torch.Tensor:
        return torch.sqrt(sum(r * r for r in rows))

    cfg = reward_cfg

    def transition(C, x, a, last_a, force, torque, target, next_target):
        s, act, la = list(x.unbind(0)), list(a.unbind(0)), list(last_a.unbind(0))
        fw, tb = list(force.unbind(0)), list(torque.unbind(0))
        lo, hi = c("amin", C), c("amax", C)
        half = (hi - lo) / 2
        u = [act[i].clamp(-1.0, 1.0) * half + lo + half for i in range(4)]
        dt = c("dt", C)
        k1 = derivative(C, s, u, fw, tb)
        k2 = derivative(C, [si + 0.5 * dt * ki for si, ki in zip(s, k1)], u, fw, tb)
        k3 = derivative(C, [si + 0.5 * dt * ki for si, ki in zip(s, k2)], u, fw, tb)
        k4 = derivative(C, [si + dt * ki for si, ki in zip(s, k3)], u, fw, tb)
        n = [si + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4) for si, a1, a2, a3, a4 in zip(s, k1, k2, k3, k4)]
        qn = norm(n[Q])
        nxt = ([r.clamp(-1e5, 1e5) for r in n[P]] + [r / qn for r in n[Q]] + [r.clamp(-1e5, 1e5) for r in n[V]]
               + [r.clamp(-1e5, 1e5) for r in n[W]] + [torch.minimum(torch.maximum(r, lo), hi) for r in n[M]])

        # termination of the post-step state, per axis
        term = None
        for i, thr in ((0, "term_p"), (1, "term_p"), (2, "term_p"), (7, "term_v"), (8, "term_v"), (9, "term_v"),
                       (10, "term_w"), (11, "term_w"), (12, "term_w")):
            t = nxt[i].abs() > c(thr, C)
            term = t if term is None else term | t
        term = term & (c("term_on", C) > 0.5)

        # reward of the step, costs on the pre-step state (spec 4.5)
        tg = list(target.unbind(0))
        ep = [s[i] - tg[i] for i in range(3)]
        c_pos = norm(ep)
        if cfg.position_clip > 0:
            c_pos = c_pos.clamp(max=cfg.position_clip)
        if cfg.orientation_term == "yaw":
            c_ori = 2 * torch.acos((1 - s[6].abs()).clamp(-1.0, 1.0))
        else:
            c_ori = 2 * torch.acos(s[3].abs().clamp(-1.0, 1.0))
        cost = cfg.position * c_pos + cfg.orientation * c_ori + cfg.d_action * norm([act[i] - la[i] for i in range(4)])
        if cfg.linear_velocity:
            cost = cost + cfg.linear_velocity * norm([s[7 + i] - tg[3 + i] for i in range(3)])
        if cfg.angular_velocity:
            cost = cost + cfg.angular_velocity * norm(s[W])
        if cfg.linear_acceleration:
            cost = cost + cfg.linear_acceleration * norm([nxt[7 + i] - s[7 + i] for i in range(3)]) / dt
        if cfg.angular_acceleration:
            cost = cost + cfg.angular_acceleration * norm([nxt[10 + i] - s[10 + i] for i in range(3)]) / dt
        if cfg.action:
            cost = cost + cfg.action * sum(((act[i] + 1) / 2 - c("hover", C)) ** 2 for i in range(4))
        r = -cfg.scale * cost + cfg.constant
        if cfg.non_negative:
            r = r.clamp(min=0.0)
        r = torch.where(term, torch.full_like(r, cfg.termination_penalty), r)

        # observation of the post-step state
        p, v = nxt[P], nxt[V]
        if relative:
            nt = list(next_target.unbind(0))
            p = [p[i] - nt[i] for i in range(3)]
            v = [v[i] - nt[3 + i] for i in range(3)]
        obs = p + rotation_rows(nxt[Q]) + v + nxt[W] + act
        if observation in ("teacher", "privileged"):
            obs = obs + [2 * (nxt[13 + i] - lo) / (hi - lo) - 1 for i in range(4)]
        if observation == "privileged":  # external force in g: f / (m |g|)
            inv_weight = c("inv_mass", C) / norm([c(f"g{k}", C) for k in range(3)])
            obs = obs + [fw[k] * inv_weight for k in range(3)]
        return torch.stack(nxt, 0), r, term, torch.stack(obs, 0)

    return transition
