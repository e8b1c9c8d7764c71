"""WebRTC softphone: setup latency per call, and the media gateway's CPU per concurrent browser call.

The media gateway runs as its own process (`python -m dialtone media-gateway`, webrtc enabled,
ICE on 127.0.0.1); this process holds a minimal speech gateway (grpc.aio, free loopback port)
that answers every call with a 2 s greeting and then an endless tone, and aiortc peers in the
browser's role (Opus, DTLS-SRTP, a 440 Hz "microphone"). Measured:

1. over ``--n`` sequential calls: POST /api/offer round trip, answer -> ICE+DTLS connected,
   connected -> first greeting audio heard by the peer (p50/p95/p99);
2. ``--concurrent`` calls held for ``--seconds`` with audio both ways: the gateway process's CPU
   (from /proc, so the peers' own Opus work is not counted) per call, and calls per core.

    .venv/bin/python -m bench.webrtc_calls [--n 20] [--concurrent 10] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import numpy as np
from dialtone.common.server import wait_serving
from dialtone.media_gateway.webrtc.ice import use_host_addresses
from dialtone.media_gateway.webrtc.testing import BrowserLikePeer
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

PREFIX = "DIALTONE_MEDIA_GATEWAY__"
TONE = (np.sin(2 * np.pi * 440 * np.arange(32000) / 16000) * 12000).astype("<i2").tobytes()  # 2 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Greeter(spb_grpc.SpeechGatewayServicer):
    """Plays a tone for as long as the call lasts (so outbound audio flows the whole time)."""

    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        first = await anext(request_iterator)
        drain = asyncio.create_task(self._drain(request_iterator))
        seq = 0
        try:
            while not drain.done():
                seq += 1
                yield spb.MediaDownlink(session_id=first.session_id, seq=seq, play_audio=spb.PlayAudio(
                    utterance_id=f"u{seq}", pcm=TONE, sample_rate=16000, last=True))
                await asyncio.sleep(1.9)
        finally:
            drain.cancel()

    @staticmethod
    async def _drain(request_iterator: AsyncIterator[spb.MediaUplink]) -> None:
        async for _ in request_iterator:
            pass


def pct(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:7.1f}  p95 {q[94]:7.1f}  p99 {q[98]:7.1f}  (n={len(values)})"


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def one_call(client: httpx.AsyncClient, hold_s: float = 0.0) -> tuple[float, float, float]:
    peer = BrowserLikePeer()
    offer = await peer.offer()
    t0 = time.perf_counter()
    answer = (await client.post("/api/offer", json={"sdp": offer})).json()
    t_answer = time.perf_counter()
    await peer.accept(answer["sdp"])
    for _ in range(2500):
        if peer.pc.connectionState == "connected":
            break
        await asyncio.sleep(0.002)
    t_connected = time.perf_counter()
    for _ in range(2500):
        if any(level > -30.0 for level in peer.levels):
            break
        await asyncio.sleep(0.002)
    t_heard = time.perf_counter()
    await asyncio.sleep(hold_s)
    await client.post("/api/hangup", json={"session_id": answer["session_id"]})
    await peer.close()
    return (t_answer - t0) * 1000, (t_connected - t_answer) * 1000, (t_heard - t_connected) * 1000


async def main(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    speech = grpc.aio.server()
    spb_grpc.add_SpeechGatewayServicer_to_server(Greeter(), speech)
    speech_address = f"127.0.0.1:{speech.add_insecure_port('127.0.0.1:0')}"
    await speech.start()
    grpc_port, webrtc_port = free_port(), free_port()
    env = dict(os.environ, **{
        PREFIX + "GRPC__PORT": str(grpc_port), PREFIX + "METRICS__ENABLED": "false", PREFIX + "SIP__PORT": "0",
        PREFIX + "SPEECH_GATEWAY_ADDRESS": speech_address, PREFIX + "WEBRTC__ENABLED": "true",
        PREFIX + "WEBRTC__PORT": str(webrtc_port), PREFIX + "WEBRTC__ICE_HOST_ADDRESSES": '["127.0.0.1"]',
        PREFIX + "LOG__LEVEL": "WARNING"})
    with tempfile.TemporaryFile() as log:
        gateway = subprocess.Popen([sys.executable, "-m", "dialtone", "media-gateway"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            if not await wait_serving(f"127.0.0.1:{grpc_port}", 60.0):
                log.seek(0)
                raise RuntimeError("media gateway did not start:\n" + log.read().decode(errors="replace"))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{webrtc_port}", timeout=30.0) as client:
                answers, connects, heard = [], [], []
                for _ in range(args.n):
                    a, c, h = await one_call(client)
                    answers.append(a)
                    connects.append(c)
                    heard.append(h)
                print(f"offer -> answer (HTTP round trip) ms   {pct(answers)}")
                print(f"answer -> ICE+DTLS connected ms        {pct(connects)}")
                print(f"connected -> greeting heard at peer ms {pct(heard)}")

                calls = [asyncio.create_task(one_call(client, hold_s=args.seconds + 2)) for _ in range(args.concurrent)]
                await asyncio.sleep(2.0)  # all set up and flowing
                cpu0, wall0 = process_cpu_s(gateway.pid), time.perf_counter()
                await asyncio.sleep(args.seconds)
                cpu, wall = process_cpu_s(gateway.pid) - cpu0, time.perf_counter() - wall0
                await asyncio.gather(*calls)
            per_call = cpu / wall / args.concurrent
            print(f"{args.concurrent} concurrent calls, audio both ways, {wall:.1f} s: gateway process "
                  f"{cpu / wall:.2f} cores, {per_call * 1000:.0f} CPU ms per call-second -> ~{1 / per_call:.0f} "
                  f"calls per core (peers on the same {os.cpu_count()} cores)")
        finally:
            gateway.terminate()
            gateway.wait(15)
            await speech.stop(0.5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
