"""RAPTOR domain randomization (spec section 3), bit-exact with the reference C++ sampler.

The reference draws with `std::mt19937(seed + 1)`, fresh libstdc++ `uniform_real_distribution` /
`normal_distribution` objects per draw (53-bit `generate_canonical` from two 32-bit outputs; the polar method,
spare discarded), discards one airframe, and writes every number with 6 decimals (`std::to_string`). This module
emulates exactly that, so `sample_airframes(1000, seed=0)` gives the 1000 RAPTOR teacher airframes.

`latents` (the raw draws) and `derive_parameters` (latents -> parameters) are separate, so the derivation can be
checked against the reference given its draws.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from raptor.sim.airframe import Airframe, default_mdp, default_trajectory, named_airframe
from raptor.validate import check_seed


@dataclass(frozen=True)
class RandomizationRanges:
    """RAPTOR's ranges (spec 3.1)."""

    thrust_to_weight: tuple[float, float] = (1.5, 5.0)
    torque_to_inertia: tuple[float, float] = (40.0, 1200.0)  # rad/s^2
    mass: tuple[float, float] = (0.02, 5.0)  # kg
    mass_size_deviation: float = 0.1
    tau_rise: tuple[float, float] = (0.03, 0.10)  # s
    tau_fall: tuple[float, float] = (0.03, 0.30)  # s
    rotor_torque_constant: tuple[float, float] = (0.005, 0.05)  # m
    disturbance_force_max: float = 0.3  # multiple of surplus thrust-to-weight
    # None: the reference's disturbance (its std grows with thrust-to-weight, about t2w^2). A number: the disturbance
    # drawn as for an airframe of at most this thrust-to-weight, so its size relative to the weight stays in the
    # reference's envelope (the same draw from the random stream, only its bound and scale change).
    disturbance_t2w_cap: float | None = None

    def __post_init__(self) -> None:
        if self.disturbance_t2w_cap is not None and not self.disturbance_t2w_cap >= 1:
            raise ValueError(f"RandomizationRanges.disturbance_t2w_cap must be >= 1, got {self.disturbance_t2w_cap}")
        for name in ("thrust_to_weight", "torque_to_inertia", "mass", "tau_rise", "tau_fall", "rotor_torque_constant"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"RandomizationRanges.{name} must satisfy 0 < min <= max, got {(lo, hi)}")


# Race-class option (`sampled:N:SEED:race`, `raptor sample --race`): RAPTOR's ranges with thrust-to-weight extended to
# 12 (the flightmare model's 12.1), every other range unchanged. The default ranges stay bit-exact with the reference.
RACE_RANGES = RandomizationRanges(thrust_to_weight=(1.5, 12.0))

# Race class with race motors (`sampled:N:SEED:race-fast`, `raptor sample --race-fast`): what a high thrust-to-weight
# quad is physically. RACE_RANGES pairs thrust-to-weight 12 with RAPTOR's slow motors (spin-down up to 0.3 s) and a
# disturbance that grows with thrust-to-weight (std up to 1.3x the weight): on the every-task run's 64 race-class
# airframes no teacher above 6.4 passed the bar and the published policy terminated 70-100 % of the same starts;
# with the disturbance in the reference's envelope but slow spin-down (0.1-0.23 s) two of three still failed at
# 11.9, with 0.03 s one passed (training/every-task/README.md). Here: thrust-to-weight 4-12, rising and falling
# time constants 0.02-0.05 s (flightmare 0.02, the named race quad 0.033), torque-to-inertia 200-1200 rad/s^2
# (both named race-class quads: ~470), the disturbance as the reference's at thrust-to-weight <= 5.
RACE_FAST_RANGES = RandomizationRanges(thrust_to_weight=(4.0, 12.0), torque_to_inertia=(200.0, 1200.0),
                                       tau_rise=(0.02, 0.05), tau_fall=(0.02, 0.05), disturbance_t2w_cap=5.0)

LATENT_NAMES = ("thrust_to_weight", "mass", "torque_to_inertia", "size_deviation_raw", "rotor_torque_constant",
                "disturbance_multiple", "tau_rise", "tau_fall")


class CxxRandom:
    """std::mt19937 with libstdc++'s uniform_real_distribution<double> and normal_distribution<double>."""

    def __init__(self, seed: int) -> None:
        key = np.empty(624, dtype=np.uint32)
        s = seed & 0xFFFFFFFF
        key[0] = s
        for i in range(1, 624):  # init_genrand, as std::mt19937(seed)
            s = (1812433253 * (s ^ (s >> 30)) + i) & 0xFFFFFFFF
            key[i] = s
        self._bg = np.random.MT19937()
        self._bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}

    def canonical(self) -> float:
        """generate_canonical<double, 53>: two 32-bit draws, (r0 + r1 2^32) / 2^64, kept below 1."""
        r = self._bg.random_raw(2)
        x = (float(r[0]) + float(r[1]) * 4294967296.0) / 18446744073709551616.0
        return x if x < 1.0 else math.nextafter(1.0, 0.0)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.canonical()

    def normal(self, mean: float, std: float) -> float:
        if std == 0.0:  # rl_tools returns the mean without drawing
            return mean
        while True:
            x = 2.0 * self.canonical() - 1.0
            y = 2.0 * self.canonical() - 1.0
            r2 = x * x + y * y
            if r2 <= 1.0 and r2 != 0.0:
                break
        return y * math.sqrt(-2.0 * math.log(r2) / r2) * std + mean


