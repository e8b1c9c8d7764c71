"""SIP call setups per second through the media gateway, with sipp (answer + BYE, no RTP played),
beside a bare sippy UAS in the same run.

The gateway runs as its own process (``python -m dialtone media-gateway``) with a speech
gateway sink in this process (every call still opens its RTP session and its gRPC stream);
``bench._bare_sippy_uas`` (sippy answering 200 with SDP, nothing else) runs as another process.
sipp runs its built-in ``uac`` scenario at each rate step against each of them in turn. Per
step and peer: calls completed and failed, INVITE retransmissions sipp had to send, the
peer's CPU % of one core and CPU ms per call, and INVITE -> 200 response time p50/p95/p99
from sipp's per-call RTD trace; then the gateway's CPU per call as a multiple of bare sippy's.

    .venv/bin/python -m bench.media_sip_cps [--rates 25,50,100,200] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
from dialtone.common.server import wait_serving
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

REPO = Path(__file__).resolve().parents[1]


class _Sink(spb_grpc.SpeechGatewayServicer):
    """A speech gateway that reads and drops everything."""

    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],  # noqa: N802
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        async for _ in request_iterator:
            pass
        return
        yield  # pragma: no cover - makes this an async generator


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def _sipp_stat(stat_file: Path, column: str) -> int:
    rows = list(csv.reader(stat_file.open(), delimiter=";"))
    if len(rows) < 2:
        return 0
    header, last = rows[0], rows[-1]
    return int(last[header.index(column)]) if column in header else 0


async def _step(sip_port: int, gateway_pid: int, rate: int, seconds: float, workdir: Path) -> dict[str, float]:
    calls = max(1, int(rate * seconds))
    step_dir = workdir / f"rate{rate}"
    step_dir.mkdir()
    ticks_before, started = _cpu_ticks(gateway_pid), time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        shutil.which("sipp") or "sipp", f"127.0.0.1:{sip_port}", "-sn", "uac", "-r", str(rate), "-m", str(calls),
        "-d", "0", "-i", "127.0.0.1", "-p", str(_free_port(socket.SOCK_DGRAM)), "-nostdin", "-nd",
        "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1", "-timeout", f"{int(seconds * 4 + 30)}s",
        "-max_socket", "1000", cwd=step_dir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()
    elapsed = time.monotonic() - started
    cpu_s = (_cpu_ticks(gateway_pid) - ticks_before) / os.sysconf("SC_CLK_TCK")
    rtts: list[float] = []
    for path in step_dir.glob("*_rtt.csv"):
        for row in csv.reader(path.open(), delimiter=";"):
            if len(row) >= 2 and row[1].replace(".", "", 1).isdigit():
                rtts.append(float(row[1]))
    stat = next(step_dir.glob("*_.csv"), None) or next(iter(sorted(step_dir.glob("*.csv"))), None)
    ok = failed = retrans = 0
    for path in step_dir.glob("*.csv"):
        if path.name.endswith("_rtt.csv"):
            continue
        ok = _sipp_stat(path, "SuccessfulCall(C)")
        failed = _sipp_stat(path, "FailedCall(C)")
        retrans = _sipp_stat(path, "Retransmissions(C)")
    del stat
    p50, p95, p99 = (np.percentile(rtts, [50, 95, 99]) if rtts else (float("nan"),) * 3)
    return {"rate": rate, "ok": ok, "failed": failed, "retrans": retrans, "achieved_cps": ok / elapsed,
            "cpu_pct": 100 * cpu_s / elapsed, "cpu_ms_per_call": 1000 * cpu_s / max(ok, 1),
            "p50": float(p50), "p95": float(p95), "p99": float(p99)}


async def main(rates: list[int], seconds: float) -> int:
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 1
    server = grpc.aio.server()
    spb_grpc.add_SpeechGatewayServicer_to_server(_Sink(), server)
    speech_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sip_port, grpc_port = _free_port(socket.SOCK_DGRAM), _free_port()
    prefix = "DIALTONE_MEDIA_GATEWAY__"
    env = {**os.environ, f"{prefix}SIP__PORT": str(sip_port), f"{prefix}GRPC__PORT": str(grpc_port),
           f"{prefix}SPEECH_GATEWAY_ADDRESS": f"127.0.0.1:{speech_port}", f"{prefix}METRICS__PORT": str(_free_port()),
           f"{prefix}CONTROL_HTTP__ENABLED": "false", f"{prefix}LOG__LEVEL": "WARNING"}
    gateway = subprocess.Popen([sys.executable, "-m", "dialtone", "media-gateway"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare_port = _free_port(socket.SOCK_DGRAM)
    bare = subprocess.Popen([sys.executable, "-m", "bench._bare_sippy_uas", str(bare_port)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not await wait_serving(f"127.0.0.1:{grpc_port}", 60):
            print("media gateway did not start", file=sys.stderr)
            return 1
        print(f"{'peer':>12} {'cps':>5} {'ok':>6} {'fail':>5} {'retrans':>7} {'achieved':>8} {'cpu%':>6} "
              f"{'cpu ms/call':>11} {'INVITE->200 p50':>15} {'p95':>7} {'p99':>7}")
        with tempfile.TemporaryDirectory() as tmp:
            for rate in rates:
                results = {}
                for name, port, pid in (("bare sippy", bare_port, bare.pid), ("dialtone", sip_port, gateway.pid)):
                    step_dir = Path(tmp) / name.replace(" ", "_")
                    step_dir.mkdir(exist_ok=True)
                    r = results[name] = await _step(port, pid, rate, seconds, step_dir)
                    print(f"{name:>12} {r['rate']:>5} {r['ok']:>6} {r['failed']:>5} {r['retrans']:>7} "
                          f"{r['achieved_cps']:>8.1f} {r['cpu_pct']:>6.1f} {r['cpu_ms_per_call']:>11.2f} "
                          f"{r['p50']:>13.1f}ms {r['p95']:>5.1f}ms {r['p99']:>5.1f}ms", flush=True)
                    await asyncio.sleep(1.0)
                ratio = results["dialtone"]["cpu_ms_per_call"] / max(results["bare sippy"]["cpu_ms_per_call"], 1e-9)
                print(f"{'':>12} {rate:>5} dialtone CPU per call = {ratio:.2f} x bare sippy", flush=True)
        if os.environ.get("BENCH_DUMP_METRICS"):
            import urllib.request
            port = env[f"{prefix}METRICS__PORT"]
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            print("\n".join(line for line in text.splitlines() if "setup_seconds" in line or "setups_total" in line))
    finally:
        bare.terminate()
        gateway.terminate()
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
        await server.stop(0)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="25,50,100,200", help="comma-separated call rates (calls/s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main([int(r) for r in args.rates.split(",")], args.seconds)))
