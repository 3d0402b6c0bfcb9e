"""Flight-controller targets: every target's glue compiles with -Werror against its firmware-API header (host and
Cortex-M), and every frame / motor-order conversion in the adapters round-trips and agrees with the physical layout
(rotor positions of our airframes, the frame change F = diag(1, -1, -1) for NED/FRD)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import raptor.policy as rp
from raptor.conventions import Q, W
from raptor.geometry import rotation_matrix
from raptor.hil import betaflight_packets as bf
from raptor.policy.io import default_metadata
from raptor.policy_export.export import export, target_module_dir
from raptor.sim.airframe import named_airframe

TARGETS = ("crazyflie", "px4", "betaflight")
WARN = ["-Wall", "-Wextra", "-Werror"]
F = np.diag([1.0, -1.0, -1.0])  # NED -> FLU world, FRD -> FLU body


HOSTILE = 'cp -a t64 t64c && rm -rf t64c/checkpoints/*; "q" \\ */ /* ??/ \n é'


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """Every target exported from a policy whose metadata and file name would break C if pasted raw."""
    root = tmp_path_factory.mktemp("targets")
    torch.manual_seed(3)
    meta = default_metadata(source=HOSTILE, name=HOSTILE)
    meta["provenance"]["pipeline"] = [HOSTILE]
    path = root / "a */ policy.safetensors"
    rp.save_policy(path, rp.RaptorPolicyNet(), meta)
    return {t: _export(str(path), t, root / t) for t in TARGETS}


def _export(policy: str, target: str, out: Path) -> Path:
    """The folder with the target's sources (PX4: src/modules/raptor_policy, as EXTERNAL_MODULES_LOCATION wants)."""
    files = export(policy, target, out)
    mod = target_module_dir(out, target)
    assert (out / "README.md").is_file() and (mod / "raptor_policy_weights.h").is_file()
    assert all(p.is_file() for p in files)
    if target == "px4":
        assert "modules/raptor_policy" in (out / "src" / "CMakeLists.txt").read_text()
    return mod


def _sources(d: Path) -> tuple[list[Path], list[Path]]:
    c = [p for p in d.glob("*.c") if not p.name.endswith("_in_tree.c") and p.name != "raptor_px4_params.c"]
    return c, list(d.glob("*.cpp"))


