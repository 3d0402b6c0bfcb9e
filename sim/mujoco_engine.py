"""MuJoCo as a second physics engine: the same airframes, actions and metrics, integrated by MuJoCo.

`MujocoEngine` builds one MJCF model in which every env is its own free-floating body (no contacts), with the
airframe's mass and inertia, and integrates the 10 ms policy step in MuJoCo substeps (RK4, 1 ms by default). Our
motor model (first-order lag with rising/falling constants, thrust polynomial, yaw torque k_q f s + r x f) runs
per substep and enters as a body-frame wrench through six `motor` actuators at a site at the centre of mass (so
the force turns with the body inside MuJoCo's RK4 stages); the world-frame disturbance force enters through
`xfrc_applied`. The env's state
stays authoritative: each step writes it into MuJoCo and reads it back, so reward, termination, observations and
resets are the ones of `raptor.sim.env`.

MuJoCo conventions handled here: quaternion (w, x, y, z); the free joint's qvel is [linear velocity of the body
origin in world, angular velocity in the body frame]; the generated bodies put their origin at the centre of
mass, so the origin velocity is the centre-of-mass velocity.

Differences from our simulator, by construction: MuJoCo uses one inertia tensor, 1 / J_inv (ours uses J in the
gyroscopic term and J_inv elsewhere, which differ for x500_real's typo and for 6-decimal DR files); the motor
state is integrated exactly per substep (ours: RK4 over 10 ms).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from raptor.conventions import M, P, Q, V, W
from raptor.errors import ConfigError
from raptor.sim.airframe import Airframe, named_airframe
from raptor.sim.airframe_batch import AirframeBatch
from raptor.sim.config import EnvConfig
from raptor.sim.env import BatchedQuadrotorEnv
from raptor.sim.functional import Physics

# MuJoCo's free joint (the adapter's side of the conversion): qpos [position(3) world, quaternion(4) wxyz], qvel and
# the body wrench [linear(3), angular(3)]; our state's fields are raptor.conventions' P, Q, V, W, M.
MJ_POS, MJ_QUAT = slice(0, 3), slice(3, 7)
MJ_LIN, MJ_ANG = slice(0, 3), slice(3, 6)

if "mujoco" not in sys.modules and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless: MuJoCo picks its GL back-end when first imported


def _require_mujoco():
    try:
        import mujoco
    except ModuleNotFoundError:
        raise ConfigError("MuJoCo is an optional extra: pip install 'raptor-quadrotor[mujoco]'") from None
    return mujoco


def airframe_mjcf(params: AirframeBatch, timestep_s: float = 0.001) -> str:
    """An MJCF model with one free body per row of params (inertia 1 / J_inv, centre of mass at the origin)."""
    g = params.gravity.double().cpu().numpy()
    if not np.allclose(g, g[:1]):
        raise ConfigError("all airframes in one MuJoCo model must share the gravity vector")
    mass = params.mass.double().cpu().numpy()
    inertia = 1.0 / np.diagonal(params.J_inv.double().cpu().numpy(), axis1=1, axis2=2)
    rotors = params.rotor_positions.double().cpu().numpy()
    bodies = []
    for b in range(params.batch_size):
        arm = max(float(np.linalg.norm(rotors[b], axis=1).max()), 1e-3)
        geoms = [f'<geom type="box" size="{arm / 4:.6g} {arm / 4:.6g} {arm / 12:.6g}" rgba=".2 .2 .2 1"/>']
        for x, y, z in rotors[b]:
            geoms.append(f'<geom type="capsule" fromto="0 0 0 {x:.6g} {y:.6g} {z:.6g}" size="{arm / 25:.6g}" '
                         f'rgba=".3 .3 .3 1"/>')
            color = ".8 .2 .2 .6" if x > 0 else ".2 .2 .8 .6"
            geoms.append(f'<geom type="cylinder" pos="{x:.6g} {y:.6g} {z + arm / 20:.6g}" size="{arm / 2.5:.6g} '
                         f'{arm / 60:.6g}" rgba="{color}"/>')
        bodies.append(
            f'<body name="quad{b}"><freejoint name="free{b}"/>'
            f'<inertial pos="0 0 0" mass="{mass[b]:.17g}" diaginertia="{inertia[b, 0]:.17g} {inertia[b, 1]:.17g} '
            f'{inertia[b, 2]:.17g}"/><site name="com{b}"/>{"".join(geoms)}</body>')
    axes = ("1 0 0 0 0 0", "0 1 0 0 0 0", "0 0 1 0 0 0", "0 0 0 1 0 0", "0 0 0 0 1 0", "0 0 0 0 0 1")
    actuators = "".join(f'<motor site="com{b}" gear="{g}" ctrllimited="false"/>'
                        for b in range(params.batch_size) for g in axes)
    return (f'<mujoco model="raptor"><compiler angle="radian" balanceinertia="true"/>'
            f'<option timestep="{timestep_s}" integrator="RK4" gravity="{g[0, 0]:.17g} {g[0, 1]:.17g} {g[0, 2]:.17g}">'
            f'<flag contact="disable"/></option>'
            f'<default><geom contype="0" conaffinity="0" mass="0"/></default>'
            f'<visual><global offwidth="640" offheight="480"/></visual>'
            f'<worldbody><light pos="0 0 3" dir="0 0 -1" directional="true"/>'
            f'<geom type="plane" size="3 3 .1" pos="0 0 -1.2" rgba=".9 .9 .9 1"/>'
            f'{"".join(bodies)}</worldbody><actuator>{actuators}</actuator></mujoco>')


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(B, 4) wxyz -> (B, 3, 3) body -> world."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], 1)


class MotorModel:
    """Our per-rotor motor model in numpy: exact first-order lag per substep, thrust polynomial, wrench."""

    def __init__(self, params: AirframeBatch) -> None:
        n = lambda t: t.double().cpu().numpy()  # noqa: E731
        self.c = n(params.rotor_thrust_coefficients)  # (B, 4, 3)
        self.dirs = n(params.rotor_thrust_directions)  # (B, 4, 3)
        self.per_newton = (n(params.rotor_torque_constants)[..., None] * n(params.rotor_torque_directions)
                           + np.cross(n(params.rotor_positions), self.dirs))  # (B, 4, 3) N m / N, body
        self.rise, self.fall = n(params.tau_rise), n(params.tau_fall)
        self.lo, self.hi = n(params.action_min)[:, None], n(params.action_max)[:, None]

    def substep(self, m: np.ndarray, u: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance the motor state m (B, 4) towards the command u by h seconds; returns (thrusts (B, 4) of the
        mean motor state over the substep, the new motor state, and the lag time constants used)."""
        tau = np.where(u >= m, self.rise, self.fall)
        decay = np.exp(-h / tau)
        mean = u + (m - u) * tau / h * (1 - decay)
        f = self.c[..., 0] + self.c[..., 1] * mean + self.c[..., 2] * mean * mean
        return f, u + (m - u) * decay, tau

    def wrench(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body force (B, 3) N and torque (B, 3) N m of rotor thrusts f (B, 4)."""
        return (f[..., None] * self.dirs).sum(1), (f[..., None] * self.per_newton).sum(1)


class MujocoEngine:
    """Integrates the rows of an AirframeBatch in one MuJoCo model; `integrate` has the signature of
    raptor.sim.dynamics.integrate, so it plugs into BatchedQuadrotorEnv."""

    def __init__(self, params: AirframeBatch, timestep_s: float = 0.001) -> None:
        mujoco = _require_mujoco()
        dt = float(params.dt[0])
        self.substeps = int(round(dt / timestep_s))
        if self.substeps < 1 or abs(self.substeps * timestep_s - dt) > 1e-9:
            raise ConfigError(f"the MuJoCo timestep {timestep_s} s must divide the policy step {dt} s")
        self.mujoco = mujoco
        self.xml = airframe_mjcf(params, timestep_s)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self.h = timestep_s
        self.B = params.batch_size
        self.motors = MotorModel(params)

    def integrate(self, params: AirframeBatch, x: torch.Tensor, command: torch.Tensor, force_w: torch.Tensor,
                  torque_b: torch.Tensor) -> torch.Tensor:
        B, d, mj = self.B, self.data, self.mujoco
        xs = x.detach().double().cpu().numpy()
        u = command.detach().double().cpu().numpy()
        fw, tb = force_w.detach().double().cpu().numpy(), torque_b.detach().double().cpu().numpy()
        qpos, qvel = d.qpos.reshape(B, 7), d.qvel.reshape(B, 6)
        qpos[:, MJ_POS], qpos[:, MJ_QUAT] = xs[:, P], xs[:, Q]
        qvel[:, MJ_LIN], qvel[:, MJ_ANG] = xs[:, V], xs[:, W]
        ctrl = d.ctrl.reshape(B, 6)
        d.xfrc_applied[1:, MJ_LIN] = fw  # constant world-frame disturbance force
        m = xs[:, M].copy()
        for _ in range(self.substeps):
            f, m, _ = self.motors.substep(m, u, self.h)
            force_b, tau_b = self.motors.wrench(f)
            ctrl[:, MJ_LIN], ctrl[:, MJ_ANG] = force_b, tau_b + tb  # body frame, turns with the body
            mj.mj_step(self.model, d)
        q = qpos[:, MJ_QUAT] / np.linalg.norm(qpos[:, MJ_QUAT], axis=1, keepdims=True)
        m = np.clip(m, self.motors.lo, self.motors.hi)
        out = np.concatenate([qpos[:, MJ_POS], q, qvel[:, MJ_LIN], qvel[:, MJ_ANG], m], 1)
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


class MujocoQuadrotorEnv(BatchedQuadrotorEnv):
    """BatchedQuadrotorEnv whose physics is MuJoCo (float64, CPU); everything else is unchanged."""

    def __init__(self, airframes: Sequence[Airframe], envs_per_airframe: int = 1, config: EnvConfig = EnvConfig(),
                 seed: int | None = None, timestep_s: float = 0.001) -> None:
        if config.compile:
            raise ConfigError("the MuJoCo engine does not run under torch.compile; use compile=False")
        cfg = EnvConfig(**{**config.__dict__, "dtype": "float64", "device": "cpu"})
        super().__init__(airframes, envs_per_airframe, cfg, seed)
        self.engine = MujocoEngine(self.params, timestep_s)
        self.physics = Physics("mujoco", integrate=self.engine.integrate)


# ----------------------------------------------------------------------------------------------------------------
# External MJCF quadrotors (MuJoCo Menagerie) through a mapping file


def mapping_names() -> list[str]:
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("raptor").joinpath("data/mujoco_mappings").iterdir()
                  if p.name.endswith(".json"))


def load_mapping(name_or_path: str) -> dict:
    """A shipped mapping ('bitcraze_crazyflie_2', 'skydio_x2') or a mapping JSON file."""

    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text()
    else:
        ref = resources.files("raptor").joinpath(f"data/mujoco_mappings/{name_or_path}.json")
        if not ref.is_file():
            raise ConfigError(f"no MuJoCo mapping '{name_or_path}'; shipped: {', '.join(mapping_names())}")
        text = ref.read_text()
    m = json.loads(text)
    for key in ("name", "model_file", "body", "actuation"):
        if key not in m:
            raise ConfigError(f"MuJoCo mapping '{name_or_path}' lacks '{key}'")
    if m["actuation"] not in ("rotors", "body_wrench"):
        raise ConfigError(f"mapping actuation must be 'rotors' or 'body_wrench', got {m['actuation']!r}")
    return m


def _load_external(mapping: dict, models_dir, timestep_s: float):
    from pathlib import Path

    mj = _require_mujoco()
    path = Path(models_dir) / mapping["model_file"]
    if not path.is_file():
        raise ConfigError(f"MJCF '{path}' not found; pass the folder holding {mapping['model_file']} "
                          "(e.g. MuJoCo Menagerie)")
    model = mj.MjModel.from_xml_path(str(path))
    model.opt.timestep = timestep_s
    model.opt.disableflags |= int(mj.mjtDisableBit.mjDSBL_CONTACT)
    model.actuator_ctrllimited[:] = 0
    return model


def external_airframe(mapping: dict, models_dir, timestep_s: float = 0.001) -> Airframe:
    """The airframe the external model represents: its mass and inertia, the mapping's rotors and motor model."""
    mj = _require_mujoco()
    model = _load_external(mapping, models_dir, timestep_s)
    body = mj.mj_name2id(model, mj.mjtObj.mjOBJ_BODY, mapping["body"])
    if body < 0:
        raise ConfigError(f"body '{mapping['body']}' not in {mapping['model_file']}")
    mass = float(model.body_subtreemass[body])
    Ri = quat_to_matrix(np.asarray(model.body_iquat[body])[None])[0]
    J = Ri @ np.diag(model.body_inertia[body]) @ Ri.T
    ipos = np.asarray(model.body_ipos[body])
    if mapping["actuation"] == "rotors":
        mm = mapping["motor_model"]
        sites = [model.actuator_trnid[mj.mj_name2id(model, mj.mjtObj.mjOBJ_ACTUATOR, a), 0]
                 for a in mapping["rotor_actuators"]]
        rotors = np.array([model.site_pos[s] - ipos for s in sites])
        dyn = {"rotor_positions": rotors.tolist(), "rotor_thrust_directions": [[0.0, 0.0, 1.0]] * 4,
               "rotor_torque_directions": [[0.0, 0.0, float(sp)] for sp in mm["spin"]],
               "rotor_thrust_coefficients": [list(mm["thrust_coefficients"])] * 4,
               "rotor_torque_constants": [mm["torque_constant"]] * 4,
               "rotor_time_constants_rising": [mm["tau_rise"]] * 4,
               "rotor_time_constants_falling": [mm["tau_fall"]] * 4,
               "action_limit": {"min": mm["action_limit"][0], "max": mm["action_limit"][1]},
               "hovering_throttle_relative": 0.5}
    else:
        dyn = dict(named_airframe(mapping["motor_model_airframe"]).parameters["dynamics"])
    dyn.update(mass=mass, J=J.tolist(), J_inv=np.linalg.inv(J).tolist(),
               gravity=np.asarray(model.opt.gravity, dtype=float).tolist())
    return Airframe(f"mujoco:{mapping['name']}", {"dynamics": dyn, "integration": {"dt": 0.01}},
                    {"kind": "mujoco", "mapping": mapping["name"]})


class ExternalMujocoEngine:
    """Integrates B copies of an external MJCF quadrotor (one MjData each), driving its own actuators."""

    def __init__(self, mapping: dict, models_dir, params: AirframeBatch, timestep_s: float = 0.001) -> None:
        mj = _require_mujoco()
        self.mujoco, self.mapping = mj, mapping
        self.model = _load_external(mapping, models_dir, timestep_s)
        self.body = mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, mapping["body"])
        jnt = int(self.model.body_jntadr[self.body])
        if jnt < 0 or self.model.jnt_type[jnt] != mj.mjtJoint.mjJNT_FREE:
            raise ConfigError(f"body '{mapping['body']}' has no free joint")
        self.qadr, self.vadr = int(self.model.jnt_qposadr[jnt]), int(self.model.jnt_dofadr[jnt])
        self.ipos = np.asarray(self.model.body_ipos[self.body]).copy()
        self.B = params.batch_size
        self.datas = [mj.MjData(self.model) for _ in range(self.B)]
        self.h = timestep_s
        self.substeps = int(round(float(params.dt[0]) / timestep_s))
        self.motors = MotorModel(params)
        act = lambda n: mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_ACTUATOR, n)  # noqa: E731
        if mapping["actuation"] == "rotors":
            self.rotor_ids = [act(n) for n in mapping["rotor_actuators"]]
            if min(self.rotor_ids) < 0:
                raise ConfigError(f"mapping names actuators missing from the model: {mapping['rotor_actuators']}")
            mm = mapping["motor_model"]
            for k, a in enumerate(self.rotor_ids):  # thrust along the site's z, yaw torque spin x k_q (override)
                self.model.actuator_gear[a, :6] = [0, 0, 1, 0, 0, mm["spin"][k] * mm["torque_constant"]]
        else:
            w = mapping["wrench_actuators"]
            self.thrust_id = act(w["thrust"])
            self.moment_ids = [act(n) for n in w["moments"]]
            self.thrust_gear = float(self.model.actuator_gear[self.thrust_id, 2])
            self.moment_gears = [float(self.model.actuator_gear[a, 3 + k]) for k, a in enumerate(self.moment_ids)]

    def integrate(self, params: AirframeBatch, x: torch.Tensor, command: torch.Tensor, force_w: torch.Tensor,
                  torque_b: torch.Tensor) -> torch.Tensor:
        mj = self.mujoco
        xs = x.detach().double().cpu().numpy()
        u = command.detach().double().cpu().numpy()
        fw, tb = force_w.detach().double().cpu().numpy(), torque_b.detach().double().cpu().numpy()
        out = np.empty_like(xs)
        for b, d in enumerate(self.datas):
            q = xs[b, Q] / np.linalg.norm(xs[b, Q])
            R = quat_to_matrix(q[None])[0]
            off = R @ self.ipos  # centre of mass relative to the body origin, world
            w_world = R @ xs[b, W]
            d.qpos[self.qadr:self.qadr + 3] = xs[b, P] - off
            d.qpos[self.qadr + 3:self.qadr + 7] = q
            d.qvel[self.vadr:self.vadr + 3] = xs[b, V] - np.cross(w_world, off)
            d.qvel[self.vadr + 3:self.vadr + 6] = xs[b, W]
            d.xfrc_applied[self.body, MJ_LIN] = fw[b]
            d.xfrc_applied[self.body, MJ_ANG] = R @ tb[b]
            m = xs[b:b + 1, M].copy()
            for _ in range(self.substeps):
                f, m, _ = self.motors.substep(m, u[b:b + 1], self.h)
                if self.mapping["actuation"] == "rotors":
                    d.ctrl[self.rotor_ids] = f[0]
                else:
                    force_b, tau_b = self.motors.wrench(f)
                    d.ctrl[self.thrust_id] = force_b[0, 2] / self.thrust_gear
                    for k, a in enumerate(self.moment_ids):
                        d.ctrl[a] = tau_b[0, k] / self.moment_gears[k]
                mj.mj_step(self.model, d)
            qn = d.qpos[self.qadr + 3:self.qadr + 7] / np.linalg.norm(d.qpos[self.qadr + 3:self.qadr + 7])
            R = quat_to_matrix(qn[None])[0]
            off = R @ self.ipos
            w_body = d.qvel[self.vadr + 3:self.vadr + 6]
            out[b, P] = d.qpos[self.qadr:self.qadr + 3] + off
            out[b, Q] = qn
            out[b, V] = d.qvel[self.vadr:self.vadr + 3] + np.cross(R @ w_body, off)
            out[b, W] = w_body
            out[b, M] = np.clip(m[0], self.motors.lo[b], self.motors.hi[b])
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)


