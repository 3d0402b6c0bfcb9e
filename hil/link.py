"""The HIL link, host side: transports (serial port or URL, a device process, QEMU) and a request/response
client with sequence numbers, timeouts, resynchronization and statistics. Every fault is counted, none raises
except a lost device (LinkClosed), which the caller turns into a clear message.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field

import numpy as np

from raptor.errors import RaptorError
from raptor.hil import protocol as P


class LinkClosed(RaptorError):
    """The device disconnected or its process exited."""


class Transport:
    """Bytes in and out with a read timeout."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout_s: float) -> bytes:
        """Whatever arrives within timeout_s (b"" if nothing); raises LinkClosed when the device is gone."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SerialTransport(Transport):
    """pyserial: /dev/ttyACM0, /dev/pts/N, socket://HOST:PORT, ..."""

    def __init__(self, url: str, baud: int = 921600) -> None:
        try:
            import serial
        except ModuleNotFoundError:
            raise RaptorError("the serial link needs pyserial: pip install 'raptor-quadrotor[hil]'") from None
        self._serial_mod = serial
        try:
            self.port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise RaptorError(f"cannot open '{url}': {e}") from None
        if url.startswith("socket://"):
            import socket

            self.port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (self._serial_mod.SerialException, OSError) as e:
            raise LinkClosed(f"write failed: {e}") from None

    def read(self, timeout_s: float) -> bytes:
        self.port.timeout = timeout_s
        try:
            first = self.port.read(1)
            return first + (self.port.read(self.port.in_waiting) if first and self.port.in_waiting else b"")
        except (self._serial_mod.SerialException, OSError) as e:
            raise LinkClosed(f"read failed: {e}") from None

    def close(self) -> None:
        self.port.close()


