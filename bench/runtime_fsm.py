"""Events per second through the dialog FSM, alone and with each session store, and the latency
from an event in to its actions out (FSM + the store write that precedes sending).

    .venv/bin/python -m bench.runtime_fsm [--seconds 3] [--sessions 20]

Each session runs the dtmf_menu example, pressing 2 (into the support menu) and * (back) in
turn, so every event is a transition with a say and a state change. Redis is measured against a
redis-server started on a free loopback port (skipped when the binary is missing).
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

from dialtone.conversation_runtime.config import EXAMPLES_DIR, StoreConfig
from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core.loader import load_dialog
from dialtone.conversation_runtime.store import SessionStore, open_store

KEYS = ("2", "*")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = [ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 for q in (0.5, 0.95, 0.99)]
    return f"p50 {pick[0]:.3f} ms  p95 {pick[1]:.3f} ms  p99 {pick[2]:.3f} ms"


def bench_fsm(seconds: float) -> None:
    dialog = load_dialog(Path(EXAMPLES_DIR) / "dtmf_menu.yaml")
    session, _ = engine.start(dialog, "bench", ev.CallInfo(), 0.0)
    samples: list[float] = []
    seq = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        seq += 1
        started = time.perf_counter()
        session, actions = engine.handle(dialog, session, ev.DtmfPressed(KEYS[(seq - 1) % 2]), seq * 0.001, seq)
        samples.append(time.perf_counter() - started)
        if len(actions) != 2:
            raise RuntimeError(f"expected a state change and a say per key, got {actions}")
    print(f"fsm only      : {len(samples) / sum(samples):8.0f} events/s  {percentiles(samples)}  "
          f"({len(samples)} events)")


async def bench_store(name: str, store: SessionStore, seconds: float, sessions: int) -> None:
    dialog = load_dialog(Path(EXAMPLES_DIR) / "dtmf_menu.yaml")
    samples: list[float] = []
    stop = time.perf_counter() + seconds

    async def one_call(index: int) -> None:
        session, _ = engine.start(dialog, f"bench-{name}-{index}", ev.CallInfo(), 0.0)
        await store.save(session)
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            started = time.perf_counter()
            session, actions = engine.handle(dialog, session, ev.DtmfPressed(KEYS[(seq - 1) % 2]), seq * 0.001, seq)
            await store.save(session)   # saved before the actions would be sent
            if len(actions) != 2:
                raise RuntimeError(f"expected a state change and a say per key, got {actions}")
            samples.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(one_call(i) for i in range(sessions)))
    elapsed = time.perf_counter() - began
    print(f"{name:<14}: {len(samples) / elapsed:8.0f} events/s  {percentiles(samples)}  "
          f"({len(samples)} events, {sessions} concurrent calls)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(seconds: float, sessions: int) -> None:
    bench_fsm(seconds)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(StoreConfig(kind="sqlite", path=str(Path(folder) / "bench.sqlite3")))
        for concurrent in (1, sessions):
            await bench_store("sqlite", store, seconds, concurrent)
        await store.close()
        binary = shutil.which("redis-server")
        if binary is None:
            print("redis         : skipped (no redis-server)")
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
            store = open_store(StoreConfig(kind="redis", url=f"redis://127.0.0.1:{port}/0"))
            for concurrent in (1, sessions):
                await bench_store("redis", store, seconds, concurrent)
            await store.close()
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.sessions))