def _draw_latent(rng: CxxRandom, r: RandomizationRanges) -> list[float]:
    t2w = rng.uniform(*r.thrust_to_weight)
    size = rng.uniform(r.mass[0] ** (1 / 3), r.mass[1] ** (1 / 3))
    mass = min(max(size ** 3, r.mass[0]), r.mass[1])
    tti = rng.uniform(*r.torque_to_inertia)
    e = rng.normal(-r.mass_size_deviation, r.mass_size_deviation)  # mean -d (sic), spec 3.2 step 5
    kq = rng.uniform(*r.rotor_torque_constant)
    t2w_d = t2w if r.disturbance_t2w_cap is None else min(t2w, r.disturbance_t2w_cap)
    mu = rng.uniform(0.0, max(0.0, t2w_d - 1.0) * r.disturbance_force_max)
    t_rise = rng.uniform(*r.tau_rise)
    t_fall = rng.uniform(*r.tau_fall)
    return [t2w, mass, tti, e, kq, mu, t_rise, t_fall]


def latents(n: int, seed: int = 0, ranges: RandomizationRanges = RandomizationRanges()) -> np.ndarray:
    """Raw draws (n, 8) in LATENT_NAMES order of airframes 0..n-1 of the reference stream for `seed`."""
    check_seed(seed, "sampler seed")
    rng = CxxRandom(seed + 1)
    _draw_latent(rng, ranges)  # the reference prints one sample before its loop and discards it
    return np.array([_draw_latent(rng, ranges) for _ in range(n)], dtype=np.float64).reshape(n, len(LATENT_NAMES))


def _round6(x):
    """std::to_string(double): fixed notation with 6 decimals."""
    if isinstance(x, (list, tuple)):
        return [_round6(v) for v in x]
    if isinstance(x, dict):
        return {k: _round6(v) for k, v in x.items()}
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, float, np.floating, np.integer)):
        return float(f"{float(x):.6f}")
    return x


def derive_parameters(latent: np.ndarray, round_like_reference: bool = True,
                      disturbance_t2w_cap: float | None = None) -> list[dict]:
    """Airframe parameter dictionaries (l2f layout) from raw draws (n, 8), following spec 3.2 steps 1-9
    (disturbance_t2w_cap: RandomizationRanges.disturbance_t2w_cap; None is the reference's).

    With round_like_reference, every number is rounded to 6 decimals like the reference's JSON writer (the
    teachers were trained on those files); J and J_inv are then no longer exact inverses, and both are used as is.
    """
    nominal = named_airframe("crazyflie").parameters["dynamics"]
    c_nom = np.asarray(nominal["rotor_thrust_coefficients"])
    m_nom = float(nominal["mass"])
    g = float(np.linalg.norm(nominal["gravity"]))
    u_max = float(nominal["action_limit"]["max"])
    t2w_nom = float((c_nom[:, 0] + c_nom[:, 1] * u_max + c_nom[:, 2] * u_max ** 2).sum() / (m_nom * g))
    r_nom = np.asarray(nominal["rotor_positions"])
    J_nom, J_inv_nom = np.asarray(nominal["J"]), np.asarray(nominal["J_inv"])
    out = []
    for t2w, mass, tti, e, kq, mu, t_rise, t_fall in np.asarray(latent, dtype=np.float64).reshape(-1, 8):
        phi_t, phi_m = t2w / t2w_nom, mass / m_nom
        t2w_d = t2w if disturbance_t2w_cap is None else min(t2w, disturbance_t2w_cap)
        coeffs = c_nom * phi_t * phi_m
        f_max = t2w * mass * g / 4
        tti_nom = abs(r_nom[0, 0]) * math.sqrt(2) * f_max / J_nom[0, 0]
        phi_tau = tti / tti_nom
        size_factor = 1.0 / (1.0 - e) if e < 0 else 1.0 + e
        rho = (mass / m_nom) ** (1 / 3) * size_factor
        phi_J = phi_tau / rho
        J, J_inv = J_nom.copy(), J_inv_nom.copy()
        for i in range(3):
            J[i, i] = J_nom[i, i] / phi_J
            J_inv[i, i] = J_inv_nom[i, i] * phi_J
        r = rho * r_nom
        d_max = float(np.linalg.norm(r, axis=1).max())
        dyn = copy.deepcopy(nominal)
        dyn.update({
            "rotor_positions": r.tolist(), "rotor_thrust_coefficients": coeffs.tolist(),
            "rotor_torque_constants": [kq] * 4, "rotor_time_constants_rising": [t_rise] * 4,
            "rotor_time_constants_falling": [t_fall] * 4, "mass": mass, "J": J.tolist(), "J_inv": J_inv.tolist(),
        })
        mdp = default_mdp()
        mdp["init"]["max_position"] = 10 * d_max
        mdp["termination"]["position_threshold"] = 20 * d_max
        params = {
            "dynamics": dyn, "integration": {"dt": 0.01}, "mdp": mdp,
            "disturbances": {"random_force": {"mean": 0.0, "std": mu * t2w_d * mass / 3},
                             "random_torque": {"mean": 0.0, "std": 0.0}},
            "trajectory": default_trajectory(langevin_fraction=0.5),
        }
        out.append(_round6(params) if round_like_reference else params)
    return out


def sample_airframes(n: int, seed: int = 0, ranges: RandomizationRanges = RandomizationRanges(),
                     round_like_reference: bool = True) -> list[Airframe]:
    """n airframes of RAPTOR's domain randomization; seed 0 gives the 1000 RAPTOR teacher airframes."""
    lat = latents(n, seed, ranges)
    params = derive_parameters(lat, round_like_reference, ranges.disturbance_t2w_cap)
    return [Airframe(f"dr{seed}_{i}", p, {"kind": "dr", "dr_seed": seed, "dr_index": i,
                                          "latent": dict(zip(LATENT_NAMES, map(float, row)))})
            for i, (p, row) in enumerate(zip(params, lat))]