class ProcessTransport(Transport):
    """A device process on stdin/stdout: the host build of the firmware, or QEMU with `-serial stdio`."""

    def __init__(self, argv: list[str]) -> None:
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, bufsize=0)
        except OSError as e:
            raise RaptorError(f"cannot start the device '{argv[0]}': {e}") from None
        self.fd = self.proc.stdout.fileno()

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise LinkClosed(f"the device process exited (code {self.proc.poll()})") from None

    def read(self, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            if self.proc.poll() is not None:
                raise LinkClosed(f"the device process exited (code {self.proc.returncode})")
            return b""
        data = os.read(self.fd, 4096)
        if not data:
            raise LinkClosed(f"the device process closed its output (code {self.proc.poll()})")
        return data

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class PtyProcessTransport(Transport):
    """A device process on one side of a pseudo-terminal, this host on the other through pyserial: the host build
    of the firmware seen exactly like a USB-serial flight controller."""

    def __init__(self, argv: list[str], baud: int = 921600) -> None:
        import pty
        import tty

        master, slave = pty.openpty()
        tty.setraw(slave)
        try:
            self.proc = subprocess.Popen(argv, stdin=master, stdout=master, stderr=subprocess.DEVNULL)
        except OSError as e:
            os.close(master)
            os.close(slave)
            raise RaptorError(f"cannot start the device '{argv[0]}': {e}") from None
        os.close(master)
        self.path = os.ttyname(slave)
        try:
            self.serial = SerialTransport(self.path, baud)
        finally:
            os.close(slave)

    def write(self, data: bytes) -> None:
        if self.proc.poll() is not None:
            raise LinkClosed(f"the device process exited (code {self.proc.returncode})")
        self.serial.write(data)

    def read(self, timeout_s: float) -> bytes:
        data = self.serial.read(timeout_s)
        if not data and self.proc.poll() is not None:
            raise LinkClosed(f"the device process exited (code {self.proc.returncode})")
        return data

    def close(self) -> None:
        self.serial.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def qemu_argv(elf: str) -> list[str]:
    if not shutil.which("qemu-system-arm"):
        raise RaptorError("qemu-system-arm not found: apt-get install qemu-system-arm")
    return ["qemu-system-arm", "-M", "netduinoplus2", "-display", "none", "-monitor", "none", "-serial", "stdio",
            "-kernel", elf]


@dataclass
class LinkStats:
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    stale_replies: int = 0  # duplicates or replies to requests that already timed out
    device_status: dict = field(default_factory=dict)  # STATUS code -> count
    device_resets: int = 0  # unsolicited BOOT from the device
    rtt_s: list = field(default_factory=list)
    inference_us: list = field(default_factory=list)

    def summary(self, decoder: P.DecoderStats) -> dict:
        rtt = np.asarray(self.rtt_s) * 1e3
        edges = [0, 0.5, 1, 2, 5, 10, 20, 50, 100, 1e9]
        hist = np.histogram(rtt, bins=edges)[0].tolist() if len(rtt) else [0] * (len(edges) - 1)
        return {
            "requests": self.requests, "replies": self.replies, "timeouts": self.timeouts,
            "stale_replies": self.stale_replies, "device_resets": self.device_resets,
            "device_status": {str(k): v for k, v in self.device_status.items()},
            "frames_ok": decoder.frames_ok, "frames_corrupt": decoder.frames_bad,
            "bytes_dropped": decoder.bytes_dropped,
            "rtt_ms": {"mean": float(rtt.mean()) if len(rtt) else None,
                       "p50": float(np.percentile(rtt, 50)) if len(rtt) else None,
                       "p99": float(np.percentile(rtt, 99)) if len(rtt) else None,
                       "max": float(rtt.max()) if len(rtt) else None,
                       "histogram_edges_ms": edges[:-1] + ["inf"], "histogram": hist},
            "round_trips_per_s": float(1e3 / rtt.mean()) if len(rtt) else None,
            "inference_us_mean": float(np.mean(self.inference_us)) if self.inference_us else None,
        }


class HilClient:
    """Request/response over a Transport. `request` returns the matching reply or None on timeout."""

    def __init__(self, transport: Transport, timeout_s: float = 0.2) -> None:
        self.t = transport
        self.timeout_s = timeout_s
        self.decoder = P.FrameDecoder()
        self.stats = LinkStats()
        self.seq = 0
        self.pending: list[P.Packet] = []
        self.on_boot = None  # callback when the device reports a (re)boot

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def _handle_unsolicited(self, pkt: P.Packet) -> None:
        if pkt.type == P.STATUS:
            code = pkt.fields[0]
            self.stats.device_status[code] = self.stats.device_status.get(code, 0) + 1
            if code == P.STATUS_BOOT:
                self.stats.device_resets += 1
                if self.on_boot is not None:
                    self.on_boot()
        else:
            self.stats.stale_replies += 1

    def request(self, ptype: int, *fields, expect: int) -> P.Packet | None:
        seq = self._next_seq()
        self.stats.requests += 1
        t0 = time.perf_counter()
        self.t.write(P.encode_packet(ptype, seq, *fields))
        deadline = t0 + self.timeout_s
        while True:
            for pkt in self.pending:
                if pkt.seq == seq and pkt.type in (expect, P.STATUS) and not (
                        pkt.type == P.STATUS and pkt.fields[0] == P.STATUS_BOOT):
                    self.pending.remove(pkt)
                    # what arrived with the reply (a BOOT read in the same chunk as a HELLO_ACK) is handled now, so
                    # statistics reset after this request never count it
                    for other in self.pending:
                        self._handle_unsolicited(other)
                    self.pending.clear()
                    if pkt.type == P.STATUS:
                        self._handle_unsolicited(pkt)
                        return None
                    self.stats.replies += 1
                    self.stats.rtt_s.append(time.perf_counter() - t0)
                    return pkt
            for pkt in self.pending:
                self._handle_unsolicited(pkt)
            self.pending.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                self.stats.timeouts += 1
                return None
            self.pending.extend(self.decoder.feed(self.t.read(left)))

    def hello(self) -> P.Packet | None:
        return self.request(P.HELLO, P.MAGIC, expect=P.HELLO_ACK)

    def reset(self, native_every: int, control_interval_us: int, attempts: int = 5) -> bool:
        """RESET until acknowledged (it is idempotent: a lost RESET or RESET_ACK on a noisy link is sent again)."""
        for _ in range(attempts):
            if self.request(P.RESET, native_every, 0, control_interval_us, expect=P.RESET_ACK) is not None:
                return True
        return False

    def observe(self, timestamp_ns: int, obs17: np.ndarray) -> P.Packet | None:
        pkt = self.request(P.OBS, int(timestamp_ns), *map(float, obs17), expect=P.ACTION)
        if pkt is not None:
            self.stats.inference_us.append(pkt.fields[4])
        return pkt

    def close(self) -> None:
        self.t.close()
