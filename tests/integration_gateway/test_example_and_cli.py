"""The example backend, the packaged example services config, and `dialtone backend call`
through a running gateway, all as real processes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dialtone.integration_gateway.config import EXAMPLE_SERVICES_FILE
from dialtone.integration_gateway.example_backend import make_server

from tests.helpers import free_port, wait_for_port

PREFIX = "DIALTONE_INTEGRATION_GATEWAY__"


@pytest.fixture
def example_url() -> Iterator[str]:
    """`dialtone example-backend` as a process on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dialtone", "example-backend", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 20.0)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("order_id", "status"), [("12345", 200), ("4711", 200), ("99999", 200),
                                                  ("12340", 404), ("123", 404), ("abcd", 404)])
def test_example_orders(order_id: str, status: int) -> None:
    """Ids of 4+ digits not ending in 0 are shipped on Tuesday; others are not found."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        reply = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/orders/{order_id}")
    finally:
        server.shutdown()
        server.server_close()
    assert reply.status_code == status
    expected = {"order_id": order_id, "status": "shipped", "eta": "Tuesday"} if status == 200 \
        else {"error": "not found"}
    assert reply.json() == expected


def test_example_appointments(example_url: str) -> None:
    """POST /appointments with date and time confirms AB12; without them it is a 400."""
    assert httpx.post(example_url + "/appointments", json={"date": "2026-12-01", "time": "10:00"}).json() == \
        {"confirmation": "AB12"}
    bad = httpx.post(example_url + "/appointments", json={"date": "2026-12-01"})
    assert bad.status_code == 400 and "required" in bad.json()["error"]


def backend_call(address: str, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "dialtone", "backend", "call", *args, "--address", address],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_calls_the_example_through_a_gateway(start_service, example_url: str) -> None:  # noqa: ANN001
    """A gateway loading the packaged example services reaches the example backend, and
    `dialtone backend call` prints each result (exit 0 when ok, 1 when not, 2 when refused)."""
    gateway = start_service("integration-gateway", env={PREFIX + "SERVICES_FILE": str(EXAMPLE_SERVICES_FILE),
                                                        "DIALTONE_EXAMPLE_BACKEND_URL": example_url})
    code, out, _ = backend_call(gateway.address, "orders", "get_status", "--payload", '{"order_id": "12345"}',
                                "--key", "ops-1:1:0")
    result = json.loads(out)
    assert code == 0 and result["ok"] and result["attempts"] == 1 and result["idempotency_key"] == "ops-1:1:0"
    assert result["body"] == {"order_id": "12345", "status": "shipped", "eta": "Tuesday"}

    code, out, _ = backend_call(gateway.address, "appointments", "book", "--payload",
                                '{"date": "2026-12-01", "time": "10:00"}')
    assert code == 0 and json.loads(out)["body"] == {"confirmation": "AB12"} and json.loads(out)["http_status"] == 201

    code, out, _ = backend_call(gateway.address, "orders", "get_status", "--payload", '{"order_id": "12340"}')
    result = json.loads(out)
    assert code == 1 and result["error_kind"] == "http_error" and result["http_status"] == 404

    code, _, err = backend_call(gateway.address, "orders", "get_status", "--payload", "not json")
    assert code == 2 and "INVALID_ARGUMENT" in err and "not valid JSON" in err

    metrics = httpx.get(f"http://127.0.0.1:{gateway.metrics_port}/metrics").text
    assert 'dialtone_backend_requests_total{outcome="ok",service="orders"} 1.0' in metrics
    assert 'dialtone_backend_requests_total{outcome="http_error",service="orders"} 1.0' in metrics
    assert 'dialtone_backend_breaker_state{service="appointments"} 0.0' in metrics
    assert 'dialtone_backend_request_seconds_count{outcome="ok",service="appointments"} 1.0' in metrics

    events = [e for e in gateway.log_events() if e.get("event") == "backend_call"]
    assert {(e["backend_service"], e["outcome"]) for e in events} >= {("orders", "ok"), ("appointments", "ok"),
                                                                      ("orders", "http_error")}
    assert all(e["session_id"] == e["idempotency_key"].rsplit(":", 2)[0] for e in events)
    assert gateway.stop() == 0  # SIGTERM drains and exits cleanly


def test_cli_reports_an_unreachable_gateway() -> None:
    """With no gateway at the address the command says so and exits 2."""
    code, _, err = backend_call(f"127.0.0.1:{free_port()}", "orders", "get_status", "--timeout-ms", "500")
    assert code == 2 and "UNAVAILABLE" in err


def test_bad_services_file_stops_the_gateway_with_the_place(tmp_path: Path) -> None:
    """A gateway whose services_file is wrong exits 2 naming the file, line and key."""
    bad = tmp_path / "svc.yaml"
    bad.write_text("services:\n  orders:\n    base_url: http://127.0.0.1:1\n    methods:\n      x: {verb: GOT}\n")
    env = {PREFIX + "SERVICES_FILE": str(bad), PREFIX + "GRPC__PORT": str(free_port()),
           PREFIX + "METRICS__PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "dialtone", "integration-gateway"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})
    assert proc.returncode == 2
    assert "svc.yaml:5: key 'services.orders.methods.x.verb'" in proc.stderr
