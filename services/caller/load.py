"""`dialtone load`: many scripted calls against a running stack, to size a deployment.

Calls arrive at a rate (``--rate``, open loop: a slow stack does not slow the arrivals) or come
from C callers placing calls back to back (``--concurrency``), until ``--calls`` have been placed
or ``--duration`` has passed. Each call runs a load script (``dialtone.caller.load_script``; by
default the order_status dialog with a fresh order number per call) on the caller's runner, all
calls on one SIP stack (``Phone``); the phrases are rendered once, before the first call.

Reported (printed, and written as JSON; docs/load.md describes every field):

- turn latency on the wire, p50/p95/p99 (end of our speech -> first non-silent packet back), and
  call setup time (INVITE -> answer);
- failures by kind (``runner.FAILURE_KINDS`` plus ``LOAD_FAILURE_KINDS``) and how each call ended;
- calls/s;
- each service's CPU, RSS and open files, sampled from its /metrics endpoint (the Prometheus
  process collector; `dialtone up` puts them at BASE+101..104). A service that does not answer
  is counted as unavailable in that sample, never an error of the tool.

A PNG shows the turn latency over time, the calls in flight and each service's RSS. Exit status:
0 when every call went through its script, 1 when some failed (the summary says how), 2 for bad
arguments or a bad script.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import datetime
import itertools
import json
import logging
import random
import resource
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from dialtone.caller.load_script import DEFAULT_SCRIPT, DEFAULT_URI, LoadScript, parse_load_script
from dialtone.caller.script import ScriptError
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

LOAD_FAILURE_KINDS = {
    "generator_saturated": "not placed: --max-in-flight calls were already up (the generator's limit, not the stack's)",
    "script_error": "the script could not run with this call's values (e.g. a WAV file missing)",
    "tool_error": "the load tool failed on this call (a bug: the message says what)",
}
SERVICES = ("media-gateway", "speech-gateway", "conversation-runtime", "integration-gateway")
PROCESS_METRICS = {"process_resident_memory_bytes": "rss", "process_cpu_seconds_total": "cpu_s",
                   "process_open_fds": "fds", "process_start_time_seconds": "started"}
SAMPLE_FIELDS = ("t", "rss", "cpu_s", "fds", "started")   # one row of samples.services[name]
METRICS_TIMEOUT_S = 2.0
PROGRESS_EVERY_S = 10.0
DEFAULT_OUT_DIR = Path(".dialtone") / "load"
EXIT_OK, EXIT_CALLS_FAILED, EXIT_BAD_ARGS = 0, 1, 2


@dataclasses.dataclass
class LoadOptions:
    uri: str
    calls: int | None = None             # stop placing calls after this many
    duration_s: float | None = None      # ... or after this long
    rate: float | None = None            # calls per second (open loop), or:
    concurrency: int = 1                 # callers placing calls back to back (closed loop)
    arrivals: str = "uniform"            # with rate: uniform spacing or poisson
    max_in_flight: int = 100
    call_timeout_s: float = 90.0
    step_timeout_s: float = 30.0
    rtp_timeout_s: float = 10.0
    seed: int | None = None
    metrics: dict[str, str] = dataclasses.field(default_factory=dict)   # service -> /metrics URL
    sample_s: float = 2.0
    bind: str = "127.0.0.1"
    tts: str = "piper"
    voice: str = ""
    progress: bool = True


def read_process_metrics(url: str, timeout: float = METRICS_TIMEOUT_S) -> dict[str, float] | None:
    """A service's process figures (rss bytes, cpu_s, fds, started) from its /metrics; None when it
    does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - an operator-given URL
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    wanted = "\n".join(line for line in text.splitlines() if line.startswith("process_"))
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(wanted):
            for sample in family.samples:
                if sample.name in PROCESS_METRICS:
                    found[PROCESS_METRICS[sample.name]] = float(sample.value)
    except ValueError:
        return None
    return found


