"""Test support for the SIP tests: a recording SpeechGateway stand-in (real grpc.aio server),
the gateway app started in-process on free ports, and a sipp runner."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.media.ports import PortAllocator
from dialtone.media_gateway.service import MediaGatewayApp
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

from tests.media_gateway.media_spy import MediaSpy

SCENARIOS = Path(__file__).parent / "scenarios"
PCAPS = Path("/usr/share/sip-tester")


@dataclasses.dataclass
class StreamRecord:
    uplink: list[spb.MediaUplink] = dataclasses.field(default_factory=list)
    down: asyncio.Queue[spb.MediaDownlink] = dataclasses.field(default_factory=asyncio.Queue)
    ended: bool = False

    @property
    def session_id(self) -> str:
        return self.uplink[0].session_id if self.uplink else ""

    def of(self, kind: str) -> list[Any]:
        return [getattr(m, kind) for m in self.uplink if m.WhichOneof("payload") == kind]

    def send(self, **payload: Any) -> None:
        self.down.put_nowait(spb.MediaDownlink(session_id=self.session_id, **payload))


class RecordingSpeech(spb_grpc.SpeechGatewayServicer):
    """Records every uplink message per stream; tests push downlink messages with ``StreamRecord.send``."""

    def __init__(self) -> None:
        self.streams: list[StreamRecord] = []
        self.break_after_messages: int | None = None   # abort the first stream after N uplink messages

    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],  # noqa: N802
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        record = StreamRecord()
        self.streams.append(record)
        breaking = self.break_after_messages is not None and len(self.streams) == 1

        async def read() -> None:
            async for message in request_iterator:
                record.uplink.append(message)
                if breaking and len(record.uplink) >= (self.break_after_messages or 0):
                    return

        reader = asyncio.create_task(read())
        try:
            while True:
                getter = asyncio.create_task(record.down.get())
                done, _ = await asyncio.wait({reader, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                if breaking:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "test: replica going away")
                return
        finally:
            record.ended = True
            reader.cancel()

    def sessions(self) -> dict[str, list[StreamRecord]]:
        out: dict[str, list[StreamRecord]] = {}
        for record in self.streams:
            out.setdefault(record.session_id, []).append(record)
        return out


async def start_speech(host: str = "127.0.0.1", port: int = 0,
                       options: list[tuple[str, Any]] | None = None) -> tuple[grpc.aio.Server, RecordingSpeech, str]:
    server = grpc.aio.server(options=options)
    speech = RecordingSpeech()
    spb_grpc.add_SpeechGatewayServicer_to_server(speech, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, speech, f"{host}:{bound}"


def gateway_config(speech_address: str, **sip: Any) -> MediaGatewayConfig:
    config = MediaGatewayConfig()
    config.speech_gateway_address = speech_address
    config.sip.port = 0
    config.grpc.port = 0
    config.metrics.enabled = False
    for key, value in sip.items():
        setattr(config.sip, key, value)
    return config


async def start_gateway(config: MediaGatewayConfig) -> MediaGatewayApp:
    """The gateway in-process with the real MediaSession (behind a recording spy)."""
    allocator = PortAllocator(config.rtp.port_low, config.rtp.port_high)
    app = MediaGatewayApp(config, media_factory=MediaSpy.factory(allocator))
    await app.start()
    return app


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclasses.dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str


async def run_sipp(scenario: str, gateway_port: int | None, tmp_path: Path, *, calls: int = 1, timeout: float = 40.0,
                   extra: list[str] | None = None, listen_port: int | None = None) -> SippResult:
    """Run sipp (real binary) with one of our scenarios against the gateway; never blocks the loop.

    ``gateway_port`` None with ``listen_port``: sipp is the UAS, waiting on that port."""
    binary = shutil.which("sipp")
    if binary is None:
        raise AssertionError("sipp is not installed (Debian package sip-tester; scripts/system-deps.sh test)")
    error_file = tmp_path / f"{scenario}_errors.log"
    target = [f"127.0.0.1:{gateway_port}"] if gateway_port is not None else []
    args = [binary, *target, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-m", str(calls),
            "-i", "127.0.0.1", "-p", str(listen_port or free_udp_port()), "-mp", str(free_media_port()),
            "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-nd", "-trace_err",
            "-error_file", str(error_file), "-key", "pcaps", str(PCAPS), "-key", "tmp", str(tmp_path),
            *(extra or [])]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                cwd=tmp_path)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    errors = error_file.read_text(errors="replace") if error_file.exists() else ""
    return SippResult(proc.returncode or 0, out.decode(errors="replace")[-3000:], err.decode(errors="replace")[-3000:],
                      errors[-3000:])


def free_media_port() -> int:
    """An even UDP port with the next three free too: sipp binds audio RTP/RTCP at -mp and video at -mp+2."""
    import socket

    for _ in range(200):
        base = free_udp_port(even=True)
        sockets = []
        try:
            for offset in range(4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise AssertionError("no four free consecutive UDP ports for sipp media")


def free_udp_port(even: bool = False) -> int:
    import socket

    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not even or port % 2 == 0:
            return port
    raise AssertionError("no free UDP port")


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = a & 0x80, (a >> 4) & 7, a & 0x0F
    sample = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, sample, -sample).astype(np.int16)


ALAW = _alaw_table()


def _ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """16-bit linear -> G.711 µ-law (ITU-T G.711 segment encoding)."""
    bias, clip = 0x84, 32635
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    x = np.minimum(np.abs(x), clip) + bias
    exponent = np.floor(np.log2(x >> 7).clip(min=1e-9)).astype(np.int32).clip(0, 7)
    exponent = np.where((x >> 7) == 0, 0, exponent)
    mantissa = (x >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def pcmu_pcap_from_g711a(target: Path) -> Path:
    """sipp ships only a PCMA pcap; transcode its payloads to PCMU (PT 0) for the PCMU call."""
    data = (PCAPS / "g711a.pcap").read_bytes()
    out = bytearray(data[:24])
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        packet = bytearray(data[offset + 16:offset + 16 + incl])
        ip = 14
        ihl = (packet[ip] & 0x0F) * 4
        udp = ip + ihl
        rtp = udp + 8
        packet[rtp + 1] = (packet[rtp + 1] & 0x80) | 0
        payload = np.frombuffer(bytes(packet[rtp + 12:]), dtype=np.uint8)
        packet[rtp + 12:] = _ulaw_encode(ALAW[payload]).tobytes()
        packet[udp + 6:udp + 8] = b"\x00\x00"  # UDP checksum: optional over IPv4
        out += data[offset:offset + 16] + packet
        offset += 16 + incl
    target.write_bytes(bytes(out))
    return target
