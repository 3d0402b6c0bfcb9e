"""Airframes as data: one airframe's parameters (l2f JSON layout), their defaults and validation, and the named
airframes shipped with the package.

An airframe is the l2f parameter dictionary (`dynamics`, `integration`, `mdp`, `disturbances`, `trajectory`), so
files written by the reference tools load unchanged. Files and specs: raptor.sim.airframe_files; the same data as
tensors with a leading batch axis (what the pure physics functions consume): raptor.sim.airframe_batch.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from raptor.errors import AirframeError

# Named airframes; "x500" is RAPTOR's name for x500_real, "fs" for fs_base.
NAMED_ALIASES = {"x500": "x500_real", "fs_base": "fs"}


def default_mdp() -> dict[str, Any]:
    """RAPTOR's MDP block for named airframes: init_90_deg, the teacher reward, 1 m / 2 m/s / 35 rad/s termination."""
    return {
        "init": {"guidance": 0.1, "max_position": 0.5, "max_angle": math.pi / 2, "max_linear_velocity": 1.0,
                 "max_angular_velocity": 1.0, "relative_rpm": True, "min_rpm": -1.0, "max_rpm": 0.0},
        "reward": {"non_negative": False, "scale": 1.0, "constant": 1.5, "termination_penalty": -100.0,
                   "position": 1.0, "position_clip": 0.0, "orientation": 0.1, "linear_velocity": 0.0,
                   "angular_velocity": 0.0, "linear_acceleration": 0.0, "angular_acceleration": 0.0,
                   "action": 0.0, "d_action": 1.0, "position_error_integral": 0.0},
        "observation_noise": {"position": 0.0, "orientation": 0.0, "linear_velocity": 0.0,
                              "angular_velocity": 0.0, "imu_acceleration": 0.0},
        "action_noise": {"normalized_rpm": 0.0},
        "termination": {"enabled": True, "position_threshold": 1.0, "linear_velocity_threshold": 2.0,
                        "angular_velocity_threshold": 35.0, "position_integral_threshold": 10000.0,
                        "orientation_integral_threshold": 50000.0},
    }


def default_trajectory(langevin_fraction: float = 0.0) -> dict[str, Any]:
    return {"MIXTURE_N": 2, "mixture": [1.0 - langevin_fraction, langevin_fraction],
            "langevin": {"gamma": 1.0, "omega": 2.0, "sigma": 0.5, "alpha": 0.01}}


# (field path, shape) of every array the simulator reads; scalars have shape ().
_FIELDS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("dynamics.rotor_positions", (4, 3)),
    ("dynamics.rotor_thrust_directions", (4, 3)),
    ("dynamics.rotor_torque_directions", (4, 3)),
    ("dynamics.rotor_thrust_coefficients", (4, 3)),
    ("dynamics.rotor_torque_constants", (4,)),
    ("dynamics.rotor_time_constants_rising", (4,)),
    ("dynamics.rotor_time_constants_falling", (4,)),
    ("dynamics.mass", ()),
    ("dynamics.gravity", (3,)),
    ("dynamics.J", (3, 3)),
    ("dynamics.J_inv", (3, 3)),
    ("dynamics.hovering_throttle_relative", ()),
    ("dynamics.action_limit.min", ()),
    ("dynamics.action_limit.max", ()),
    ("integration.dt", ()),
    ("mdp.init.guidance", ()),
    ("mdp.init.max_position", ()),
    ("mdp.init.max_angle", ()),
    ("mdp.init.max_linear_velocity", ()),
    ("mdp.init.max_angular_velocity", ()),
    ("mdp.init.min_rpm", ()),
    ("mdp.init.max_rpm", ()),
    ("mdp.termination.position_threshold", ()),
    ("mdp.termination.linear_velocity_threshold", ()),
    ("mdp.termination.angular_velocity_threshold", ()),
    ("disturbances.random_force.mean", ()),
    ("disturbances.random_force.std", ()),
    ("disturbances.random_torque.mean", ()),
    ("disturbances.random_torque.std", ()),
)


def parameter(d: dict, path: str) -> Any:
    """The value at a dotted path of an airframe's parameter dictionary ("dynamics.mass"), or AirframeError."""
    cur: Any = d
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            raise AirframeError(f"airframe parameters lack the field '{path}'")
        cur = cur[key]
    return cur