@pytest.mark.parametrize("target", TARGETS)
def test_glue_compiles_against_the_api_header(exported, target):
    c, cpp = _sources(exported[target])
    assert c, "no C sources exported"
    for src in c:
        r = subprocess.run(["gcc", "-std=c99", *WARN, "-c", str(src), "-o", "/dev/null"], capture_output=True,
                           text=True, cwd=exported[target])
        assert r.returncode == 0, r.stderr
    for src in cpp:
        r = subprocess.run(["g++", "-std=c++17", *WARN, "-c", str(src), "-o", "/dev/null"], capture_output=True,
                           text=True, cwd=exported[target])
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_glue_cross_compiles_for_the_mcu(exported, target):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (apt install gcc-arm-none-eabi)")
    c, cpp = _sources(exported[target])
    cpu = ["-mcpu=cortex-m7", "-mthumb"] if target == "px4" else ["-mcpu=cortex-m4", "-mthumb",
                                                                   "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    for src in c:
        r = subprocess.run(["arm-none-eabi-gcc", "-std=c99", *cpu, *WARN, "-c", str(src), "-o", "/dev/null"],
                           capture_output=True, text=True, cwd=exported[target])
        assert r.returncode == 0, r.stderr
    for src in cpp:
        r = subprocess.run(["arm-none-eabi-g++", "-std=c++17", *cpu, *WARN, "-fno-exceptions", "-fno-rtti", "-c",
                            str(src), "-o", "/dev/null"], capture_output=True, text=True, cwd=exported[target])
        assert r.returncode == 0, r.stderr


# PX4 v1.15's own flags (cmake/px4_add_common_flags.cmake; C gnu11, C++ gnu++14): the module must build with them
PX4_WARN = ["-Wall", "-Wextra", "-Werror", "-Warray-bounds", "-Wcast-align", "-Wdisabled-optimization",
            "-Wdouble-promotion", "-Wfatal-errors", "-Wfloat-equal", "-Wformat-security", "-Winit-self", "-Wlogical-op",
            "-Wpointer-arith", "-Wshadow", "-Wuninitialized", "-Wunknown-pragmas", "-Wunused-variable",
            "-Wno-missing-field-initializers", "-Wno-unused-parameter", "-Wunused-but-set-variable",
            "-fno-signed-zeros", "-fno-trapping-math", "-freciprocal-math", "-fno-math-errno"]
PX4_C = ["-std=gnu11", "-Wbad-function-cast", "-Wstrict-prototypes", "-Wmissing-declarations", "-Wnested-externs"]
PX4_CXX = ["-std=gnu++14", "-fcheck-new", "-fno-exceptions", "-fno-rtti", "-Wreorder", "-Wno-overloaded-virtual"]


def test_px4_module_compiles_with_px4s_language_standard_and_warnings(exported):
    """Outside the tree against raptor_px4_api.hpp, but with the flags PX4 v1.15 builds external modules with
    (tests/test_px4_firmware.py builds it inside the real tree)."""
    c, cpp = _sources(exported["px4"])
    for src in c:
        r = subprocess.run(["gcc", *PX4_C, *PX4_WARN, "-c", str(src), "-o", "/dev/null"], capture_output=True,
                           text=True, cwd=exported["px4"])
        assert r.returncode == 0, r.stderr
    for src in cpp:
        r = subprocess.run(["g++", *PX4_CXX, *PX4_WARN, "-c", str(src), "-o", "/dev/null"], capture_output=True,
                           text=True, cwd=exported["px4"])
        assert r.returncode == 0, r.stderr


def test_betaflight_patch_names_real_anchors(exported):
    patch = (exported["betaflight"] / "betaflight-4.6.0.patch").read_text()
    assert "raptorBetaflightUpdate(currentTimeUs);" in patch and "mixTable(currentTimeUs);" in patch
    assert "raptorBetaflightInit();" in patch and "COMMON_SRC += raptor/raptor_policy.c" in patch


# ----------------------------------------------------------------------------------------------------------------
# The adapters through ctypes


@pytest.fixture(scope="module")
def lib(exported, tmp_path_factory) -> ctypes.CDLL:
    so = tmp_path_factory.mktemp("adapters") / "libadapters.so"
    srcs = [exported["betaflight"] / "raptor_betaflight_adapter.c",
            exported["crazyflie"] / "raptor_crazyflie_adapter.c", exported["px4"] / "raptor_px4_adapter.c"]
    subprocess.run(["gcc", "-std=c99", *WARN, "-shared", "-fPIC", "-O1", *map(str, srcs), "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


def _f(n: int, values=None):
    arr = (ctypes.c_float * n)()
    if values is not None:
        for i, v in enumerate(values):
            arr[i] = float(v)
    return arr


def test_betaflight_channels_round_trip_and_match_the_bridge(lib):
    lib.raptor_bf_channel_to_value.restype = ctypes.c_float
    lib.raptor_bf_channel_to_value.argtypes = [ctypes.c_float, ctypes.c_float]
    lib.raptor_bf_value_to_channel.restype = ctypes.c_float
    lib.raptor_bf_value_to_channel.argtypes = [ctypes.c_float, ctypes.c_float]
    for v in np.linspace(-0.99, 0.99, 23):
        us = lib.raptor_bf_value_to_channel(v, 1.0)
        assert abs(lib.raptor_bf_channel_to_value(us, 1.0) - v) < 1e-5
        assert abs(bf.value_to_channel(v, 1.0) - us) <= 0.5  # the bridge rounds to whole microseconds
    # the bridge's encoding, read back by the C adapter from Betaflight's internal rcData order
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, v = rng.uniform(-0.55, 0.55, 3), rng.uniform(-0.95, 0.95, 3)
        raw = bf.rc_channels(p, v, active=True, armed=True)
        rc = list(raw)
        for internal, r in bf.RCDATA_TO_RAW.items():
            rc[internal] = raw[r]
        pos, vel = _f(3), _f(3)
        lib.raptor_bf_rc_to_errors(_f(16, rc), pos, vel)
        np.testing.assert_allclose(np.array(pos), p, atol=1.5e-3)  # 1 us = 2 mm
        np.testing.assert_allclose(np.array(vel), v, atol=1.5e-3)
        p2, v2, active = bf.rc_to_errors(raw)
        np.testing.assert_allclose(p2, np.array(pos), atol=1e-6)
        np.testing.assert_allclose(v2, np.array(vel), atol=1e-6)
        assert active
    assert bf.rc_to_errors(bf.rc_channels(np.full(3, 5.0), np.zeros(3), False, True))[0].max() == pytest.approx(0.6)


def test_betaflight_motors_round_trip_and_follow_quad_x(lib):
    a = np.array([-0.8, -0.1, 0.3, 0.95])
    motors = _f(4)
    lib.raptor_bf_actions_to_motors(_f(4, a), ctypes.c_float(1000.0), ctypes.c_float(2000.0), motors)
    back = _f(4)
    lib.raptor_bf_motors_to_actions(motors, ctypes.c_float(1000.0), ctypes.c_float(2000.0), back)
    np.testing.assert_allclose(np.array(back), a, atol=1e-5)
    # Betaflight Quad-X: motor 1 rear-right, 2 front-right, 3 rear-left, 4 front-left (FLU: right = -y)
    bf_positions = {0: (-1, -1), 1: (1, -1), 2: (-1, 1), 3: (1, 1)}
    _assert_layout(bf.BF_MOTOR_INDEX, bf_positions)
    # the SITL motor packet (4.6.0 sends [m2, m3, m4, m1]) round-trips to the same actions
    np.testing.assert_allclose(bf.motor_packet_to_actions(bf.actions_to_motor_packet(a)), a, atol=1e-6)
    pkt = np.frombuffer(bf.actions_to_motor_packet(a), dtype="<f4")
    np.testing.assert_allclose(pkt[3], np.array(motors)[0] / 1000.0 - 1.0, atol=1e-6)  # packet[3] = motor[0]


def _assert_layout(index, firmware_positions):
    """Policy motor i sits where the firmware's motor index[i] sits (quadrant signs of x, y in FLU)."""
    rotors = np.array(named_airframe("crazyflie").parameters["dynamics"]["rotor_positions"])
    for i in range(4):
        assert tuple(np.sign(rotors[i, :2]).astype(int)) == firmware_positions[index[i]], f"policy motor {i}"


def test_betaflight_gate_resets_on_rising_edge_only(lib):
    class Gate(ctypes.Structure):
        _fields_ = [("active", ctypes.c_uint8), ("reset_pending", ctypes.c_uint8)]

    lib.raptor_bf_gate_update.restype = ctypes.c_uint8
    lib.raptor_bf_gate_update.argtypes = [ctypes.POINTER(Gate), ctypes.c_uint8, ctypes.c_float]
    g = Gate()
    assert lib.raptor_bf_gate_update(ctypes.byref(g), 1, 1500.0) == 0 and not g.reset_pending
    assert lib.raptor_bf_gate_update(ctypes.byref(g), 0, 2000.0) == 0  # disarmed: never
    assert lib.raptor_bf_gate_update(ctypes.byref(g), 1, 2000.0) == 1 and g.reset_pending
    g.reset_pending = 0
    assert lib.raptor_bf_gate_update(ctypes.byref(g), 1, 2000.0) == 1 and not g.reset_pending


def test_fdm_packet_round_trip_in_the_4_6_0_frames():
    rng = np.random.default_rng(1)
    q = rng.normal(size=4)
    state = np.r_[rng.normal(size=3), q / np.linalg.norm(q), rng.normal(size=6), np.zeros(4)]
    f = np.array([0.1, -0.2, 9.7])
    pkt = bf.pack_fdm(2.5, state, f)
    assert len(pkt) == 144
    d = bf.unpack_fdm(pkt)
    np.testing.assert_allclose(d["angular_velocity_flu"], state[W])
    np.testing.assert_allclose(d["orientation"], state[Q])
    np.testing.assert_allclose(d["specific_force_flu"], f)
    raw = np.frombuffer(pkt, dtype="<f8")
    np.testing.assert_allclose(raw[1:4], F @ state[W])  # FRD gyro on the wire, 4.6.0 maps (x, -y, -z) back


def test_crazyflie_conversions_round_trip(lib):
    a = np.array([-1.0, -0.2, 0.4, 1.0])
    forces, back = _f(4), _f(4)
    lib.raptor_cf_actions_to_forces(_f(4, a), forces)
    np.testing.assert_allclose(np.array(forces), (a + 1) / 2, atol=1e-6)
    lib.raptor_cf_forces_to_actions(forces, back)
    np.testing.assert_allclose(np.array(back), a, atol=1e-6)
    # Crazyflie M1..M4: front-right, back-right, back-left, front-left
    _assert_layout((0, 1, 2, 3), {0: (1, -1), 1: (-1, -1), 2: (-1, 1), 3: (1, 1)})
    w = np.array([0.3, -1.2, 2.0])
    dps, rad = _f(3), _f(3)
    lib.raptor_cf_body_rates_to_gyro(_f(3, w), dps)
    lib.raptor_cf_gyro_to_body_rates(dps, rad)
    np.testing.assert_allclose(np.array(dps), np.degrees(w), rtol=1e-5)
    np.testing.assert_allclose(np.array(rad), w, rtol=1e-5)
    q = _f(4)
    lib.raptor_cf_quaternion_to_policy(ctypes.c_float(0.1), ctypes.c_float(0.2), ctypes.c_float(0.3),
                                       ctypes.c_float(0.9), q)
    np.testing.assert_allclose(np.array(q), [0.9, 0.1, 0.2, 0.3], atol=1e-7)
    x, y, z, ww = (ctypes.c_float() for _ in range(4))
    lib.raptor_cf_policy_to_quaternion(q, ctypes.byref(x), ctypes.byref(y), ctypes.byref(z), ctypes.byref(ww))
    np.testing.assert_allclose([x.value, y.value, z.value, ww.value], [0.1, 0.2, 0.3, 0.9], atol=1e-7)


class CfSetpoint(ctypes.Structure):
    _fields_ = [("position", ctypes.c_float * 3), ("velocity", ctypes.c_float * 3),
                ("position_abs", ctypes.c_uint8 * 3), ("velocity_body", ctypes.c_uint8)]


def _cf_errors(lib, p, v, q_wxyz, sp_p, sp_v, position_abs=(1, 1, 1), body=0):
    sp = CfSetpoint(_f(3, sp_p), _f(3, sp_v), (ctypes.c_uint8 * 3)(*position_abs), body)
    pe, ve = _f(3), _f(3)
    lib.raptor_cf_errors(_f(3, p), _f(3, v), _f(4, q_wxyz), ctypes.byref(sp), pe, ve)
    return np.array(pe), np.array(ve)


def test_crazyflie_setpoint_errors(lib):
    level = [1.0, 0.0, 0.0, 0.0]
    pe, ve = _cf_errors(lib, [1.0, 0.0, 0.2], [3.0, 0, 0], level, [0.0, 0.1, 0.0], [0, 0, 0])
    np.testing.assert_allclose(pe, [0.5, -0.1, 0.2], atol=1e-6)  # clipped to +-0.5 m
    np.testing.assert_allclose(ve, [2.0, 0.0, 0.0], atol=1e-6)  # clipped to +-2 m/s
    # cflib's hover setpoint: x, y velocity in the body-yaw frame (no position), z a position. Facing +y (yaw 90 deg),
    # "forward 0.4 m/s" is world +y: flying +y at 0.4 m/s is no error, standing still is -0.4 m/s in world y.
    yaw90 = [np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]
    pe, ve = _cf_errors(lib, [5.0, -3.0, 1.1], [0.0, 0.4, 0.0], yaw90, [0, 0, 1.0], [0.4, 0, 0], (0, 0, 1), 1)
    np.testing.assert_allclose(pe, [0.0, 0.0, 0.1], atol=1e-6)  # velocity-only axes: no position error
    np.testing.assert_allclose(ve, [0.0, 0.0, 0.0], atol=1e-6)
    pe, ve = _cf_errors(lib, [0, 0, 1.0], [0, 0, 0], yaw90, [0, 0, 1.0], [0.4, 0, 0], (0, 0, 1), 1)
    np.testing.assert_allclose(ve, [0.0, -0.4, 0.0], atol=1e-6)
    # the same velocity in the world frame (velocity_body 0) is world x; any tilt keeps the heading of body x
    pe, ve = _cf_errors(lib, [0, 0, 1.0], [0, 0, 0], yaw90, [0, 0, 1.0], [0.4, 0, 0], (0, 0, 1), 0)
    np.testing.assert_allclose(ve, [-0.4, 0.0, 0.0], atol=1e-6)
    roll = np.array([np.cos(0.2), np.sin(0.2), 0, 0])  # 23 deg of roll, then yaw 90 deg
    q = np.array([yaw90[0] * roll[0], yaw90[0] * roll[1], yaw90[3] * roll[1], yaw90[3] * roll[0]])
    pe, ve = _cf_errors(lib, [0, 0, 1.0], [0, 0, 0], q, [0, 0, 1.0], [0.4, 0, 0], (0, 0, 1), 1)
    np.testing.assert_allclose(ve, [0.0, -0.4, 0.0], atol=1e-5)


def test_crazyflie_makefile_refuses_a_release_without_force_control(exported, tmp_path):
    """crazyflie-firmware 2025.02 declares controlModeForce but its power distribution leaves it unimplemented."""
    old = tmp_path / "crazyflie-firmware-2025.02" / "src" / "modules" / "src"
    old.mkdir(parents=True)
    (old / "power_distribution_quadrotor.c").write_text("case controlModeForce:\n  // Not implemented yet\n  break;\n")
    r = subprocess.run(["make", f"CRAZYFLIE_BASE={old.parents[2]}"], cwd=exported["crazyflie"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "does not implement controlModeForce" in r.stderr and "2025.12" in r.stderr
    r = subprocess.run(["make", f"CRAZYFLIE_BASE={tmp_path / 'nowhere'}"], cwd=exported["crazyflie"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no crazyflie-firmware at" in r.stderr


def test_crazyflie_dead_man(lib):
    class Gate(ctypes.Structure):
        _fields_ = [("active", ctypes.c_uint8), ("reset_pending", ctypes.c_uint8),
                    ("last_setpoint_stamp", ctypes.c_uint32), ("last_fresh_us", ctypes.c_uint64),
                    ("seen", ctypes.c_uint8)]

    lib.raptor_cf_gate_update.restype = ctypes.c_uint8
    lib.raptor_cf_gate_update.argtypes = [ctypes.POINTER(Gate), ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint32,
                                          ctypes.c_uint64]
    g = Gate()
    t = 1_000_000
    assert lib.raptor_cf_gate_update(ctypes.byref(g), 1, 1, 10, t) == 1 and g.reset_pending
    g.reset_pending = 0
    assert lib.raptor_cf_gate_update(ctypes.byref(g), 1, 1, 10, t + 150_000) == 1  # same setpoint, 150 ms
    assert lib.raptor_cf_gate_update(ctypes.byref(g), 1, 1, 10, t + 250_000) == 0  # 250 ms: motors stop
    assert lib.raptor_cf_gate_update(ctypes.byref(g), 1, 1, 11, t + 260_000) == 1 and g.reset_pending
    assert lib.raptor_cf_gate_update(ctypes.byref(g), 1, 0, 12, t + 270_000) == 0  # failed self-test


def test_px4_frames_are_the_frame_change_F(lib):
    rng = np.random.default_rng(2)
    for _ in range(10):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        out, back = _f(4), _f(4)
        lib.raptor_px4_quaternion_to_flu(_f(4, q), out)
        lib.raptor_px4_quaternion_to_flu(out, back)
        np.testing.assert_allclose(np.array(back), q, atol=1e-6)  # its own inverse
        r_ned = rotation_matrix(torch.tensor(q)[None]).numpy()[0].reshape(3, 3)
        r_flu = rotation_matrix(torch.tensor(np.array(out), dtype=torch.float64)[None]).numpy()[0].reshape(3, 3)
        np.testing.assert_allclose(r_flu, F @ r_ned @ F, atol=1e-6)  # body FRD->FLU and world NED->FLU
        v, vo = rng.normal(size=3), _f(3)
        lib.raptor_px4_vector_to_flu(_f(3, v), vo)
        np.testing.assert_allclose(np.array(vo), F @ v, atol=1e-6)


def test_px4_motors_errors_and_timeouts(lib):
    a = np.array([-0.5, 0.1, 0.7, -1.0])
    m, back = _f(4), _f(4)
    lib.raptor_px4_actions_to_motors(_f(4, a), m)
    lib.raptor_px4_motors_to_actions(m, back)
    np.testing.assert_allclose(np.array(back), a, atol=1e-6)
    # PX4 Quad-X: motor1 front-right, motor2 back-left, motor3 front-left, motor4 back-right (FLU quadrants)
    _assert_layout((0, 3, 1, 2), {0: (1, -1), 1: (-1, 1), 2: (1, 1), 3: (-1, -1)})
    lib.raptor_px4_errors.restype = ctypes.c_uint32
    pe, ve = _f(3), _f(3)
    # 0.3 m north, 0.2 m east, 1.0 m up (z = -1.0 NED) of a setpoint at the origin, velocity setpoint NaN
    r = lib.raptor_px4_errors(_f(3, [0.3, 0.2, -1.0]), _f(3, [0.0, 0.5, 0.0]), _f(3, [0, 0, 0]),
                              _f(3, [np.nan] * 3), pe, ve)
    assert r == 0
    np.testing.assert_allclose(np.array(pe), [0.3, -0.2, 0.5], atol=1e-6)  # FLU, z clipped to 0.5 m
    np.testing.assert_allclose(np.array(ve), [0.0, -0.5, 0.0], atol=1e-6)
    assert lib.raptor_px4_errors(_f(3), _f(3), _f(3, [np.nan, 0, 0]), _f(3), pe, ve) == 1 << 5
    lib.raptor_px4_check.restype = ctypes.c_uint32
    lib.raptor_px4_check.argtypes = [ctypes.c_uint64] * 5 + [ctypes.c_uint8]
    now = 10_000_000
    assert lib.raptor_px4_check(now, now - 2000, now - 40000, now - 90000, now - 90000, 1) == 0
    assert lib.raptor_px4_check(now, now - 20000, now, now, now, 1) == 1 << 0  # gyro 20 ms old
    assert lib.raptor_px4_check(now, now, now - 60000, now, now, 1) == 1 << 1  # attitude 60 ms
    assert lib.raptor_px4_check(now, now, now, now, now - 150000, 0) == (1 << 3) | (1 << 4)


def test_msp_frames_survive_garbage():
    payload = b"\x00\x01\x2f"
    body = bytes([len(payload), 1]) + payload
    crc = 0
    for b in body:
        crc ^= b
    frame = b"$M>" + body + bytes([crc])
    cmd, got, rest = bf.msp_parse(b"\x00garbage$M>\x05" + frame + b"tail")
    assert cmd == 1 and got == payload and rest == b"tail"
    assert bf.msp_parse(frame[:-2]) is None  # truncated: wait for more
    assert bf.msp_parse(frame[:-1] + bytes([crc ^ 0xFF])) is None  # bad checksum
    assert bf.msp_frame(101) == b"$M<\x00ee"


def test_px4_yaw_setpoint_is_the_vehicles_heading_in_flu(lib):
    """A NED yaw setpoint must name the heading a vehicle at that NED yaw has in the policy's FLU world."""
    lib.raptor_px4_yaw_to_flu.restype = ctypes.c_uint8
    lib.raptor_px4_yaw_to_flu.argtypes = [ctypes.c_float, ctypes.POINTER(ctypes.c_float),
                                          ctypes.POINTER(ctypes.c_float)]
    for yaw_ned in (-3.0, -1.0, 0.0, 0.7, 2.5):
        q_ned = np.array([np.cos(yaw_ned / 2), 0, 0, np.sin(yaw_ned / 2)])  # FRD -> NED, yaw about NED z (down)
        q_flu = _f(4)
        lib.raptor_px4_quaternion_to_flu(_f(4, q_ned), q_flu)
        r = rotation_matrix(torch.tensor(np.array(q_flu), dtype=torch.float64)[None]).numpy()[0]
        c, s = ctypes.c_float(), ctypes.c_float()
        assert lib.raptor_px4_yaw_to_flu(yaw_ned, ctypes.byref(c), ctypes.byref(s)) == 1
        assert abs(np.arctan2(s.value, c.value) - np.arctan2(r[3], r[0])) < 1e-5
    assert lib.raptor_px4_yaw_to_flu(float("nan"), ctypes.byref(c), ctypes.byref(s)) == 0


def test_crazyflie_yaw_setpoint_follows_the_commander(lib):
    fn = lib.raptor_cf_yaw_setpoint
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float, ctypes.c_uint8, ctypes.c_float, ctypes.c_uint8, ctypes.c_float, ctypes.c_float]
    assert abs(fn(0.3, 1, 90.0, 0, 0.0, 0.001) - np.pi / 2) < 1e-6  # absolute yaw, deg
    assert abs(fn(0.3, 1, 270.0, 0, 0.0, 0.001) + np.pi / 2) < 1e-5  # wrapped to (-pi, pi]
    yaw = 0.0
    for _ in range(1000):  # hover setpoints: 90 deg/s for 1 s at 1 kHz
        yaw = fn(yaw, 0, 0.0, 1, 90.0, 0.001)
    assert abs(yaw - np.pi / 2) < 1e-3
    assert fn(0.3, 0, 0.0, 0, 50.0, 0.001) == pytest.approx(0.3)  # neither mode: held
    assert fn(0.3, 1, float("nan"), 0, 0.0, 0.001) == pytest.approx(0.3)  # a NaN yaw is ignored
