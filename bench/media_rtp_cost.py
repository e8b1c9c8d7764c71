"""CPU cost of one RTP call leg per 20 ms, by codec: send + receive + decode + resample + playout.

Pairs of MediaSessions in this process play a tone to each other; CPU time is divided by the
packets actually sent, so a loaded machine (skipped ticks) does not flatter the figure.
Prints µs per leg per 20 ms, % of a core per call and calls per core, and p50/p95/p99 of
send-tick lateness.

    .venv/bin/python -m bench.media_rtp_cost [--pairs 10] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time

import numpy as np

CODECS = (("PCMU", 0, 8000), ("PCMA", 8, 8000), ("opus", 111, 48000))


async def _measure(codec: str, pt: int, rate: int, pairs: int, seconds: float) -> tuple[float, list[float]]:
    from dialtone.common.audio import SAMPLE_RATE
    from dialtone.media_gateway.media import MediaSession, PortAllocator
    from dialtone.media_gateway.media_types import Direction, NegotiatedMedia

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        base = min(int(probe.getsockname()[1]), 60000) & ~1
    allocator = PortAllocator(base, base + 8 * pairs + 200)
    tone = (np.sin(2 * np.pi * 440 * np.arange(int(SAMPLE_RATE * (seconds + 2))) / SAMPLE_RATE) * 8000)
    pcm = tone.astype("<i2").tobytes()
    sessions: list[MediaSession] = []

    def ignore(*_args: object) -> None:
        return None

    for _ in range(pairs):
        a, b = [await MediaSession.open(session_id="cost", bind_host="127.0.0.1", port_allocator=allocator,
                                        on_frame=ignore, on_dtmf=ignore, on_playback=ignore) for _ in range(2)]
        a.start(NegotiatedMedia(codec, pt, rate, 1, 20, 101, "127.0.0.1", b.local_port, Direction.SENDRECV))
        b.start(NegotiatedMedia(codec, pt, rate, 1, 20, 101, "127.0.0.1", a.local_port, Direction.SENDRECV))
        a.play("tone", pcm, SAMPLE_RATE, last=True)
        b.play("tone", pcm, SAMPLE_RATE, last=True)
        sessions += [a, b]
    await asyncio.sleep(0.5)
    sent0 = sum(s.stats()["packets_out"] for s in sessions)
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    sent = sum(s.stats()["packets_out"] for s in sessions) - sent0
    window = int(seconds / 0.020)
    lateness = [x * 1000 for s in sessions for x in s.send_lateness()[-window:]]
    for session in sessions:
        await session.close()
    return cpu / max(1.0, sent), lateness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    pairs = max(1, min(50, args.pairs))
    print(f"{2 * pairs} legs per codec, {args.seconds:.0f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'codec':>6} {'us/20ms':>8} {'%core/call':>10} {'calls/core':>10} {'late p50':>8} {'p95':>6} {'p99':>6}")
    for codec, pt, rate in CODECS:
        per_tick, lateness = asyncio.run(_measure(codec, pt, rate, pairs, args.seconds))
        p50, p95, p99 = np.percentile(np.asarray(lateness or [float("nan")]), [50, 95, 99])
        print(f"{codec:>6} {per_tick * 1e6:>8.0f} {per_tick / 0.020 * 100:>10.2f} {0.020 / per_tick:>10.0f} "
              f"{p50:>8.2f} {p95:>6.2f} {p99:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
