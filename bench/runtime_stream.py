"""Event in -> actions out through the runtime's gRPC stream (in-process server, loopback client),
with each store: what the speech gateway sees.

    .venv/bin/python -m bench.runtime_stream [--seconds 3] [--calls 10]

Each call runs the dtmf_menu example, pressing 2 and * in turn; every key is a transition whose
two actions (a state change and a say) are read back before the next key is sent. Redis is
measured against a redis-server started on a free loopback port (skipped when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from dialtone.common.server import create_server
from dialtone.conversation_runtime.config import ConversationRuntimeConfig, StoreConfig
from dialtone.conversation_runtime.service import ConversationRuntimeApp
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb
from dialtone.v1 import conversation_runtime_pb2_grpc as pb_grpc

KEYS = ("2", "*")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = [ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 for q in (0.5, 0.95, 0.99)]
    return f"p50 {pick[0]:.2f} ms  p95 {pick[1]:.2f} ms  p99 {pick[2]:.2f} ms"


async def one_call(address: str, session_id: str, stop: float, samples: list[float]) -> None:
    queue: asyncio.Queue[pb.SpeechEvent | None] = asyncio.Queue()

    async def requests():
        while (item := await queue.get()) is not None:
            yield item

    async with grpc.aio.insecure_channel(address) as channel:
        call = pb_grpc.ConversationRuntimeStub(channel).Converse(requests())
        info = common_pb2.CallInfo(caller="sip:bench@127.0.0.1", callee="1", dialog="dtmf_menu")
        await queue.put(pb.SpeechEvent(session_id=session_id, seq=1, call_started=pb.CallStarted(call=info)))
        while (await call.read()).WhichOneof("payload") != "say":   # state_changed, say (and its openings)
            pass
        seq = 1
        while time.perf_counter() < stop:
            seq += 1
            started = time.perf_counter()
            await queue.put(pb.SpeechEvent(session_id=session_id, seq=seq,
                                           dtmf=common_pb2.Dtmf(digit=KEYS[seq % 2])))
            for _ in range(2):
                action = await call.read()
                if action is grpc.aio.EOF:
                    raise RuntimeError("the stream ended")
            samples.append(time.perf_counter() - started)
        await queue.put(None)
        call.cancel()


async def bench(name: str, store: StoreConfig, seconds: float, calls: int) -> None:
    config = ConversationRuntimeConfig(store=store, reload_interval_s=0, integration_address="127.0.0.1:9")
    app = ConversationRuntimeApp(config)
    running, port = create_server(config, app)
    await app.start()
    await running.server.start()
    try:
        samples: list[float] = []
        stop = time.perf_counter() + seconds
        began = time.perf_counter()
        await asyncio.gather(*(one_call(f"127.0.0.1:{port}", f"bench-{name}-{i}-{time.time_ns()}", stop, samples)
                               for i in range(calls)))
        elapsed = time.perf_counter() - began
        print(f"{name:<8} {calls:>3} calls: {len(samples) / elapsed:7.0f} events/s  {percentiles(samples)}  "
              f"({len(samples)} events)")
    finally:
        await running.server.stop(0)
        await app.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(seconds: float, calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for count in (1, calls):
            await bench("sqlite", StoreConfig(kind="sqlite", path=str(Path(folder) / "s.sqlite3")), seconds, count)
        binary = shutil.which("redis-server")
        if binary is None:
            print("redis: skipped (no redis-server)")
            return
        port = free_port()
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", folder],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            for count in (1, calls):
                await bench("redis", StoreConfig(kind="redis", url=f"redis://127.0.0.1:{port}/0"), seconds, count)
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.calls))
