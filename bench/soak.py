"""Soak and chaos: `dialtone load` through `dialtone up` for M minutes while each service in turn is
killed (SIGKILL; `dialtone up` restarts it) and redis-server is killed and restarted; then checks.

    python -m bench.soak [--minutes 2] [--concurrency 3] [--store redis|sqlite] [--kill-every S]
                         [--warmup-s S] [--out DIR]

The stack runs its state in Redis by default (the conversation runtime's sessions and the
integration gateway's idempotency, breaker and rate-limit records; redis-server with an
append-only file, fsync always, so a restart keeps them), as a cluster does. ``--store sqlite`` is
the default one-machine stack instead (the runtime's SQLite file, the gateway's records in its
memory): there is no Redis to restart then. The load is ``--concurrency`` callers placing the
order_status call back to back (a fresh order number each, docs/load.md).

Checks (each in the report with its figures; exit status 1 when one fails):

- every call ended with a reason, and none was left hanging (the caller had to give up: its
  timeouts, no RTP, no answer) unless a kill happened while it was up or shortly before;
- each backend call ran once per idempotency key: the example backend's /stats counts no key
  twice and no order looked up twice (every call has its own order number);
- no session is left open: after the calls end (and a drain of up to ``--drain-s``) every session
  in the runtime's store has ended;
- each service's RSS and open files stay flat after warm-up: growth under 5 % per 10 minutes,
  judged on each process's life after ``--warmup-s`` when at least ``--min-window-s`` long
  (shorter ones are reported, not judged). Growth = the Theil-Sen slope (the median of the
  slopes between every two samples: calls coming and going and a dip while a peer restarts do
  not move it, a leak does), over 10 minutes, against the median; for open files, a trend worth
  less than two files over the window is not counted (one file more after a restart is a step).

Writes DIR/soak.json (the report), DIR/soak.png (RSS and open files per service, kills marked),
DIR/load.json and DIR/load.png (the load tool's summary and plot; the kills marked in
load-chaos.png), and the logs (up.log, load.log).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from dialtone.caller.load import SAMPLE_FIELDS, SERVICES, write_plot
from dialtone.common.server import wait_serving
from dialtone.conversation_runtime.core.session import Session
from dialtone.up import Layout

from bench.e2e_turn_latency import UpStack

GROWTH_LIMIT_PCT = 5.0           # per 10 minutes
FD_STEP = 2.0                    # open files: a trend worth less than this many files over a window is no leak
CAUGHT_UP_S = 10.0               # after a kill's recovery, calls started this long after still count as hit by it
RECOVERY_TIMEOUT_S = 120.0
TAIL_S = 20.0                    # no kill in the run's last seconds: the last victim recovers under load
CALLER_GAVE_UP = ("timeout", "wait_timeout", "rtp_timeout", "no_answer")
NO_REASON = ("", "unknown", "interrupted", "tool_error")
RUNTIME_REDIS_SESSIONS = "dialtone:runtime:session:"   # store_redis keeps each session under this prefix


class RedisServer:
    """redis-server on a free loopback port, persisting to an append-only file fsynced on every write,
    so that a kill and a restart lose nothing (as a cluster's Redis with persistence)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench.soak: redis-server is not installed (scripts/system-deps.sh test); "
                             "use --store sqlite for the one-machine stack")
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                     "--appendonly", "yes", "--appendfsync", "always"]
        self.log = open(folder / "redis.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self) -> int:
        assert self.proc is not None
        pid = self.proc.pid
        self.proc.kill()
        self.proc.wait()
        return pid

    async def ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 1.0)
                writer.write(b"PING\r\n")
                answer = await asyncio.wait_for(reader.readline(), 1.0)
                writer.close()
                if answer.startswith(b"+PONG"):
                    return True
            except (OSError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --- the run -------------------------------------------------------------------------------------------
async def kill_and_recover(target: str, stack: UpStack, layout: Layout, redis: RedisServer | None) -> dict[str, Any]:
    """SIGKILL one service (or redis-server, then start it again); returns when it serves again."""
    killed_at = time.time()
    if target == "redis-server":
        assert redis is not None
        pid = redis.kill()
        await asyncio.sleep(1.0)        # down for a moment, as a restart is
        redis.start()
        recovered = await redis.ready(RECOVERY_TIMEOUT_S)
    else:
        pid = stack.children().get(target, 0)
        if not pid:     # not running now (still being restarted): nothing to kill this turn
            return {"target": target, "pid": None, "killed_unix": killed_at, "recovered": False, "recovery_s": None}
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while stack.children().get(target, pid) == pid and time.monotonic() < deadline:
            await asyncio.sleep(0.1)    # `dialtone up` starts a new one after its backoff
        recovered = await wait_serving(layout.address(target), max(1.0, deadline - time.monotonic()))
    return {"target": target, "pid": pid, "killed_unix": killed_at, "recovered": recovered,
            "recovery_s": round(time.time() - killed_at, 2) if recovered else None}


async def chaos(targets: list[str], start_s: float, every_s: float, end_s: float, stack: UpStack, layout: Layout,
                redis: RedisServer | None, load: asyncio.subprocess.Process, events: list[dict[str, Any]]) -> None:
    """Kill targets in turn, at ``start_s`` and every ``every_s`` after, until ``end_s`` (run seconds)."""
    began = time.monotonic()
    at = start_s
    turn = 0
    while at < end_s and load.returncode is None:
        wait = at - (time.monotonic() - began)
        if wait > 0:
            try:
                await asyncio.wait_for(load.wait(), wait)
                return
            except TimeoutError:
                pass
        target = targets[turn % len(targets)]
        event = await kill_and_recover(target, stack, layout, redis)
        events.append(event)
        print(f"bench.soak: killed {target} (pid {event['pid']}); "
              + (f"serving again after {event['recovery_s']:.1f} s" if event["recovered"] else "NOT back"),
              flush=True)
        turn += 1
        at += every_s


def store_sessions(store: str, folder: Path, redis_url: str) -> list[Session]:
    """Every session in the conversation runtime's store (its SQLite file, or Redis)."""
    if store == "redis":
        import redis

        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = list(client.scan_iter(RUNTIME_REDIS_SESSIONS + "*", count=500))
            return [Session.from_json(data) for data in client.mget(keys) if data] if keys else []
        finally:
            client.close()
    path = folder / ".dialtone" / "sessions.sqlite3"     # `dialtone up`'s store, in its working folder
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0) as connection:
        return [Session.from_json(row[0]) for row in connection.execute("SELECT data FROM sessions")]


