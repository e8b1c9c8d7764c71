"""The whole platform as real processes on free loopback ports: the example backend, the
integration gateway, the conversation runtime, the speech gateway (flite voice, so prompts cost
little) and the media gateway with its control HTTP API. One instance serves a whole fuzz run
(tests/fuzz and ``python -m bench.fuzz``); ``assert_clean`` is the after-check of every fuzz test.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
from dialtone.integration_gateway.config import EXAMPLE_SERVICES_FILE
from dialtone.v1 import integration_gateway_pb2 as ig
from dialtone.v1 import integration_gateway_pb2_grpc as ig_grpc
from dialtone.v1 import media_gateway_pb2 as mg
from dialtone.v1 import media_gateway_pb2_grpc as mg_grpc
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ServiceProcess, free_port, health_status, wait_for_port

SETTLE_S = 20.0  # how long streams and calls of a finished test may take to end
BREAKER_RECOVERY_S = 15.0  # the example services' breakers reset after 10 s
HTTP_TIMEOUT_S = 20.0


@dataclasses.dataclass
class HttpReply:
    status: int
    body: bytes


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.backend_port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port()
        # Originate's plausible target: a loopback UDP port where nothing answers (the call rings).
        self.dead_sip_port = free_port(socket.SOCK_DGRAM)
        self.backend: subprocess.Popen[bytes] | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.originated: set[str] = set()  # session ids of calls the fuzz created; hung up by assert_clean
        self._channels: dict[str, grpc.Channel] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> Stack:
        with open(self.workdir / "example-backend.log", "wb") as log:
            self.backend = subprocess.Popen(
                [sys.executable, "-m", "dialtone", "example-backend", "--port", str(self.backend_port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for_port("127.0.0.1", self.backend_port, 30)
        integration = self._start("integration-gateway", {
            "SERVICES_FILE": str(EXAMPLE_SERVICES_FILE)}, {"DIALTONE_EXAMPLE_BACKEND_URL": self.backend_url})
        runtime = self._start("conversation-runtime", {
            "INTEGRATION_ADDRESS": integration.address, "STORE__PATH": str(self.workdir / "sessions.sqlite3"),
            "RELOAD_INTERVAL_S": "0"})
        speech = self._start("speech-gateway", {"RUNTIME_ADDRESS": runtime.address, "TTS__ENGINE": "flite"})
        self._start("media-gateway", {
            "SPEECH_GATEWAY_ADDRESS": speech.address, "SIP__PORT": str(self.sip_port),
            "CONTROL_HTTP__PORT": str(self.http_port)})
        for process in self.services.values():
            process.wait_serving(120)
        return self

    def _start(self, service: str, settings: dict[str, str], extra_env: dict[str, str] | None = None
               ) -> ServiceProcess:
        prefix = "DIALTONE_" + service.upper().replace("-", "_") + "__"
        env = {prefix + key: value for key, value in settings.items()}
        env[prefix + "SHUTDOWN_GRACE_S"] = "2"
        # Connections live as long as the stack: an aged one's GOAWAY fails a request of over 256 KiB in
        # flight (too big for gRPC's transparent retry) with UNAVAILABLE, which these tests would count as
        # a wrong refusal. Ageing is tested in tests/*/test_balancing.py.
        env[prefix + "GRPC__MAX_CONNECTION_AGE_S"] = "0"
        env.update(extra_env or {})
        process = ServiceProcess.start(service, self.workdir, env=env)
        self.services[service] = process
        return process

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        for process in self.services.values():
            process.stop()
        if self.backend is not None:
            self.backend.terminate()
            self.backend.wait(10)

    # -- access -------------------------------------------------------------------------------
    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def address(self, service: str) -> str:
        return self.services[service].address

    def channel(self, service: str) -> grpc.Channel:
        """One shared channel per service (a stream's own channel comes from ``new_channel``)."""
        if service not in self._channels:
            self._channels[service] = self.new_channel(service)
        return self._channels[service]

    def new_channel(self, service: str) -> grpc.Channel:
        # Requests go out up to the servers' limit and a bit beyond: over it, the answer is gRPC's own.
        return grpc.insecure_channel(self.address(service), options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", 64 * 1024 * 1024)])

    def pid(self, service: str) -> int:
        return self.services[service].proc.pid

    def metrics(self, service: str) -> dict[str, float]:
        """The service's /metrics samples by name (labels appended as name{k=v,...})."""
        url = f"http://127.0.0.1:{self.services[service].metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        return samples

    def http(self, method: str, target: str, body: bytes = b"") -> HttpReply:
        """One request to the control HTTP API as given, byte for byte (no client library sends a
        hostile target), and its answer; the server closes the connection after each."""
        head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("utf-8", "surrogateescape")
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=HTTP_TIMEOUT_S) as sock:
            try:
                sock.sendall(head + body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (and closed) before reading all of it; the answer is read below
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        raw = b"".join(chunks)
        header, _, payload = raw.partition(b"\r\n\r\n")
        status_line = header.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP answer: {raw[:200]!r}"
        return HttpReply(int(status_line.split()[1]), payload)

    def list_calls(self) -> list[mg.CallSummary]:
        stub = mg_grpc.MediaGatewayControlStub(self.channel("media-gateway"))
        return list(stub.ListCalls(mg.ListCallsRequest(), timeout=10).calls)

    def normal_backend_call(self) -> ig.ActionResult:
        """What a well-behaved call's dialog asks of the example backend."""
        session = "fuzz-check-" + uuid.uuid4().hex[:12]
        stub = ig_grpc.IntegrationGatewayStub(self.channel("integration-gateway"))
        return stub.Invoke(ig.ActionRequest(session_id=session, idempotency_key=f"{session}:1:0", service="orders",
                                            method="get_status", payload_json=json.dumps({"order_id": "12345"})),
                           timeout=15)

    # -- the after-check ----------------------------------------------------------------------
    def held(self) -> dict[str, float]:
        """What the services hold for calls in progress (all zero when no call is up)."""
        runtime, speech, media = (self.metrics(s) for s in ("conversation-runtime", "speech-gateway",
                                                            "media-gateway"))
        return {"runtime streams": runtime.get("dialtone_runtime_active_streams", 0.0),
                "speech calls": speech.get("dialtone_speech_active_calls", 0.0),
                "media calls": media.get("dialtone_media_active_calls", 0.0),
                "rtp sessions": media.get("dialtone_rtp_sessions_active", 0.0),
                "listed calls": float(len(self.list_calls()))}

    def open_breakers(self) -> dict[str, float]:
        return {k: v for k, v in self.metrics("integration-gateway").items()
                if k.startswith("dialtone_backend_breaker_state") and v}

    def baseline(self) -> dict[str, float]:
        """What is held before a test, once a breaker a failed test left open has closed again (a normal
        call is its trial after the reset timeout), so that one test's failure is not the next one's."""
        def closed() -> bool:
            if not self.open_breakers():
                return True
            self.normal_backend_call()
            return False

        wait_for(closed, BREAKER_RECOVERY_S, 1.0)
        return self.held()

    def settle(self, baseline: dict[str, float]) -> dict[str, float]:
        """Wait (bounded) until the services hold no more than ``baseline``; returns what is held beyond it."""
        extra: dict[str, float] = {}

        def settled() -> bool:
            extra.clear()
            extra.update({k: v - baseline.get(k, 0.0) for k, v in self.held().items() if v > baseline.get(k, 0.0)})
            return not extra

        wait_for(settled, SETTLE_S, 0.25)
        return extra

    def hang_up_originated(self) -> None:
        stub = mg_grpc.MediaGatewayControlStub(self.channel("media-gateway"))
        for session_id in sorted(self.originated):
            stub.HangupCall(mg.HangupCallRequest(session_id=session_id, reason="fuzz done"), timeout=10)
        self.originated.clear()

    def assert_clean(self, baseline: dict[str, float]) -> None:
        """Every service up and SERVING; once the calls the test originated are hung up, no stream, call or
        media session held beyond ``baseline`` (what was held before the test); every backend breaker
        closed, and a normal backend call through the integration gateway succeeds."""
        for name, process in self.services.items():
            assert process.proc.poll() is None, f"{name} exited with {process.proc.returncode}"
            assert health_status(process.address, 5) == health_pb2.HealthCheckResponse.SERVING, name
        self.hang_up_originated()
        extra = self.settle(baseline)
        assert not extra, f"held {SETTLE_S:.0f} s after the test, beyond what was held before it: {extra}"
        breakers = self.open_breakers()
        assert not breakers, f"backend breakers not closed: {breakers}"
        result = self.normal_backend_call()
        assert result.ok and result.http_status == 200, result
