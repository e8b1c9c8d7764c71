"""Integration gateway: latency Invoke adds over a direct httpx call to the same local
backend, and Invokes per second per core of the gateway process.

Runs the example backend and one gateway (in-process store) as processes on free
loopback ports, then:
1. N direct ``GET /orders/12345`` calls with one pooled httpx client, interleaved with
   N ``Invoke(orders.get_status)`` calls (fresh idempotency keys, so every one reaches the
   backend), one at a time;
3. for ``--seconds``, ``--concurrency`` Invokes in flight; Invokes/s, and Invokes per CPU
   second of the gateway process (= per core, the gateway being one asyncio process).

    .venv/bin/python -m bench.integration_invoke [--n 1000] [--seconds 5] [--concurrency 32] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
from dialtone.common.server import wait_serving
from dialtone.integration_gateway.config import EXAMPLE_SERVICES_FILE
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc

PREFIX = "DIALTONE_INTEGRATION_GATEWAY__"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "mean": statistics.fmean(ordered) * 1000}


def show(name: str, stats: dict[str, float]) -> None:
    print(f"{name:<28} p50 {stats['p50']:7.3f} ms  p95 {stats['p95']:7.3f} ms  p99 {stats['p99']:7.3f} ms  "
          f"mean {stats['mean']:7.3f} ms", flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def request() -> pb.ActionRequest:
    session = "bench-" + uuid.uuid4().hex[:12]
    return pb.ActionRequest(session_id=session, idempotency_key=f"{session}:1:0", service="orders",
                            method="get_status", payload_json='{"order_id": "12345"}')


async def paired(url: str, stub: pb_grpc.IntegrationGatewayStub, n: int) -> tuple[list[float], list[float]]:
    """Direct GETs and Invokes, interleaved one by one, so both see the same machine load."""
    direct_s, invoke_s = [], []
    async with httpx.AsyncClient() as client:
        for _ in range(20):
            await client.get(url)
            await stub.Invoke(request())
        for _ in range(n):
            started = time.perf_counter()
            reply = await client.get(url)
            direct_s.append(time.perf_counter() - started)
            if reply.status_code != 200:
                raise SystemExit(f"direct GET answered {reply.status_code}")
            started = time.perf_counter()
            result = await stub.Invoke(request(), timeout=10)
            invoke_s.append(time.perf_counter() - started)
            if not result.ok:
                raise SystemExit(f"Invoke failed: {result.error_message}")
    return direct_s, invoke_s


async def throughput(stub: pb_grpc.IntegrationGatewayStub, seconds: float, concurrency: int,
                     gateway_pid: int) -> tuple[int, float, float]:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            result = await stub.Invoke(request(), timeout=10)
            done += result.ok

    cpu_before = cpu_seconds(gateway_pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started, cpu_seconds(gateway_pid) - cpu_before


async def main(args: argparse.Namespace) -> None:
    backend_port, grpc_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    env = {**os.environ, PREFIX + "GRPC__PORT": str(grpc_port), PREFIX + "METRICS__ENABLED": "false",
           PREFIX + "SERVICES_FILE": str(EXAMPLE_SERVICES_FILE), PREFIX + "LOG__LEVEL": args.log_level,
           "DIALTONE_EXAMPLE_BACKEND_URL": backend_url}
    procs = [
        subprocess.Popen([sys.executable, "-m", "dialtone", "example-backend", "--port", str(backend_port)],
                         stderr=subprocess.DEVNULL),
        # Its log lines (one per Invoke at INFO, as in production) are written, then discarded.
        subprocess.Popen([sys.executable, "-m", "dialtone", "integration-gateway"], env=env,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        address = f"127.0.0.1:{grpc_port}"
        if not await wait_serving(address, 60):
            raise SystemExit("gateway did not start")
        print(f"machine: {os.cpu_count()} cores; n={args.n}; gateway log level {args.log_level}; "
              "backend = example backend (threaded http.server)")
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.IntegrationGatewayStub(channel)
            direct_s, invoke_s = await paired(backend_url + "/orders/12345", stub, args.n)
            d, g = percentiles(direct_s), percentiles(invoke_s)
            show("direct httpx GET", d)
            show("Invoke via gateway", g)
            print(f"{'added by the gateway':<28} p50 {g['p50'] - d['p50']:7.3f} ms  p99 {g['p99'] - d['p99']:7.3f} ms",
                  flush=True)
            done, wall, cpu = await throughput(stub, args.seconds, args.concurrency, procs[1].pid)
        print(f"throughput: {done} Invokes in {wall:.1f} s at concurrency {args.concurrency} = {done / wall:.0f}/s; "
              f"gateway CPU {cpu:.2f} s = {done / max(cpu, 1e-9):.0f} Invokes per core-second", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--log-level", default="INFO", choices=["INFO", "WARNING"],
                        help="the gateway's log level (INFO logs every Invoke, redacted)")
    asyncio.run(main(parser.parse_args()))
