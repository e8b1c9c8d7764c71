"""`dialtone load` against real processes: a short run through `dialtone up` (the order_status dialog,
a fresh order number per call) and a run against a media gateway whose speech gateway is down."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dialtone.caller.load import SERVICES

from tests.e2e.support import Stack, free_base_port, free_sip_port
from tests.helpers import env_prefix, free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("up"))
    yield running
    running.stop()


def run_load(folder: Path, uri: str, base_port: int, *options: str, wait_s: float = 240.0) -> tuple[
        int, dict[str, Any], str]:
    """`dialtone load` to its end: (exit status, the JSON summary, what it printed)."""
    summary = folder / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dialtone", "load", uri, "--base-port", str(base_port), "--json", str(summary),
         "--plot", str(folder / "load.png"), "--seed", "7", "--quiet", *options],
        capture_output=True, text=True, cwd=folder, timeout=wait_s)
    output = proc.stdout + proc.stderr
    assert summary.exists(), output
    return proc.returncode, json.loads(summary.read_text()), output


def test_three_calls_at_one_per_second_report_latency_calls_and_services(stack: Stack, tmp_path: Path) -> None:
    code, summary, output = run_load(tmp_path, stack.uri(), stack.base, "--calls", "3", "--rate", "1")
    assert code == 0, output + stack.log()[-3000:]
    assert "Traceback" not in output
    calls = summary["calls"]
    assert calls["placed"] == calls["connected"] == calls["ok"] == 3 and calls["failed"] == 0, calls
    assert summary["failures_by_kind"] == {}
    records = summary["call_records"]
    assert [r["index"] for r in records] == [0, 1, 2]
    for record in records:
        # each call ended with a reason: the dialog read the status out and hung up (or, when the order
        # number was misheard, transferred to an agent in the end)
        assert record["ended_by"] in ("bot_hangup", "transferred"), record
        assert record["connected"] and record["setup_ms"] > 0 and record["ended_s"] > record["started_s"]
        assert len(record["values"]["order"]) == 5 and set(record["values"]["order"]) <= set("123456789")
    # a fresh order number per call, and the dialog asked the backend for them
    orders = {r["values"]["order"] for r in records}
    assert len(orders) == 3
    assert any(f"GET /orders/{order} -> 200" in stack.log() for order in orders), stack.log()[-3000:]
    # arrivals one second apart
    starts = [r["started_s"] for r in records]
    assert starts[1] - starts[0] >= 0.9 and starts[2] - starts[1] >= 0.9
    turns = summary["turn_latency_ms"]
    assert turns["count"] >= 3 and 0 < turns["p50"] <= turns["p95"] <= turns["p99"] <= turns["max"]
    assert summary["setup_ms"]["count"] == 3
    assert calls["max_up"] >= 2 and calls["offered_per_s"] > 0 and calls["completed_per_s"] > 0
    for service in SERVICES:
        figures = summary["services"][service]
        assert figures["available"] and figures["rss_mb"]["max"] > 10 and figures["open_fds"]["last"] > 0, figures
        assert figures["cpu_percent"] is not None and figures["restarts"] == 0
    assert (tmp_path / "load.png").read_bytes().startswith(PNG_MAGIC)
    assert summary["outputs"]["plot"] == str(tmp_path / "load.png")
    assert "turn latency: p50" in output


def test_speech_gateway_down_is_reported_as_failures_by_kind(start_service: Any, tmp_path: Path) -> None:
    """Only a media gateway, its speech gateway address dead: each call is answered, then hung up when
    no speech gateway comes (speech_connect_timeout_s); the tool counts that and exits 1, no traceback."""
    base, sip_port = free_base_port(), free_sip_port()
    prefix = env_prefix("media-gateway")
    media = start_service("media-gateway", wait=False, env={
        prefix + "SIP__PORT": str(sip_port), prefix + "GRPC__PORT": str(base + 1),
        prefix + "METRICS__PORT": str(base + 101), prefix + "SPEECH_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        prefix + "SPEECH_CONNECT_TIMEOUT_S": "2"})
    media.grpc_port = base + 1     # where `dialtone up --base-port BASE` puts it, as the tool expects
    media.wait_serving()
    code, summary, output = run_load(tmp_path, f"sip:order_status@127.0.0.1:{sip_port}", base,
                                     "--calls", "2", "--rate", "2")
    assert code == 1, output
    assert "Traceback" not in output
    assert summary["calls"]["placed"] == 2 and summary["calls"]["failed"] == 2
    assert summary["failures_by_kind"] == {"ended_early": 2}, summary["failures_by_kind"]
    assert summary["calls"]["ended_by"] == {"bot_hangup": 2}
    assert summary["turn_latency_ms"]["count"] == 0 and summary["turn_latency_ms"]["p95"] is None
    assert summary["services"]["media-gateway"]["available"]
    for service in ("speech-gateway", "conversation-runtime", "integration-gateway"):
        assert summary["services"][service]["available"] is False
        assert f"{service}  " in output and "unavailable" in output
    assert "failures:     ended_early 2" in output


def test_bad_arguments_exit_2_with_a_message(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("vary: {order: {digits: 0}}\nsteps: [{say: '{order}'}]\n")
    proc = subprocess.run([sys.executable, "-m", "dialtone", "load", "--script", str(script), "--no-metrics"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "bad.yaml: vary.order: digits must be a whole number within 1..12" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dialtone", "load", "sip:order_status@127.0.0.1:99999",
                           "--no-metrics"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "dialtone load: SIP URI port out of range: 99999" in proc.stderr
