"""Concurrent RTP calls with media both ways: CPU per call, late frames, send jitter.

N MediaSessions (this process) each play a tone and receive a PCMU stream from a peer process
(one UDP socket per call, all paced by one absolute-deadline loop). Per step: our process CPU %
divided by N, the share of send ticks that ran late (> 10 ms) or were skipped, the lateness of
send ticks behind their deadline (p50/p95/p99), and the spacing of packets as they arrive at
the peer (deviation from 20 ms, p50/p95/p99). ``load1`` is the machine's load average: on a
shared box, late% and jitter above a few calls measure the contention, cpu%/call does not.

    .venv/bin/python -m bench.media_rtp_calls [--steps 10,25,50,100] [--seconds 5] [--codec PCMU]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import os
import resource
import socket
import struct
import time

import numpy as np

MEASURE_WARMUP_S = 1.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return min(int(sock.getsockname()[1]), 60000)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return float(p50), float(p95), float(p99)


# ── the peer process: sends PCMU to every session, records arrival spacing ──

class _PeerSocket(asyncio.DatagramProtocol):
    def __init__(self, measure_from: float, deviations: list[float]) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._measure_from = measure_from
        self._deviations = deviations
        self._last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        arrived = time.monotonic()
        if len(data) < 12 or 192 <= data[1] <= 208:
            return  # RTCP
        if self._last and arrived >= self._measure_from:
            self._deviations.append(abs(arrived - self._last - 0.020))
        self._last = arrived


async def _peer_main(conn: multiprocessing.connection.Connection, n: int, seconds: float) -> None:
    from aiortp.codecs import PcmuCodec

    loop = asyncio.get_running_loop()
    tone = np.sin(2 * np.pi * 300 * np.arange(160) / 8000) * 6000
    payload = PcmuCodec().encode(tone.astype("<i2").tobytes())
    deviations: list[float] = []
    measure_from = time.monotonic() + MEASURE_WARMUP_S + 0.5
    peers = []
    for _ in range(n):
        _, proto = await loop.create_datagram_endpoint(lambda: _PeerSocket(measure_from, deviations),
                                                       local_addr=("127.0.0.1", 0))
        peers.append(proto)
    conn.send([p.transport.get_extra_info("sockname")[1] for p in peers])
    targets = await loop.run_in_executor(None, conn.recv)
    start = loop.time()
    for seq in range(int((seconds + MEASURE_WARMUP_S + 0.5) / 0.020)):
        await asyncio.sleep(max(0.0, start + seq * 0.020 - loop.time()))
        header = struct.pack("!BBHI", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF)
        for i, peer in enumerate(peers):
            peer.transport.sendto(header + struct.pack("!I", 0x1000 + i) + payload, ("127.0.0.1", targets[i]))
    conn.send(deviations)
    for peer in peers:
        peer.transport.close()


def _peer(conn: multiprocessing.connection.Connection, n: int, seconds: float) -> None:
    asyncio.run(_peer_main(conn, n, seconds))


# ── our side ──

async def _step(n: int, seconds: float, codec: str) -> dict[str, float]:
    from dialtone.common.audio import SAMPLE_RATE
    from dialtone.media_gateway.media import MediaSession, PortAllocator
    from dialtone.media_gateway.media_types import Direction, NegotiatedMedia

    parent, child = multiprocessing.Pipe()
    peer = multiprocessing.get_context("spawn").Process(target=_peer, args=(child, n, seconds), daemon=True)
    peer.start()
    peer_ports = parent.recv()
    base = _free_udp_port() & ~1
    allocator = PortAllocator(base, min(65536, base + 4 * n + 400))
    frames = [0]
    pts = {"PCMU": (0, 8000), "PCMA": (8, 8000), "opus": (111, 48000)}
    pt, rate = pts[codec]
    tone = (np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE * int(seconds + 3)) / SAMPLE_RATE) * 8000)
    pcm = tone.astype("<i2").tobytes()

    def on_frame(_frame: bytes, _ts: int) -> None:
        frames[0] += 1

    sessions = []
    for i in range(n):
        session = await MediaSession.open(session_id=f"bench-{i}", bind_host="127.0.0.1",
                                          port_allocator=allocator, on_frame=on_frame,
                                          on_dtmf=lambda d: None, on_playback=lambda r: None)
        session.start(NegotiatedMedia(codec, pt, rate, 1, 20, 101, "127.0.0.1", peer_ports[i],
                                      Direction.SENDRECV))
        session.play("tone", pcm, SAMPLE_RATE, last=True)
        sessions.append(session)
    parent.send([s.local_port for s in sessions])
    await asyncio.sleep(MEASURE_WARMUP_S)
    ticks0 = [s.stats()["packets_out"] for s in sessions]
    late0 = [s.stats()["late_frames"] for s in sessions]
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = _cpu_seconds() - cpu0, time.monotonic() - wall0
    sent = sum(s.stats()["packets_out"] - t for s, t in zip(sessions, ticks0, strict=True))
    late = sum(s.stats()["late_frames"] - t for s, t in zip(sessions, late0, strict=True))
    window = int(seconds / 0.020)
    lateness = [x for s in sessions for x in s.send_lateness()[-window:]]
    received = sum(s.stats()["packets_in"] for s in sessions)
    for session in sessions:
        await session.close()
    deviations = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    peer.join(5)
    send = _percentiles([x * 1000 for x in lateness])
    wire = _percentiles([x * 1000 for x in deviations])
    return {"n": n, "cpu_pct": 100 * cpu / wall, "cpu_per_call": 100 * cpu / wall / n,
            "late_pct": 100 * late / max(1, sent + late), "sent": sent, "received": received,
            "send_p50": send[0], "send_p95": send[1], "send_p99": send[2],
            "wire_p50": wire[0], "wire_p95": wire[1], "wire_p99": wire[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,25,50,100")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--codec", default="PCMU", choices=["PCMU", "PCMA", "opus"])
    args = parser.parse_args()
    steps = [max(1, min(200, int(x))) for x in args.steps.split(",")]
    print(f"codec {args.codec}, {args.seconds:.0f} s per step, {os.cpu_count()} CPUs; "
          "send = tick lateness behind deadline, wire = |arrival spacing - 20 ms| at the peer (ms)")
    print(f"{'calls':>5} {'cpu%':>6} {'cpu%/call':>9} {'late%':>6} "
          f"{'send p50':>8} {'p95':>6} {'p99':>6} {'wire p50':>8} {'p95':>6} {'p99':>6} {'load1':>6}")
    for n in steps:
        r = asyncio.run(_step(n, args.seconds, args.codec))
        print(f"{n:>5} {r['cpu_pct']:>6.1f} {r['cpu_per_call']:>9.2f} {r['late_pct']:>6.2f} "
              f"{r['send_p50']:>8.2f} {r['send_p95']:>6.2f} {r['send_p99']:>6.2f} "
              f"{r['wire_p50']:>8.2f} {r['wire_p95']:>6.2f} {r['wire_p99']:>6.2f} {os.getloadavg()[0]:>6.1f}",
              flush=True)


if __name__ == "__main__":
    main()
