"""The example backend's GET /stats: requests per Idempotency-Key and per request, what the soak checks
(every backend call ran once per key) reads; through a real gateway process, a call made twice with one
key reaches the backend once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dialtone.integration_gateway.config import EXAMPLE_SERVICES_FILE
from dialtone.integration_gateway.example_backend import make_server

PREFIX = "DIALTONE_INTEGRATION_GATEWAY__"


@pytest.fixture
def backend_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_stats_count_requests_per_idempotency_key_and_per_request(backend_url: str) -> None:
    with httpx.Client(base_url=backend_url) as client:
        assert client.get("/stats").json()["requests"] == 0
        client.get("/orders/12345", headers={"Idempotency-Key": "s1:1:0"})
        client.get("/orders/12345", headers={"Idempotency-Key": "s1:1:0"})      # the same key again
        client.get("/orders/777", headers={"Idempotency-Key": "s2:1:0"})
        client.post("/appointments", json={"date": "d", "time": "t"})           # no key
        client.get("/health")                                                   # not counted
        stats = client.get("/stats").json()
    assert stats == {
        "requests": 4, "keys": 2, "without_key": 1, "untracked": 0,
        "repeated_keys_count": 1, "repeated_keys": {"s1:1:0": 2},
        "repeated_requests_count": 1, "repeated_requests": {"GET /orders/12345": 2},
    }


def test_a_call_made_twice_with_one_key_reaches_the_backend_once(start_service: Any, backend_url: str) -> None:
    gateway = start_service("integration-gateway", env={PREFIX + "SERVICES_FILE": str(EXAMPLE_SERVICES_FILE),
                                                        "DIALTONE_EXAMPLE_BACKEND_URL": backend_url})
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "dialtone", "backend", "call", "orders", "get_status",
                               "--payload", '{"order_id": "4711"}', "--key", "ops-9:3:0", "--address",
                               gateway.address], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    stats = httpx.get(backend_url + "/stats").json()
    assert stats["requests"] == 1 and stats["keys"] == 1 and stats["repeated_keys_count"] == 0, stats