def metrics_urls(host: str, base_port: int) -> dict[str, str]:
    """The /metrics URL of each service of a `dialtone up` on ``base_port`` (BASE+101..104)."""
    from dialtone.up import Layout

    layout = Layout(host, base_port, 0)
    shown = f"[{host}]" if ":" in host else host
    return {service: f"http://{shown}:{layout.metrics_port(service)}/metrics" for service in SERVICES}


def latency_stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    array = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(array, [50, 95, 99])
    return {"count": len(values), "p50": round(float(p50), 1), "p95": round(float(p95), 1),
            "p99": round(float(p99), 1), "mean": round(float(array.mean()), 1), "max": round(float(array.max()), 1)}


class LoadRun:
    """One run of many calls (see the module docstring); ``run()`` returns the summary."""

    def __init__(self, options: LoadOptions, script: LoadScript, phone: Any, voices: Any) -> None:
        self.options, self.script, self.phone, self.voices = options, script, phone, voices
        self.rng = random.Random(options.seed)
        self.records: list[dict[str, Any]] = []
        self.in_flight = 0
        self.placed = 0
        self.samples: dict[str, list[list[float | None]]] = {service: [] for service in options.metrics}
        self._used: set[tuple[str, str]] = set()
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._calls: set[asyncio.Task[None]] = set()
        self._transcribe = script.expects()   # only expect steps need what was said: no ASR otherwise

    def stop(self) -> None:
        """No new calls; the calls up are hung up."""
        self._stop.set()
        for task in list(self._calls):
            task.cancel()

    def _now(self) -> float:
        return self._loop.time() - self._t0

    async def run(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started_wall, self._t0 = time.time(), self._loop.time()
        sampler = self._loop.create_task(self._sample_forever())
        progress = self._loop.create_task(self._progress_forever()) if self.options.progress else None
        try:
            await self._arrivals()
        finally:
            for task in (sampler, progress):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (sampler, progress) if t is not None), return_exceptions=True)
        await self._sample_once()      # the figures at the end, too
        wall = self._now()
        after = resource.getrusage(resource.RUSAGE_SELF)
        generator_cpu = (after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime) / max(wall, 1e-9)
        return self._summary(started_wall, wall, generator_cpu)

    # --- arrivals ----------------------------------------------------------------------------------
    def _more(self, index: int, at: float) -> bool:
        o = self.options
        return (not self._stop.is_set() and (o.calls is None or index < o.calls)
                and (o.duration_s is None or at < o.duration_s))

    async def _arrivals(self) -> None:
        if self.options.rate is not None:
            await self._open_loop(self.options.rate)
        else:
            counter = itertools.count()

            async def caller() -> None:
                while self._more(index := next(counter), self._now()):
                    await self._start(index, self._now())

            for _ in range(self.options.concurrency):
                self._track(self._loop.create_task(caller()))
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    def _track(self, task: asyncio.Task[None]) -> None:
        """Kept until done, so that stop() can cancel it."""
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _open_loop(self, rate: float) -> None:
        planned = 0.0
        for index in itertools.count():
            if not self._more(index, planned):
                return
            wait = planned - self._now()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                    return
                except TimeoutError:
                    pass
            if self.in_flight >= self.options.max_in_flight:
                self._skip(index, planned)
            else:
                self._track(self._loop.create_task(self._start(index, planned)))
            planned += self.rng.expovariate(rate) if self.options.arrivals == "poisson" else 1.0 / rate

    def _skip(self, index: int, planned: float) -> None:
        now = round(self._now(), 3)
        self.records.append({"index": index, "planned_s": round(planned, 3), "started_s": now, "ended_s": now,
                             "connected": False, "ended_by": "not_placed", "turns": [],
                             "failures": [{"kind": "generator_saturated",
                                           "message": f"{self.options.max_in_flight} calls already up"}]})

    async def _start(self, index: int, planned: float) -> None:
        from dialtone.caller.runner import ScriptRunner

        record: dict[str, Any] = {"index": index, "planned_s": round(planned, 3), "started_s": round(self._now(), 3),
                                  "connected": False, "turns": [], "failures": []}
        self.placed += 1
        self.in_flight += 1
        try:
            values = self.script.draw(self.rng, self._used)
            record["values"] = values
            try:
                steps = self.script.steps_for(values)
            except ScriptError as exc:
                record["failures"].append({"kind": "script_error", "message": str(exc)})
                record["ended_by"] = "not_placed"
                return
            o = self.options
            runner = ScriptRunner(self.phone, self.voices, o.uri, steps, timeout_s=self.script.timeout_s or
                                  o.call_timeout_s, step_timeout_s=o.step_timeout_s, transcribe=self._transcribe,
                                  rtp_timeout_s=o.rtp_timeout_s)
            try:
                report = await runner.run()
            except (ValueError, ScriptError) as exc:     # e.g. a WAV file that cannot be read
                record["failures"].append({"kind": "script_error", "message": str(exc)})
                record["ended_by"] = "not_placed"
                return
            self._fill(record, runner, report)
        except Exception as exc:  # noqa: BLE001 - one call's trouble is counted; the run goes on
            log.warning("call %d: %s: %s", index, type(exc).__name__, exc)
            record["failures"].append({"kind": "tool_error", "message": f"{type(exc).__name__}: {exc}"[:300]})
            record.setdefault("ended_by", "tool_error")
        finally:
            self.in_flight -= 1
            record.setdefault("ended_by", "interrupted")
            record["ended_s"] = round(self._now(), 3)
            self.records.append(record)

    def _fill(self, record: dict[str, Any], runner: Any, report: dict[str, Any]) -> None:
        record["connected"] = report["connected"]
        record["setup_ms"] = report["setup_ms"]
        record["ended_by"] = report["ended_by"] or ("not_answered" if not report["connected"] else "unknown")
        record["failures"] = [{"kind": kind, "message": message}
                              for kind, message in zip(report["failure_kinds"], report["failures"], strict=True)]
        if runner.answered_at is not None:
            answered = runner.answered_at - self._t0
            record["answered_s"] = round(answered, 3)
            record["turns"] = [[round(answered + entry["at"], 3), entry["data"]["turn_ms"]]
                               for entry in report["timeline"] if entry["kind"] == "latency"]
        # a prompt can only come from the dialog: a call that heard one had its session in the runtime
        record["prompts_heard"] = len(report["heard"])
        if report["refer_to"]:
            record["refer_to"] = report["refer_to"]
        if self._transcribe:
            record["heard"] = report["heard"]

    # --- sampling ----------------------------------------------------------------------------------
    async def _sample_forever(self) -> None:
        while True:
            await self._sample_once()
            await asyncio.sleep(self.options.sample_s)

    async def _sample_once(self) -> None:
        if not self.options.metrics:
            return
        at = round(self._now(), 3)
        names = list(self.options.metrics)
        found = await asyncio.gather(*(asyncio.to_thread(read_process_metrics, self.options.metrics[name])
                                       for name in names))
        for name, figures in zip(names, found, strict=True):
            figures = figures or {}
            self.samples[name].append([at, *(figures.get(field) for field in SAMPLE_FIELDS[1:])])

    async def _progress_forever(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            ended = len(self.records)
            failed = sum(1 for r in self.records if r["failures"])
            turns = [turn[1] for r in self.records for turn in r["turns"]]
            p95 = f"{np.percentile(turns, 95):.0f} ms" if turns else "-"
            print(f"dialtone load: {self._now():5.0f} s  placed {self.placed}  up {self.in_flight}  ended {ended}"
                  f"  failed {failed}  turn p95 {p95}", file=sys.stderr, flush=True)

    # --- summary -----------------------------------------------------------------------------------
    def _summary(self, started_wall: float, wall: float, generator_cpu: float) -> dict[str, Any]:
        records = sorted(self.records, key=lambda r: r["index"])
        kinds: collections.Counter[str] = collections.Counter(f["kind"] for r in records for f in r["failures"])
        ended_by = collections.Counter(r["ended_by"] for r in records)
        placed = [r for r in records if r["ended_by"] != "not_placed"]
        starts = [r["started_s"] for r in placed]
        in_flight = calls_up(placed)
        o = self.options
        return {
            "tool": "dialtone load",
            "uri": o.uri,
            "script": self.script.source,
            "started_at": datetime.datetime.fromtimestamp(started_wall, datetime.UTC).isoformat(timespec="seconds"),
            "t0_unix": round(started_wall, 3),    # every *_s time below is seconds since this
            "options": {"calls": o.calls, "duration_s": o.duration_s, "rate": o.rate,
                        "concurrency": None if o.rate is not None else o.concurrency, "arrivals": o.arrivals,
                        "max_in_flight": o.max_in_flight, "call_timeout_s": o.call_timeout_s,
                        "step_timeout_s": o.step_timeout_s, "rtp_timeout_s": o.rtp_timeout_s, "seed": o.seed,
                        "transcribe": self._transcribe},
            "wall_s": round(wall, 3),
            "calls": {
                "placed": len(placed),
                "connected": sum(1 for r in records if r["connected"]),
                "ok": sum(1 for r in records if not r["failures"]),
                "failed": sum(1 for r in records if r["failures"]),
                "not_placed": len(records) - len(placed),
                # placed per second while calls were being placed, and ended per second over the whole run
                "offered_per_s": round((len(starts) - 1) / (max(starts) - min(starts)), 3)
                if len(starts) > 1 and max(starts) > min(starts) else None,
                "completed_per_s": round(len(placed) / wall, 3) if wall > 0 else None,
                "max_up": max((n for _, n in in_flight), default=0),
                "ended_by": dict(ended_by.most_common()),
            },
            "turn_latency_ms": latency_stats([turn[1] for r in records for turn in r["turns"]]),
            "setup_ms": latency_stats([r["setup_ms"] for r in records if r.get("setup_ms") is not None]),
            "failures_by_kind": dict(kinds.most_common()),
            "services": {name: service_figures(rows) for name, rows in self.samples.items()},
            "generator": {"cpu_percent": round(100.0 * generator_cpu, 1)},
            "samples": {"in_flight": in_flight, "fields": list(SAMPLE_FIELDS), "services": self.samples},
            "call_records": records,
        }


def calls_up(records: list[dict[str, Any]]) -> list[list[float]]:
    """[seconds, calls up] at every start and end of a call."""
    changes = sorted([(r["started_s"], 1) for r in records] + [(r["ended_s"], -1) for r in records])
    up, points = 0, []
    for at, change in changes:
        up += change
        points.append([at, up])
    return points


def service_figures(rows: list[list[float | None]]) -> dict[str, Any]:
    """CPU % (over every incarnation seen), RSS MB and open files (first, last, max), restarts."""
    live = [row for row in rows if row[1] is not None]
    if not live:
        return {"available": False, "samples": len(rows), "unavailable_samples": len(rows)}
    cpu = 0.0
    previous: list[float | None] | None = None
    for row in live:
        if previous is not None:
            # a new start time is a restarted process: its counter began at 0 during the run
            cpu += (row[2] or 0.0) - ((previous[2] or 0.0) if row[4] == previous[4] else 0.0)
        previous = row
    span = (live[-1][0] or 0.0) - (live[0][0] or 0.0)
    rss = [(row[1] or 0.0) / 1e6 for row in live]
    fds = [int(row[3]) for row in live if row[3] is not None]
    return {
        "available": True, "samples": len(rows), "unavailable_samples": len(rows) - len(live),
        "cpu_percent": round(100.0 * cpu / span, 1) if span > 0 else None,
        "rss_mb": {"first": round(rss[0], 1), "last": round(rss[-1], 1), "max": round(max(rss), 1)},
        "open_fds": {"first": fds[0], "last": fds[-1], "max": max(fds)} if fds else None,
        "restarts": len({row[4] for row in live}) - 1,
    }


def write_plot(summary: dict[str, Any], path: Path, markers: list[tuple[float, str]] | None = None) -> None:
    """Turn latency over time (each turn, and p50/p95 per time bin), calls in flight, each service's
    RSS; ``markers`` (seconds, label) draw vertical lines, e.g. where a soak killed a service."""
    from matplotlib.figure import Figure

    records = summary["call_records"]
    wall = max(summary["wall_s"], 1.0)
    figure = Figure(figsize=(11, 10), layout="constrained")
    latency_axes, flight_axes, rss_axes = figure.subplots(3, 1, sharex=True)
    turns = np.asarray([turn for r in records for turn in r["turns"]], dtype=float).reshape(-1, 2)
    if len(turns):
        latency_axes.scatter(turns[:, 0], turns[:, 1], s=6, alpha=0.4, label="each turn")
        width = max(5.0, wall / 30.0)
        edges = np.arange(0.0, wall + width, width)
        bins = np.digitize(turns[:, 0], edges)
        centers, p50, p95 = [], [], []
        for b in sorted(set(bins.tolist())):
            chosen = turns[bins == b, 1]
            centers.append(edges[b - 1] + width / 2)
            p50.append(np.percentile(chosen, 50))
            p95.append(np.percentile(chosen, 95))
        latency_axes.plot(centers, p50, label="p50", linewidth=2)
        latency_axes.plot(centers, p95, label="p95", linewidth=2)
    failed_at = [r["ended_s"] for r in records if r["failures"]]
    if failed_at:
        top = float(turns[:, 1].max()) if len(turns) else 1000.0
        latency_axes.scatter(failed_at, [top] * len(failed_at), marker="x", color="red", label="a call failed")
    stats = summary["turn_latency_ms"]
    title = "turn latency on the wire"
    if stats["count"]:
        title += (f": p50 {stats['p50']:.0f} ms, p95 {stats['p95']:.0f} ms, p99 {stats['p99']:.0f} ms"
                  f" (n={stats['count']})")
    latency_axes.set_title(title)
    latency_axes.set_ylabel("ms")
    latency_axes.legend(loc="upper left", fontsize="small")
    flight = np.asarray(summary["samples"]["in_flight"], dtype=float).reshape(-1, 2)
    if len(flight):
        flight_axes.step(flight[:, 0], flight[:, 1], where="post")
    calls = summary["calls"]
    flight_axes.set_title(f"calls up: {calls['placed']} placed ({calls['offered_per_s'] or '-'}/s), {calls['ok']} ok, "
                          f"{calls['failed']} failed, at most {calls['max_up']} at once")
    flight_axes.set_ylabel("calls")
    for name, rows in summary["samples"]["services"].items():
        points = [(row[0], row[1] / 1e6) for row in rows if row[1] is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            rss_axes.plot(xs, ys, label=name)
    rss_axes.set_title("RSS per service")
    rss_axes.set_ylabel("MB")
    rss_axes.set_xlabel("seconds since the first call")
    if summary["samples"]["services"]:
        rss_axes.legend(loc="upper left", fontsize="small")
    for at, label in markers or []:
        for axes in (latency_axes, flight_axes, rss_axes):
            axes.axvline(at, color="grey", linestyle=":", linewidth=1)
        rss_axes.annotate(label, (at, 0), xycoords=("data", "axes fraction"), rotation=90, fontsize="x-small",
                          va="bottom", ha="right")
    figure.suptitle(f"dialtone load: {summary['uri']} ({summary['started_at']})")
    figure.savefig(path, dpi=100)


def format_summary(summary: dict[str, Any]) -> str:
    calls, turns, setup = summary["calls"], summary["turn_latency_ms"], summary["setup_ms"]

    def stats(s: dict[str, Any]) -> str:
        return f"p50 {s['p50']:.0f} ms  p95 {s['p95']:.0f} ms  p99 {s['p99']:.0f} ms  (n={s['count']})" \
            if s["count"] else "no samples"

    lines = [f"dialtone load: {summary['uri']}, {summary['wall_s']:.0f} s",
             f"  calls:        {calls['placed']} placed, {calls['connected']} answered, {calls['ok']} ok, "
             f"{calls['failed']} failed; at most {calls['max_up']} up at once",
             f"  calls/s:      {calls['offered_per_s'] or '-'} placed (while placing), "
             f"{calls['completed_per_s'] or '-'} completed (whole run)",
             "  ended by:     " + ", ".join(f"{k} {v}" for k, v in calls["ended_by"].items()),
             f"  turn latency: {stats(turns)}",
             f"  call setup:   {stats(setup)}"]
    if summary["failures_by_kind"]:
        lines.append("  failures:     " + ", ".join(f"{k} {v}" for k, v in summary["failures_by_kind"].items()))
    for name, figures in summary["services"].items():
        if not figures["available"]:
            lines.append(f"  {name:<21} unavailable (no /metrics answer)")
            continue
        cpu = "-" if figures["cpu_percent"] is None else f"{figures['cpu_percent']:.1f} %"
        fds = figures["open_fds"] or {}
        lines.append(f"  {name:<21} CPU {cpu:>7}  RSS {figures['rss_mb']['last']:.0f} MB "
                     f"(max {figures['rss_mb']['max']:.0f})  open files {fds.get('last', '-')}"
                     + (f"  restarts {figures['restarts']}" if figures["restarts"] else "")
                     + (f"  unavailable in {figures['unavailable_samples']} samples"
                        if figures["unavailable_samples"] else ""))
    lines.append(f"  generator CPU {summary['generator']['cpu_percent']:.1f} %")
    return "\n".join(lines)


# --- command line -----------------------------------------------------------------------------------
def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text[:20]!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text[:20]}")
        return value
    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "load", help="many scripted calls at once: turn latency p50/p95/p99, failures by kind, calls/s, CPU/RSS",
        description="Place many scripted calls against a running stack and report turn latency, failures by "
                    "kind, calls/s and each service's CPU and RSS (JSON + PNG). Example, against `dialtone up`: "
                    "dialtone load --calls 20 --rate 2. See docs/load.md.")
    parser.add_argument("uri", nargs="?", default="",
                        help=f"sip:user@host[:port] (default: the script's 'call:', else {DEFAULT_URI})")
    parser.add_argument("--script", help="a load script (YAML; see docs/load.md); default: order_status with a "
                                         "fresh order number per call")
    parser.add_argument("--calls", type=_positive(int), help="place this many calls (default 10 without --duration)")
    parser.add_argument("--duration", type=_positive(float), help="place calls for this many seconds")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=_positive(float), help="new calls per second (open loop)")
    mode.add_argument("--concurrency", type=_positive(int), help="callers placing calls back to back (default 1)")
    parser.add_argument("--arrivals", choices=("uniform", "poisson"), default="uniform",
                        help="with --rate: evenly spaced or Poisson arrivals")
    parser.add_argument("--max-in-flight", type=_positive(int), default=100,
                        help="calls up at most; an arrival beyond is counted as generator_saturated")
    parser.add_argument("--call-timeout", type=_positive(float), default=None,
                        help="seconds per call (default: the script's timeout, else 90)")
    parser.add_argument("--step-timeout", type=_positive(float), default=30.0)
    parser.add_argument("--rtp-timeout", type=_positive(float), default=10.0,
                        help="hang up a call whose far end sent no RTP for this long")
    parser.add_argument("--seed", type=int, default=None, help="seed for the values drawn and the arrivals")
    parser.add_argument("--base-port", type=int, default=7000,
                        help="`dialtone up --base-port` of the stack: metrics at BASE+101..104 (default 7000)")
    parser.add_argument("--metrics-host", default=None, help="host of the metrics endpoints (default: the URI's)")
    parser.add_argument("--no-metrics", action="store_true", help="do not sample the services' CPU and RSS")
    parser.add_argument("--sample-every", type=_positive(float), default=2.0, help="seconds between samples")
    parser.add_argument("--json", dest="json_path", default=None,
                        help=f"the summary (default {DEFAULT_OUT_DIR}/load-<time>.json)")
    parser.add_argument("--plot", dest="plot_path", default=None, help="the PNG (default: next to the JSON)")
    parser.add_argument("--bind", default="127.0.0.1", help="local address for SIP and RTP")
    parser.add_argument("--tts", default="piper", choices=("piper", "espeak", "flite"), help="TTS engine")
    parser.add_argument("--voice", default="", help="TTS voice (default: the packaged piper voice)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=_run)


def _options(args: argparse.Namespace) -> tuple[LoadOptions, LoadScript]:
    from dialtone.media_gateway.calls import parse_sip_uri

    if args.script:
        try:
            text = Path(args.script).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{args.script}: cannot read: {exc.strerror}") from None
        script = parse_load_script(text, args.script)
    else:
        script = parse_load_script(DEFAULT_SCRIPT, "order_status (built in)")
    uri = args.uri or script.uri or DEFAULT_URI
    try:
        _user, host, _port = parse_sip_uri(uri)
    except ValueError as exc:
        raise ScriptError(str(exc)) from None
    calls = args.calls if args.calls is not None or args.duration is not None else 10
    metrics = {} if args.no_metrics else metrics_urls(args.metrics_host or host, args.base_port)
    options = LoadOptions(uri=uri, calls=calls, duration_s=args.duration, rate=args.rate,
                          concurrency=args.concurrency or 1, arrivals=args.arrivals, max_in_flight=args.max_in_flight,
                          call_timeout_s=args.call_timeout or script.timeout_s or 90.0,
                          step_timeout_s=args.step_timeout, rtp_timeout_s=args.rtp_timeout, seed=args.seed,
                          metrics=metrics, sample_s=args.sample_every, bind=args.bind, tts=args.tts,
                          voice=args.voice, progress=not args.quiet)
    return options, script


def _run(args: argparse.Namespace) -> int:
    from dialtone.common.logging import setup_logging

    try:
        options, script = _options(args)
    except ScriptError as exc:
        print(f"dialtone load: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGS
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = Path(args.json_path) if args.json_path else DEFAULT_OUT_DIR / f"load-{stamp}.json"
    plot_path = Path(args.plot_path) if args.plot_path else json_path.with_suffix(".png")
    setup_logging("caller", "WARNING", "text")
    try:
        summary = asyncio.run(run_load(options, script))
    except OSError as exc:      # the caller's own SIP/RTP sockets, or the TTS model files
        print(f"dialtone load: cannot start the caller: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGS
    json_path.parent.mkdir(parents=True, exist_ok=True)
    summary["outputs"] = {"json": str(json_path), "plot": None}
    try:
        plot_path.parent.mkdir(parents=True, exist_ok=True)
        write_plot(summary, plot_path)
        summary["outputs"]["plot"] = str(plot_path)
    except ImportError:
        print("dialtone load: no plot: matplotlib is not installed (pip install 'dialtone[load]')", file=sys.stderr)
    json_path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(format_summary(summary))
    print(f"  summary:      {json_path}" + (f"\n  plot:         {plot_path}" if summary["outputs"]["plot"] else ""))
    return EXIT_CALLS_FAILED if summary["calls"]["failed"] else EXIT_OK


async def run_load(options: LoadOptions, script: LoadScript) -> dict[str, Any]:
    """Load the voice, start the caller's SIP stack, render every phrase, run the calls; the summary.
    SIGINT/SIGTERM end the run early (calls up are hung up) and the summary covers what ran."""
    from dialtone.caller.phone import Phone
    from dialtone.caller.voices import Voices

    voices = await Voices.load(options.tts, options.voice, asr=script.expects())
    phone = Phone(options.bind)
    try:
        for phrase in script.phrases():
            await voices.render(phrase)
        await phone.start()
        run = LoadRun(options, script, phone, voices)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, run.stop)
        try:
            return await run.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    finally:
        await phone.stop()
        voices.close()