class ExternalMujocoEnv(BatchedQuadrotorEnv):
    """An external MJCF quadrotor (through a mapping) as a BatchedQuadrotorEnv: `episodes` copies of it."""

    def __init__(self, mapping: str | dict, models_dir, episodes: int = 1, config: EnvConfig = EnvConfig(),
                 seed: int | None = None, timestep_s: float = 0.001) -> None:
        mapping = load_mapping(mapping) if isinstance(mapping, str) else mapping
        airframe = external_airframe(mapping, models_dir, timestep_s)
        cfg = EnvConfig(**{**config.__dict__, "dtype": "float64", "device": "cpu", "compile": False})
        super().__init__([airframe], episodes, cfg, seed)
        self.engine = ExternalMujocoEngine(mapping, models_dir, self.params, timestep_s)
        self.physics = Physics("mujoco", integrate=self.engine.integrate)


def render_episodes(env: MujocoQuadrotorEnv, frames: list[np.ndarray], out_dir, width: int = 640,
                    height: int = 480) -> list:
    """Write PNG frames of recorded states (each (B, 17)) with MuJoCo's offscreen renderer."""
    import matplotlib.pyplot as plt

    mj = env.engine.mujoco
    model, data = env.engine.model, env.engine.data
    renderer = mj.Renderer(model, height, width)
    cam = mj.MjvCamera()
    cam.lookat[:] = [0, 0, 0]
    cam.distance, cam.azimuth, cam.elevation = 2.5, 135.0, -25.0
    written = []
    for k, xs in enumerate(frames):
        qpos = data.qpos.reshape(env.num_envs, 7)
        qpos[:, MJ_POS], qpos[:, MJ_QUAT] = xs[:, P], xs[:, Q]
        mj.mj_forward(model, data)
        renderer.update_scene(data, camera=cam)
        path = out_dir / f"frame_{k:04d}.png"
        plt.imsave(path, renderer.render())
        written.append(path)
    renderer.close()
    return written


def gl_available() -> tuple[bool, str]:
    """Whether MuJoCo can render offscreen here, and why not."""
    mj = _require_mujoco()
    try:
        model = mj.MjModel.from_xml_string('<mujoco><worldbody><geom size=".1"/></worldbody></mujoco>')
        r = mj.Renderer(model, 8, 8)
        r.close()
        return True, ""
    except Exception as e:  # noqa: BLE001  (GL back-ends fail in many ways)
        return False, f"{type(e).__name__}: {e}".strip()


__all__ = ["ExternalMujocoEngine", "ExternalMujocoEnv", "MujocoEngine", "MujocoQuadrotorEnv", "airframe_mjcf",
           "external_airframe", "gl_available", "load_mapping", "render_episodes"]