def _merge_defaults(params: dict) -> dict:
    """Fill optional blocks (mdp, disturbances, trajectory) with RAPTOR defaults; dynamics is required."""
    out = copy.deepcopy(params)
    if "dynamics" not in out:
        raise AirframeError("airframe parameters lack the 'dynamics' block")
    out.setdefault("integration", {"dt": 0.01})
    mdp = default_mdp()
    for block, values in out.get("mdp", {}).items():
        if isinstance(values, dict) and block in mdp:
            mdp[block].update(values)
        else:
            mdp[block] = values
    out["mdp"] = mdp
    dist = {"random_force": {"mean": 0.0, "std": 0.0}, "random_torque": {"mean": 0.0, "std": 0.0}}
    for k, v in out.get("disturbances", {}).items():
        dist.setdefault(k, {}).update(v)
    out["disturbances"] = dist
    traj = default_trajectory()
    traj.update(out.get("trajectory", {}))
    out["trajectory"] = traj
    return out


@dataclass(frozen=True)
class Airframe:
    """One airframe: a name, the full l2f-layout parameter dictionary, and free-form metadata."""

    name: str
    parameters: dict
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", _merge_defaults(self.parameters))
        validate_parameters(self.parameters, where=f"airframe '{self.name}'")

    def array(self, path: str) -> np.ndarray:
        return np.asarray(parameter(self.parameters, path), dtype=np.float64)

    @property
    def dynamics_key(self) -> str:
        """The airframe itself, not its name (two sampler seeds can give the same airframe): compares sets."""
        return json.dumps(self.parameters["dynamics"], sort_keys=True)

    @property
    def mass_kg(self) -> float:
        return float(self.array("dynamics.mass"))

    @property
    def weight_n(self) -> float:
        """m |g| in N."""
        return self.mass_kg * float(np.linalg.norm(self.array("dynamics.gravity")))

    @property
    def thrust_to_weight(self) -> float:
        c = self.array("dynamics.rotor_thrust_coefficients")
        u = float(self.array("dynamics.action_limit.max"))
        thrust = (c[:, 0] + c[:, 1] * u + c[:, 2] * u * u).sum()
        return float(thrust / self.weight_n)

    @property
    def hover_action(self) -> float:
        """Normalized action in [-1, 1] whose steady thrust balances gravity (all rotors equal)."""
        c = self.array("dynamics.rotor_thrust_coefficients").mean(0)
        lo, hi = float(self.array("dynamics.action_limit.min")), float(self.array("dynamics.action_limit.max"))
        w = self.weight_n / 4
        if abs(c[2]) < 1e-15:
            u = (w - c[0]) / c[1]
        else:
            u = (-c[1] + math.sqrt(max(c[1] ** 2 - 4 * c[2] * (c[0] - w), 0.0))) / (2 * c[2])
        return 2 * (u - lo) / (hi - lo) - 1

    def to_json(self) -> dict:
        return {"name": self.name, "parameters": self.parameters, "meta": self.meta}


KNOWN_BLOCKS = ("dynamics", "integration", "mdp", "disturbances", "trajectory", "domain_randomization", "derived",
                "source")
KNOWN_DYNAMICS = ("J", "J_inv", "action_limit", "gravity", "hovering_throttle_relative", "mass", "rotor_positions",
                  "rotor_thrust_coefficients", "rotor_thrust_directions", "rotor_time_constants_falling",
                  "rotor_time_constants_rising", "rotor_torque_constants", "rotor_torque_directions")


def limit_thrust_to_weight(af: Airframe, max_thrust_to_weight: float) -> Airframe:
    """The airframe flown with its motor command capped so that its thrust-to-weight is at most the given one (the
    command range [min, cap] mapped to the policy's [-1, 1]), as Betaflight's `motor_output_limit` does: a race quad
    with thrust-to-weight 12 flies as one of 5, inside the envelope the policies were trained on. Unchanged where
    already within it."""
    if not max_thrust_to_weight > 0:
        raise AirframeError(f"the thrust-to-weight limit must be positive, got {max_thrust_to_weight}")
    if af.thrust_to_weight <= max_thrust_to_weight:
        return af
    p = json.loads(json.dumps(af.parameters))
    c = np.asarray(p["dynamics"]["rotor_thrust_coefficients"], dtype=np.float64).sum(0)  # total thrust polynomial
    lo, hi = float(p["dynamics"]["action_limit"]["min"]), float(p["dynamics"]["action_limit"]["max"])
    u_min, u_max = lo, hi
    want = max_thrust_to_weight * af.weight_n  # N
    for _ in range(80):  # bisection: thrust is increasing in the command over the airframe's range
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if c[0] + c[1] * mid + c[2] * mid * mid > want else (mid, hi)
    p["dynamics"]["action_limit"]["max"] = lo
    # the cap as Betaflight's motor_output_limit states it: the fraction of the command range kept
    return Airframe(af.name, p, {**af.meta, "motor_output_limit": (lo - u_min) / (u_max - u_min)})


def _has_bool(x: Any) -> bool:
    return isinstance(x, bool) or (isinstance(x, list) and any(_has_bool(v) for v in x))


