"""Test-side tools for RTP: tones, packets, sipp's pcaps, and a raw UDP peer we drive by hand."""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import struct
import time

import numpy as np
from aiortp.packet import RtpPacket
from dialtone.media_gateway.media.inband_dtmf import COL_HZ, KEYS, ROW_HZ
from dialtone.media_gateway.media_types import Direction, NegotiatedMedia

SIPP_PCAPS = pathlib.Path("/usr/share/sip-tester")


def sine(freq: float, ms: int, rate: int, dbfs: float = -12.0) -> bytes:
    n = rate * ms // 1000
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    samples = amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def dtmf_tone(key: str, ms: int, rate: int = 8000, dbfs: float = -10.0, twist_db: float = 0.0,
              noise_dbfs: float | None = None, seed: int = 1) -> bytes:
    """Key ``key`` for ``ms`` ms; twist_db > 0 makes the column tone quieter than the row tone."""
    row = next(i for i, keys in enumerate(KEYS) if key in keys)
    col = KEYS[row].index(key)
    n = rate * ms // 1000
    t = np.arange(n) / rate
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    x = amplitude * np.sin(2 * np.pi * ROW_HZ[row] * t)
    x += amplitude * 10 ** (-twist_db / 20) * np.sin(2 * np.pi * COL_HZ[col] * t)
    if noise_dbfs is not None:
        x += np.random.default_rng(seed).normal(0, 32768 * 10 ** (noise_dbfs / 20), n)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def silence(ms: int, rate: int = 8000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def level_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
    return 20 * np.log10(rms / 32768) if rms > 0 else -120.0


def rtp(seq: int, ts: int, payload: bytes, pt: int = 0, ssrc: int = 0x1234, marker: int = 0) -> bytes:
    return RtpPacket(payload_type=pt, marker=marker, sequence_number=seq & 0xFFFF,
                     timestamp=ts & 0xFFFFFFFF, ssrc=ssrc, payload=payload).serialize()


def media(codec: str = "PCMU", pt: int = 0, port: int = 9, *, rate: int | None = None, te: int | None = 101,
          ptime: int = 20, direction: Direction = Direction.SENDRECV, host: str = "127.0.0.1") -> NegotiatedMedia:
    clock = rate or (48000 if codec == "opus" else 8000)
    return NegotiatedMedia(codec=codec, payload_type=pt, clock_rate=clock, channels=2 if codec == "opus" else 1,
                           ptime_ms=ptime, telephone_event_pt=te, remote_host=host, remote_port=port,
                           direction=direction)


@dataclasses.dataclass(frozen=True)
class PcapPacket:
    at: float           # seconds from the first packet
    rtp: bytes          # the UDP payload


def read_pcap_rtp(name: str) -> list[PcapPacket]:
    """UDP payloads of an Ethernet/IPv4 pcap such as sipp's (a few lines; no pcap library needed)."""
    data = (SIPP_PCAPS / name).read_bytes()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and link == 1, "expected a little-endian Ethernet pcap"
    out: list[PcapPacket] = []
    offset, first = 24, None
    while offset + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        ip = frame[14:]
        udp = ip[(ip[0] & 0x0F) * 4:]
        stamp = sec + usec / 1e6
        first = stamp if first is None else first
        out.append(PcapPacket(stamp - first, bytes(udp[8:])))
    return out


class RawPeer(asyncio.DatagramProtocol):
    """A bare UDP socket on loopback: sends what the test says, records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[float, RtpPacket]] = []
        self.rtcp: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.arrived = asyncio.Event()

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> RawPeer:
        peer = cls()
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: peer, local_addr=(host, 0))
        return peer

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 2 and 192 <= data[1] <= 208:
            self.rtcp.append(data)
            return
        self.received.append((time.monotonic(), RtpPacket.parse(data)))
        self.arrived.set()

    def send(self, data: bytes, port: int, host: str = "127.0.0.1") -> None:
        assert self.transport is not None
        self.transport.sendto(data, (host, port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def wait_until(predicate, timeout: float = 5.0, step: float = 0.01) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` (bounded); fail the test with a clear message when it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
