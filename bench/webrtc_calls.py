"""WebRTC softphone: setup latency per call and CPU per concurrent call.

In one process: the softphone HTTP server, a minimal speech gateway (grpc.aio on a free
loopback port) that answers every call with a 2 s greeting, and aiortc peers in the browser's
role (Opus, DTLS-SRTP, a 440 Hz "microphone"). Measures, over ``--n`` sequential calls:
POST /api/offer round trip, answer -> ICE+DTLS connected, connected -> first greeting audio at
the peer; then ``--concurrent`` calls held for ``--seconds``: process CPU seconds per call per
second (the peers' Opus work included, so the gateway alone costs less), and the outbound
pacing (interval between frames handed to the encoder).

    .venv/bin/python -m bench.webrtc_calls [--n 20] [--concurrent 10] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import grpc
import httpx
import numpy as np
from dialtone.media_gateway.webrtc.config import WebRtcConfig
from dialtone.media_gateway.webrtc.http_server import WebRtcServer
from dialtone.media_gateway.webrtc.testing import BrowserLikePeer
from dialtone.media_gateway.webrtc.tracks import PlayoutTrack
from dialtone.media_gateway.webrtc.wiring import speech_link_factory
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

GREETING = (np.sin(2 * np.pi * 440 * np.arange(32000) / 16000) * 12000).astype("<i2").tobytes()


class Greeter(spb_grpc.SpeechGatewayServicer):
    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        first = await anext(request_iterator)
        yield spb.MediaDownlink(session_id=first.session_id, seq=1, play_audio=spb.PlayAudio(
            utterance_id="greeting", pcm=GREETING, sample_rate=16000, last=True))
        async for _ in request_iterator:
            pass


def pct(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:7.1f}  p95 {q[94]:7.1f}  p99 {q[98]:7.1f}  (n={len(values)})"


async def one_call(client: httpx.AsyncClient, hold_s: float = 0.0) -> tuple[float, float, float]:
    peer = BrowserLikePeer()
    offer = await peer.offer()
    t0 = time.perf_counter()
    answer = (await client.post("/api/offer", json={"sdp": offer})).json()
    t_answer = time.perf_counter()
    await peer.accept(answer["sdp"])
    for _ in range(1000):
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
    grpc_server = grpc.aio.server()
    spb_grpc.add_SpeechGatewayServicer_to_server(Greeter(), grpc_server)
    address = f"127.0.0.1:{grpc_server.add_insecure_port('127.0.0.1:0')}"
    await grpc_server.start()
    softphone = WebRtcServer(WebRtcConfig(port=0), speech_link_factory(address))
    port = await softphone.start()

    intervals: list[float] = []
    original_recv = PlayoutTrack.recv

    async def timed_recv(self: PlayoutTrack):  # type: ignore[no-untyped-def]
        frame = await original_recv(self)
        now = time.perf_counter()
        last = getattr(timed_recv, "last", {})
        if id(self) in last:
            intervals.append((now - last[id(self)]) * 1000)
        last[id(self)] = now
        timed_recv.last = last  # type: ignore[attr-defined]
        return frame

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
        answers, connects, heard = [], [], []
        for _ in range(args.n):
            a, c, h = await one_call(client)
            answers.append(a)
            connects.append(c)
            heard.append(h)
        print(f"offer -> answer (HTTP round trip) ms   {pct(answers)}")
        print(f"answer -> ICE+DTLS connected ms        {pct(connects)}")
        print(f"connected -> greeting heard at peer ms {pct(heard)}")

        PlayoutTrack.recv = timed_recv  # type: ignore[method-assign]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one_call(client, hold_s=args.seconds) for _ in range(args.concurrent)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        PlayoutTrack.recv = original_recv  # type: ignore[method-assign]
        per_call = cpu / wall / args.concurrent
        print(f"{args.concurrent} concurrent calls for {wall:.1f} s: {cpu / wall:.2f} CPU cores in all, "
              f"{per_call * 1000:.0f} CPU ms per call-second (peers included) -> ~{1 / per_call:.0f} calls per core")
        print(f"outbound frame interval ms             {pct(intervals)}")

    await softphone.close()
    await grpc_server.stop(0.5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
