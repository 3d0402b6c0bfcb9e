"""The raptor HIL wire protocol, host side (hil/PROTOCOL.md): COBS framing, CRC-32, packets, a resyncing decoder.

Frame on the wire: 0x00 COBS(packet) 0x00 (the leading delimiter cuts off any garbage before the frame).
Packet (little-endian):
    version u8 | type u8 | seq u16 | payload (fixed size per type) | crc32 u32 (zlib's, over the bytes before it)
The decoder never raises on bad input: it counts garbage and resynchronizes at the next 0x00.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 2  # 2: HELLO_ACK carries the policy id
MAX_PACKET = 96

MAX_FRAME = MAX_PACKET + MAX_PACKET // 254 + 3

HELLO, RESET, OBS = 0x01, 0x02, 0x03
HELLO_ACK, RESET_ACK, ACTION, STATUS = 0x81, 0x82, 0x83, 0x84
MAGIC = 0x52545052  # "RPTR"
STATUS_BOOT, STATUS_BAD_FRAME, STATUS_UNKNOWN_TYPE, STATUS_BAD_LENGTH, STATUS_NOT_RESET = 1, 2, 3, 4, 5

# payload layouts (struct formats, little-endian)
PAYLOAD = {
    HELLO: "<I",  # magic
    RESET: "<HHI",  # native_every, reserved, control_interval_us
    OBS: "<Q17f",  # timestamp_ns, p(3) q(4) v(3) w(3) previous_action(4)
    HELLO_ACK: "<HHIfI16s",  # version, reserved, num_parameters, self_test_error, frames_bad, policy_id
    RESET_ACK: "<I",  # status
    ACTION: "<4fII",  # action(4), inference_us, status
    STATUS: "<HHI",  # code, detail, frames_bad
}


def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Decoded bytes, or None if data is not a valid COBS encoding."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            return None
        block = data[i:i + code - 1]
        if 0 in block:
            return None
        out += block
        i += code - 1
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_packet(ptype: int, seq: int, *fields) -> bytes:
    """A complete frame (delimiter, COBS, delimiter) of a packet with the given payload fields."""
    body = struct.pack("<BBH", VERSION, ptype, seq & 0xFFFF) + struct.pack(PAYLOAD[ptype], *fields)
    return b"\x00" + cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


@dataclass(frozen=True)
class Packet:
    type: int
    seq: int
    fields: tuple


@dataclass
class DecoderStats:
    frames_ok: int = 0
    frames_bad: int = 0  # garbage, truncated, bad COBS, bad CRC, wrong version or size
    bytes_dropped: int = 0  # bytes of bad frames
    overflows: int = 0


@dataclass
class FrameDecoder:
    """Incremental decoder: feed arbitrary bytes, get the valid packets; counts everything else."""

    stats: DecoderStats = field(default_factory=DecoderStats)
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> list[Packet]:
        out: list[Packet] = []
        data = bytes(data)
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                return out
            self._append(data[start:end])
            frame, overflow = bytes(self._buf), self._overflow
            self._buf.clear()
            self._overflow = False
            start = end + 1
            if not frame and not overflow:
                continue  # idle delimiters
            pkt = None if overflow else self._parse(frame)
            if pkt is None:
                self.stats.frames_bad += 1
                self.stats.bytes_dropped += len(frame)
            else:
                self.stats.frames_ok += 1
                out.append(pkt)

    def _append(self, data: bytes) -> None:
        if len(self._buf) + len(data) > MAX_FRAME:
            if not self._overflow:
                self.stats.overflows += 1
            self._overflow = True
            self.stats.bytes_dropped += len(data)
            return
        self._buf += data

    @staticmethod
    def _parse(frame: bytes) -> Packet | None:
        raw = cobs_decode(frame)
        if raw is None or len(raw) < 8 or len(raw) > MAX_PACKET:
            return None
        body, (crc,) = raw[:-4], struct.unpack("<I", raw[-4:])
        if zlib.crc32(body) != crc:
            return None
        version, ptype, seq = struct.unpack("<BBH", body[:4])
        fmt = PAYLOAD.get(ptype)
        if version != VERSION or fmt is None or struct.calcsize(fmt) != len(body) - 4:
            return None
        return Packet(ptype, seq, struct.unpack(fmt, body[4:]))
