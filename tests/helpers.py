"""Test helpers shared by every test folder (import as `tests.helpers`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.rdatatype
import dns.rrset
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout} s")


def health_status(address: str, timeout: float = 2.0) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        return int(reply.status)


def env_prefix(service: str) -> str:
    return "DIALTONE_" + service.upper().replace("-", "_") + "__"


class ServiceProcess:
    """`python -m dialtone <service>` on free ports, its stderr captured to a file."""

    def __init__(self, service: str, proc: subprocess.Popen[bytes], grpc_port: int, metrics_port: int,
                 log_path: Path) -> None:
        self.service = service
        self.proc = proc
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.log_path = log_path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @classmethod
    def start(cls, service: str, workdir: Path, env: dict[str, str] | None = None,
              config: str | None = None) -> ServiceProcess:
        grpc_port, metrics_port = free_port(), free_port()
        prefix = env_prefix(service)
        full_env = dict(os.environ)
        full_env.update({
            prefix + "GRPC__PORT": str(grpc_port),
            prefix + "METRICS__PORT": str(metrics_port),
        })
        full_env.update(env or {})
        argv = [sys.executable, "-m", "dialtone", service]
        if config:
            argv += ["--config", config]
        log_path = workdir / f"{service}-{grpc_port}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(argv, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
        return cls(service, proc, grpc_port, metrics_port, log_path)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_events(self) -> list[dict]:
        events = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return events

    def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.service} exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if health_status(self.address, 1.0) == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.service} not SERVING after {timeout} s:\n{self.log_text()}")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int:
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


class ReplicaDns(asyncio.DatagramProtocol):
    """A DNS server on loopback answering A queries with ``addresses`` (what a headless Service's name
    resolves to: one address per ready pod), so a test can add a replica the way an HPA does."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text_list(question.name, 1, "IN", "A", list(self.addresses)))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)
