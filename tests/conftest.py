"""Fixtures every test folder may use: free ports, service processes, a real redis-server."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServiceProcess, free_port, wait_for_port


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator:
    """Start `dialtone <service>` as a process; all are stopped at the end of the test."""
    started: list[ServiceProcess] = []

    def start(service: str, env: dict[str, str] | None = None, config: str | None = None,
              wait: bool = True, timeout: float = 60.0) -> ServiceProcess:
        proc = ServiceProcess.start(service, tmp_path, env=env, config=config)
        started.append(proc)
        if wait:
            proc.wait_serving(timeout)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian package redis-server; scripts/system-deps.sh test)")
    port_number = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port_number), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port_number, 10.0)
        yield f"redis://127.0.0.1:{port_number}/0"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