async def open_sessions_after_drain(store: str, folder: Path, redis_url: str, drain_s: float) -> tuple[
        list[Session], list[Session], float]:
    """(all sessions, those not ended, seconds waited): polled until none is open or ``drain_s`` passes."""
    began = time.monotonic()
    while True:
        sessions = await asyncio.to_thread(store_sessions, store, folder, redis_url)
        still_open = [s for s in sessions if not s.ended]
        waited = time.monotonic() - began
        if not still_open or waited >= drain_s:
            return sessions, still_open, round(waited, 1)
        await asyncio.sleep(2.0)


def backend_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:  # noqa: S310 - loopback
        return dict(json.loads(response.read()))


# --- the checks ------------------------------------------------------------------------------------------
def check_calls(records: list[dict[str, Any]], windows: list[tuple[float, float]]) -> dict[str, Any]:
    def hit_by_chaos(record: dict[str, Any]) -> bool:
        return any(record["started_s"] <= end and record["ended_s"] >= start for start, end in windows)

    without_reason = [r["index"] for r in records if r["ended_by"] in NO_REASON]
    gave_up = [r for r in records if any(f["kind"] in CALLER_GAVE_UP for f in r["failures"])]
    hanging = [r["index"] for r in gave_up if not hit_by_chaos(r)]
    ended_by: dict[str, int] = {}
    for record in records:
        ended_by[record["ended_by"]] = ended_by.get(record["ended_by"], 0) + 1
    return {"ok": not without_reason and not hanging and bool(records), "calls": len(records),
            "ended_by": ended_by, "without_reason": without_reason,
            "caller_gave_up": len(gave_up), "hanging_outside_chaos": hanging,
            "hit_by_chaos": sum(1 for r in records if hit_by_chaos(r)),
            "failed_outside_chaos": [r["index"] for r in records if r["failures"] and not hit_by_chaos(r)]}


