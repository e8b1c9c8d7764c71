"""Concurrent calls: N scripted callers at once through `dialtone up` (bench_echo dialog), N = 1, 2, 3...
until the turn latency p95 doubles from N=1 (or the budget ends); prints the turn latency per N and the
CPU each service spent per call (CPU seconds / wall seconds / N, from /proc).

    python -m bench.e2e_concurrency [--turns 5] [--max-callers 8] [--budget-s 480]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from dialtone.caller.phone import Phone
from dialtone.caller.voices import Voices

from bench.e2e_turn_latency import UpStack, cpu_seconds, percentiles, run_callers


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(200)
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-") as folder:
        stack = UpStack(Path(folder))
        try:
            voices = await Voices.load()
            phone = Phone("127.0.0.1")
            await phone.start()
            try:
                await run_callers(phone, voices, stack.uri("bench_echo"), 1, 2, rng)  # warm-up
                baseline = 0.0
                started = time.monotonic()
                for callers in range(1, args.max_callers + 1):
                    if time.monotonic() - started > args.budget_s:
                        print(f"budget of {args.budget_s:.0f} s spent before N={callers}")
                        break
                    pids = stack.children()
                    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    wall = time.monotonic()
                    reports = await run_callers(phone, voices, stack.uri("bench_echo"), callers, args.turns, rng)
                    wall = time.monotonic() - wall
                    per_call = {name: (cpu_seconds(pid) - cpu_before[name]) / wall / callers * 100
                                for name, pid in pids.items()}
                    latencies = [x for report in reports for x in report["turn_latencies_ms"]]
                    problems = sum(len(report["failures"]) for report in reports)
                    print(f"N={callers}: turn latency {percentiles(latencies)}; call problems {problems}")
                    print("  CPU per call: " + ", ".join(f"{name} {pct:.1f} %"
                                                         for name, pct in sorted(per_call.items())))
                    if callers == 1:
                        baseline = p95(latencies)
                    elif latencies and p95(latencies) >= 2 * baseline:
                        print(f"turn latency p95 doubled at N={callers} ({p95(latencies):.0f} ms vs {baseline:.0f} ms)")
                        break
            finally:
                await phone.stop()
                voices.close()
        finally:
            stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=5, help="turns per caller per step")
    parser.add_argument("--max-callers", type=int, default=8)
    parser.add_argument("--budget-s", type=float, default=480.0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