def validate_parameters(p: dict, where: str = "airframe") -> None:
    """Check every field the simulator reads: present, right shape, finite, physically sane; and name any block or
    dynamics field it does not know (a typo would otherwise be ignored)."""
    unknown = [k for k in p if k not in KNOWN_BLOCKS]
    unknown += [f"dynamics.{k}" for k in p.get("dynamics", {}) if k not in KNOWN_DYNAMICS]
    if unknown:
        raise AirframeError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; the known blocks are "
                            f"{', '.join(KNOWN_BLOCKS)} and dynamics holds {', '.join(KNOWN_DYNAMICS)}")
    for path, shape in _FIELDS:
        raw = parameter(p, path)
        if _has_bool(raw):
            raise AirframeError(f"{where}: field '{path}' is {json.dumps(raw)}, a boolean; write a number")
        try:
            value = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise AirframeError(f"{where}: field '{path}' is not numeric ({e})") from None
        if value.shape != shape:
            raise AirframeError(f"{where}: field '{path}' has shape {value.shape}, expected {shape}")
        if not np.all(np.isfinite(value)):
            raise AirframeError(f"{where}: field '{path}' is not finite: {value.tolist()}")

    def positive(path: str, diag: bool = False) -> None:
        v = np.asarray(parameter(p, path), dtype=np.float64)
        v = np.diag(v) if diag else v
        if not np.all(v > 0):
            raise AirframeError(f"{where}: field '{path}' must be positive, got {v.tolist()}")

    for path in ("dynamics.mass", "dynamics.rotor_time_constants_rising", "dynamics.rotor_time_constants_falling",
                 "integration.dt", "mdp.termination.position_threshold",
                 "mdp.termination.linear_velocity_threshold", "mdp.termination.angular_velocity_threshold"):
        positive(path)
    positive("dynamics.J", diag=True)
    positive("dynamics.J_inv", diag=True)
    lo, hi = float(parameter(p, "dynamics.action_limit.min")), float(parameter(p, "dynamics.action_limit.max"))
    if not hi > lo:
        raise AirframeError(f"{where}: dynamics.action_limit.max ({hi}) must exceed action_limit.min ({lo})")
    mass = float(parameter(p, "dynamics.mass"))
    if not 1e-3 <= mass <= 100.0:
        raise AirframeError(f"{where}: dynamics.mass = {mass} kg is outside the sane range [0.001, 100] kg")
    dt = float(parameter(p, "integration.dt"))
    if not 1e-4 <= dt <= 0.1:
        raise AirframeError(f"{where}: integration.dt = {dt} s is outside [1e-4, 0.1] s")
    for name in ("rising", "falling"):
        tau = np.asarray(parameter(p, f"dynamics.rotor_time_constants_{name}"))
        if np.any(tau > 10.0):
            raise AirframeError(f"{where}: dynamics.rotor_time_constants_{name} {tau.tolist()} s exceed 10 s")
    for path in ("disturbances.random_force.std", "disturbances.random_torque.std"):
        if float(parameter(p, path)) < 0:
            raise AirframeError(f"{where}: field '{path}' must be >= 0")
    mix = np.asarray(parameter(p, "trajectory.mixture"), dtype=np.float64)
    if mix.shape != (2,) or np.any(mix < 0) or not np.isfinite(mix).all() or mix.sum() <= 0:
        raise AirframeError(f"{where}: trajectory.mixture must be two non-negative weights, got {mix.tolist()}")


# ----------------------------------------------------------------------------------------------------------------
# Named airframes (shipped as package data; the package never reads ../shared at run time)


def _named_table() -> dict:
    with resources.files("raptor").joinpath("data/named_airframes.json").open("r") as f:
        return json.load(f)["airframes"]


def named_airframe_names() -> list[str]:
    """The named airframes RAPTOR evaluates on, plus the other headers; 'x500' means x500_real."""
    return ["crazyflie", "x500", "x500_sim", "mrs", "fs", "race", "flightmare", "soft", "soft_rigid"]


NAMED_SET = ("crazyflie", "x500", "mrs", "fs", "race", "flightmare")  # what the spec `named` flies


def named_airframe(name: str) -> Airframe:
    table = _named_table()
    key = NAMED_ALIASES.get(name, name)
    if key not in table:
        raise AirframeError(f"unknown airframe '{name}'; choose one of {', '.join(named_airframe_names())} "
                            f"(`named` flies {', '.join(NAMED_SET)}), a file, or sampled:N:SEED")
    entry = table[key]
    params = {"dynamics": copy.deepcopy(entry["dynamics"]), "integration": {"dt": 0.01}}
    return Airframe(name, params, {"kind": "named", "source": entry["source"]})
