"""The CI size of `python -m bench.soak`: one minute of load (two callers) through `dialtone up` with its
state in a real redis-server, each service killed once in turn and Redis restarted, then every check
(calls ended with a reason, backend once per idempotency key, no open session, resources) from the
report. One minute, not two: with the stack's start and the drain a 2-minute soak takes about three
on this machine; docs/load.md has the figures of longer runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dialtone.caller.load import SERVICES

from tests.helpers import REPO


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_one_minute_soak_with_every_service_killed_once_passes_its_checks(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    proc = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "1", "--concurrency", "2",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=360)
    output = proc.stdout + proc.stderr
    assert (out / "soak.json").exists(), output + (out / "load.log").read_text(errors="replace")[-3000:]
    report = json.loads((out / "soak.json").read_text())
    # every service, then redis-server, killed once and serving again
    assert [event["target"] for event in report["chaos"]] == [*SERVICES, "redis-server"], report["chaos"]
    assert all(event["recovered"] for event in report["chaos"]), report["chaos"]
    checks = report["checks"]
    calls = checks["calls_ended_with_reason"]
    assert calls["calls"] >= 3 and calls["without_reason"] == [] and calls["hanging_outside_chaos"] == [], calls
    backend = checks["backend_once_per_key"]
    assert backend["requests"] >= 1 and backend["repeated_keys_count"] == 0, backend
    assert backend["repeated_order_lookups"] == {}, backend
    sessions = checks["no_open_sessions"]
    # every call that heard the dialog had a session; one answered while a service was down may not
    assert sessions["calls_greeted"] >= 1 and sessions["sessions"] >= sessions["calls_greeted"], sessions
    assert sessions["open"] == 0, sessions
    assert set(checks["flat_after_warmup"]["services"]) == set(SERVICES)
    assert report["ok"] and proc.returncode == 0, output
    for name in ("soak.png", "load-chaos.png", "load.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