def check_backend(stats: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    ours = {f"GET /orders/{r['values']['order']}" for r in records if r.get("values", {}).get("order")}
    repeated_orders = {request: n for request, n in stats["repeated_requests"].items() if request in ours}
    return {"ok": stats["repeated_keys_count"] == 0 and not repeated_orders and stats["untracked"] == 0,
            "requests": stats["requests"], "keys": stats["keys"], "without_key": stats["without_key"],
            "repeated_keys_count": stats["repeated_keys_count"], "repeated_keys": stats["repeated_keys"],
            "repeated_order_lookups": repeated_orders}


def check_sessions(sessions: list[Session], still_open: list[Session], waited_s: float, connected: int,
                   greeted: int, t0_unix: float) -> dict[str, Any]:
    """``greeted``: calls that heard a prompt, so reached the runtime. A call answered while the speech
    gateway or the runtime was down never does (it ends by rtp_timeout) and has no session to count."""
    return {"ok": not still_open and len(sessions) >= greeted, "sessions": len(sessions),
            "calls_answered": connected, "calls_greeted": greeted,
            "open": len(still_open), "waited_s": waited_s,
            "open_sessions": [{"session_id": s.session_id, "dialog": s.dialog, "state": s.state,
                               "started_s": round(s.started_at - t0_unix, 1), "timers": sorted(s.timers)}
                              for s in still_open[:20]],
            "end_reasons": _count(s.end_reason or "(none)" for s in sessions if s.ended)}


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def growth_per_10_min(points: list[tuple[float, float]]) -> float | None:
    """% growth per 10 minutes of a figure sampled as (seconds, value): the Theil-Sen slope (the median
    of the slopes between every two samples), times 600 s, against the median value. The median
    ignores what comes and goes (calls up, a dip while a peer restarts); a leak moves every pair."""
    if len(points) < 6:
        return None
    samples = np.asarray(points, dtype=float)
    times, values = samples[:, 0], samples[:, 1]
    first, second = np.triu_indices(len(samples), k=1)
    apart = times[second] - times[first]
    keep = apart > 0
    typical = float(np.median(values))
    if not keep.any() or typical <= 0:
        return None
    slope = float(np.median((values[second] - values[first])[keep] / apart[keep]))
    return slope * 600.0 / typical * 100.0


Row = list[float | None]     # one sample of a service: SAMPLE_FIELDS


def process_lives(rows: list[Row]) -> dict[float, list[Row]]:
    """A service's answered samples by process (its start time): a restart begins a new life."""
    rss_at, started_at = SAMPLE_FIELDS.index("rss"), SAMPLE_FIELDS.index("started")
    lives: dict[float, list[Row]] = {}
    for row in rows:
        if row[rss_at] is not None and row[started_at] is not None:
            lives.setdefault(float(row[started_at] or 0.0), []).append(row)
    return lives


def check_flat(samples: dict[str, list[Row]], t0_unix: float, warmup_s: float,
               min_window_s: float) -> dict[str, Any]:
    rss_at, fds_at = SAMPLE_FIELDS.index("rss"), SAMPLE_FIELDS.index("fds")
    services: dict[str, Any] = {}
    ok = True
    for name, rows in samples.items():
        report = []
        for started, life in sorted(process_lives(rows).items()):
            warm_from = max(0.0, started - t0_unix) + warmup_s
            window = [row for row in life if float(row[0] or 0.0) >= warm_from]
            span = float(window[-1][0] or 0.0) - float(window[0][0] or 0.0) if window else 0.0
            rss = growth_per_10_min([(float(r[0] or 0.0), float(r[rss_at] or 0.0)) for r in window])
            fd_points = [(float(r[0] or 0.0), float(r[fds_at] or 0.0)) for r in window if r[fds_at] is not None]
            fds = growth_per_10_min(fd_points)
            # files come in whole numbers: one file more after a restart (a pool's connection opened
            # again) fits to a trend of a file or so, which one window cannot tell from a leak
            fds_change = None if fds is None else fds / 100.0 * float(np.median([v for _, v in fd_points])) \
                * span / 600.0
            judged = span >= min_window_s and rss is not None and fds is not None
            flat = (not judged) or (rss is not None and fds is not None and fds_change is not None
                                    and rss < GROWTH_LIMIT_PCT
                                    and (fds < GROWTH_LIMIT_PCT or fds_change < FD_STEP))
            ok = ok and flat
            report.append({"started_s": round(started - t0_unix, 1), "window_s": round(span, 1), "judged": judged,
                           "flat": flat if judged else None,
                           "rss_growth_pct_per_10min": None if rss is None else round(rss, 2),
                           "fds_growth_pct_per_10min": None if fds is None else round(fds, 2),
                           "fds_trend_over_window": None if fds_change is None else round(fds_change, 2),
                           "rss_mb": [round(float(life[0][rss_at] or 0) / 1e6, 1),
                                      round(float(life[-1][rss_at] or 0) / 1e6, 1)],
                           "open_fds": [int(life[0][fds_at] or 0), int(life[-1][fds_at] or 0)]})
        services[name] = {"processes": report, "judged": sum(1 for r in report if r["judged"])}
    return {"ok": ok, "limit_pct_per_10min": GROWTH_LIMIT_PCT, "warmup_s": warmup_s, "min_window_s": min_window_s,
            "judged": sum(s["judged"] for s in services.values()), "services": services}


def plot_resources(samples: dict[str, list[Row]], markers: list[tuple[float, str]], path: Path,
                   title: str) -> None:
    from matplotlib.figure import Figure

    rss_at, fds_at = SAMPLE_FIELDS.index("rss"), SAMPLE_FIELDS.index("fds")
    figure = Figure(figsize=(11, 8), layout="constrained")
    rss_axes, fds_axes = figure.subplots(2, 1, sharex=True)
    for number, (name, rows) in enumerate(samples.items()):
        for life_number, life in enumerate(process_lives(rows).values()):   # one line per process life
            label = name if life_number == 0 else None
            rss_axes.plot([r[0] for r in life], [float(r[rss_at] or 0) / 1e6 for r in life], color=f"C{number}",
                          label=label)
            fds_axes.plot([r[0] for r in life], [r[fds_at] for r in life], color=f"C{number}", label=label)
    rss_axes.set_ylabel("RSS MB")
    fds_axes.set_ylabel("open files")
    fds_axes.set_xlabel("seconds since the first call")
    rss_axes.legend(loc="upper left", fontsize="small")
    for at, label in markers:
        for axes in (rss_axes, fds_axes):
            axes.axvline(at, color="grey", linestyle=":", linewidth=1)
        fds_axes.annotate(label, (at, 0), xycoords=("data", "axes fraction"), rotation=90, fontsize="x-small",
                          va="bottom", ha="right")
    figure.suptitle(title)
    figure.savefig(path, dpi=100)


# --- main ------------------------------------------------------------------------------------------------
async def soak(args: argparse.Namespace, folder: Path) -> int:
    duration = args.minutes * 60.0
    warmup = args.warmup_s if args.warmup_s is not None else min(120.0, 0.2 * duration)
    redis = RedisServer(folder / "redis") if args.store == "redis" else None
    targets = list(SERVICES) + (["redis-server"] if redis is not None else [])
    chaos_span = duration - warmup - TAIL_S
    every = args.kill_every if args.kill_every is not None else min(60.0, max(5.0, chaos_span / len(targets)))
    events: list[dict[str, Any]] = []
    stack: UpStack | None = None
    load: asyncio.subprocess.Process | None = None
    try:
        env: dict[str, str] = {}
        if redis is not None:
            redis.start()
            if not await redis.ready(20.0):
                raise SystemExit("bench.soak: redis-server did not start (see redis/redis.log)")
            env = {"DIALTONE_CONVERSATION_RUNTIME__STORE__KIND": "redis",
                   "DIALTONE_CONVERSATION_RUNTIME__STORE__URL": redis.url,
                   "DIALTONE_INTEGRATION_GATEWAY__STORE__KIND": "redis",
                   "DIALTONE_INTEGRATION_GATEWAY__STORE__REDIS_URL": redis.url}
        stack = await asyncio.to_thread(UpStack, folder, env)
        layout = Layout("127.0.0.1", stack.base, stack.sip_port)
        with open(folder / "load.log", "wb") as load_log:
            load = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "dialtone", "load", stack.uri("order_status"), "--concurrency",
                str(args.concurrency), "--duration", str(duration), "--base-port", str(stack.base),
                "--json", str(folder / "load.json"), "--plot", str(folder / "load.png"), "--seed", str(args.seed),
                stdout=load_log, stderr=subprocess.STDOUT, cwd=folder)
        print(f"bench.soak: {args.minutes:g} min of load ({args.concurrency} callers) through `dialtone up` "
              f"(store: {args.store}); kills from {warmup:.0f} s every {every:.0f} s: {', '.join(targets)}",
              flush=True)
        await chaos(targets, warmup, every, duration - TAIL_S, stack, layout, redis, load, events)
        await load.wait()
        if not (folder / "load.json").exists():
            print("bench.soak: dialtone load wrote no summary; see " + str(folder / "load.log"), file=sys.stderr)
            return 2
        summary = json.loads((folder / "load.json").read_text())
        t0 = summary["t0_unix"]
        sessions, still_open, waited = await open_sessions_after_drain(args.store, folder,
                                                                       redis.url if redis else "", args.drain_s)
        stats = await asyncio.to_thread(backend_stats, f"http://127.0.0.1:{stack.base + 80}")
    finally:
        if load is not None and load.returncode is None:
            load.send_signal(signal.SIGTERM)
            await load.wait()
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        if redis is not None:
            redis.stop()
    for event in events:
        event["at_s"] = round(event.pop("killed_unix") - t0, 2)
    windows = [(e["at_s"], e["at_s"] + (e["recovery_s"] or duration) + CAUGHT_UP_S) for e in events]
    records = summary["call_records"]
    checks = {
        "calls_ended_with_reason": check_calls(records, windows),
        "backend_once_per_key": check_backend(stats, records),
        "no_open_sessions": check_sessions(sessions, still_open, waited, summary["calls"]["connected"],
                                           sum(1 for r in records if r.get("prompts_heard")), t0),
        "flat_after_warmup": check_flat(summary["samples"]["services"], t0, warmup, args.min_window_s),
    }
    markers = [(e["at_s"], f"kill {e['target']}") for e in events]
    report = {
        "tool": "bench.soak", "started_at": summary["started_at"], "minutes": args.minutes, "store": args.store,
        "concurrency": args.concurrency, "warmup_s": warmup, "kill_every_s": round(every, 1),
        "load": {key: summary[key] for key in ("calls", "turn_latency_ms", "setup_ms", "failures_by_kind",
                                               "services", "generator", "wall_s")},
        "chaos": events, "checks": checks, "ok": all(c["ok"] for c in checks.values()),
        "outputs": {"report": str(folder / "soak.json"), "resources_plot": str(folder / "soak.png"),
                    "latency_plot": str(folder / "load-chaos.png"), "load_summary": str(folder / "load.json")},
    }
    plot_resources(summary["samples"]["services"], markers, folder / "soak.png",
                   f"bench.soak: {args.minutes:g} min, {args.concurrency} callers, store {args.store}")
    write_plot(summary, folder / "load-chaos.png", markers)
    (folder / "soak.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(format_report(report))
    return 0 if report["ok"] else 1


def format_report(report: dict[str, Any]) -> str:
    load, checks = report["load"], report["checks"]
    turns = load["turn_latency_ms"]
    lines = [f"bench.soak: {report['minutes']:g} min, {report['concurrency']} callers, store {report['store']}",
             f"  calls:   {load['calls']['placed']} placed, {load['calls']['ok']} ok, {load['calls']['failed']} failed;"
             f" ended by " + ", ".join(f"{k} {v}" for k, v in load["calls"]["ended_by"].items()),
             "  turn latency: " + (f"p50 {turns['p50']:.0f} ms  p95 {turns['p95']:.0f} ms  p99 {turns['p99']:.0f} ms"
                                   f" (n={turns['count']})" if turns["count"] else "no samples"),
             "  kills:   " + ", ".join(f"{e['target']}@{e['at_s']:.0f}s"
                                       + (f" back in {e['recovery_s']:.1f}s" if e["recovered"] else " NOT back")
                                       for e in report["chaos"])]
    calls = checks["calls_ended_with_reason"]
    lines.append(f"  [{'ok' if calls['ok'] else 'FAIL'}] every call ended with a reason: {calls['calls']} calls, "
                 f"{len(calls['without_reason'])} without, {len(calls['hanging_outside_chaos'])} left hanging outside"
                 f" a kill ({calls['hit_by_chaos']} calls were up around a kill)")
    backend = checks["backend_once_per_key"]
    lines.append(f"  [{'ok' if backend['ok'] else 'FAIL'}] backend once per idempotency key: {backend['requests']} "
                 f"requests, {backend['keys']} keys, {backend['repeated_keys_count']} keys twice, "
                 f"{len(backend['repeated_order_lookups'])} orders looked up twice")
    sessions = checks["no_open_sessions"]
    lines.append(f"  [{'ok' if sessions['ok'] else 'FAIL'}] no session left open: {sessions['sessions']} sessions, "
                 f"{sessions['open']} open after {sessions['waited_s']:.0f} s")
    flat = checks["flat_after_warmup"]
    lines.append(f"  [{'ok' if flat['ok'] else 'FAIL'}] RSS and open files flat after warm-up (< "
                 f"{flat['limit_pct_per_10min']:g} %/10 min): {flat['judged']} process lives judged "
                 f"(>= {flat['min_window_s']:.0f} s after warm-up)")
    for name, service in flat["services"].items():
        for life in service["processes"]:
            rss, fds = life["rss_mb"], life["open_fds"]
            lines.append(f"      {name:<21} from {life['started_s']:>7.0f} s: window {life['window_s']:>5.0f} s, "
                         f"RSS {rss[0]:.0f}->{rss[1]:.0f} MB ({_pct(life['rss_growth_pct_per_10min'])}), "
                         f"open files {fds[0]}->{fds[1]} ({_pct(life['fds_growth_pct_per_10min'])})"
                         + ("" if life["judged"] else "  not judged"))
    lines.append(f"  report: {report['outputs']['report']}, plots: {report['outputs']['resources_plot']}, "
                 f"{report['outputs']['latency_plot']}")
    lines.append("  result: " + ("ok" if report["ok"] else "FAILED"))
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} %/10 min"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="how long the load runs")
    parser.add_argument("--concurrency", type=int, default=3, help="callers placing calls back to back")
    parser.add_argument("--store", choices=("redis", "sqlite"), default="redis",
                        help="redis: sessions and gateway records in a redis-server that is restarted too; "
                             "sqlite: the default one-machine stack")
    parser.add_argument("--kill-every", type=float, default=None,
                        help="seconds between kills (default: every target once over the run, at most 60)")
    parser.add_argument("--warmup-s", type=float, default=None, help="no kills and no growth judged before "
                        "(default: 20 %% of the run, at most 120 s); also each restarted process's warm-up")
    parser.add_argument("--min-window-s", type=float, default=300.0,
                        help="a process life shorter than this after warm-up is reported, not judged")
    parser.add_argument("--drain-s", type=float, default=60.0, help="how long open sessions may take to end")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--out", default=None, help="folder for the report (default artifacts/soak-<time>)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.concurrency < 1:
        parser.error("--minutes and --concurrency must be positive")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(args.out) if args.out else Path(__file__).resolve().parent.parent / "artifacts" / f"soak-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        parser.error(f"--out {folder} is not empty")
    return asyncio.run(soak(args, folder.resolve()))


if __name__ == "__main__":
    raise SystemExit(main())
