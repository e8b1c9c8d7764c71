"""Hostile Invokes against a gateway process (issue 21): each is refused with a short,
specific message before anything is stored or sent, none counts against a backend's
breaker or retries, and other calls go on as before. Plus the gateway's own line: a
request httpx would refuse is an invalid_request that no backend ever saw."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import pytest
from dialtone.common.config import ConfigError
from dialtone.integration_gateway.config import IntegrationGatewayConfig, load_services
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc

from tests.integration_gateway.backend_server import Backend
from tests.integration_gateway.conftest import GatewayFactory, call, service

PREFIX = "DIALTONE_INTEGRATION_GATEWAY__"
# Short enough for any gRPC metadata limit; the echo of a 1 MB key was 1,000,063 bytes.
MAX_MESSAGE_CHARS = 300


def services_file(tmp_path: Path, backend_url: str) -> str:
    path = tmp_path / "services.yaml"
    path.write_text(f"""\
services:
  orders:
    base_url: {backend_url}
    allow_networks: [127.0.0.0/8]
    retry: {{max_attempts: 3, backoff_initial_s: 0.01, backoff_max_s: 0.02}}
    breaker: {{failure_threshold: 2, reset_timeout_s: 60}}
    methods:
      get_status: {{verb: GET, path: "/orders/{{order_id}}"}}
      create: {{verb: POST, path: /orders}}
""")
    return str(path)


def request(key: str, session_id: str | None = None, method: str = "get_status", payload: str = "",
            **fields: object) -> pb.ActionRequest:
    return pb.ActionRequest(session_id=key.rsplit(":", 2)[0] if session_id is None else session_id,
                            idempotency_key=key, service="orders", method=method,
                            payload_json=payload or '{"order_id": "1234"}', **fields)


DEEP = "[" * 30_000 + "]" * 30_000  # the 60 kB payload
HOSTILE = [
    ("trailing newline in session and key", request("x\n:0:0"), "session_id 'x\\n' is invalid"),
    ("trailing newline in the key's index", request("x:0:0\n", session_id="x"), "non-negative integers"),
    # 100 kB fields: under the server's 256 KiB message limit, so the gateway's own size checks answer
    ("100 kB idempotency key", request("k" * 100_000 + ":0:0", session_id="k"),
     "idempotency_key is 100004 characters; the limit is 157"),
    ("100 kB session id", request("k:0:0", session_id="k" * 100_000), "session_id is 100000 characters"),
    ("100 kB method", request("k:0:0", method="m" * 100_000), "method is 100000 characters"),
    ("deeply nested payload", request("k:1:0", payload=DEEP), "nested deeper than 64 levels"),
    ("deeply nested object", request("k:1:1", payload='{"a":' * 10_000 + "1" + "}" * 10_000),
     "nested deeper than 64 levels"),
    ("NaN", request("k:2:0", method="create", payload='{"qty": NaN}'), "NaN is not a JSON number"),
    ("overflowing number", request("k:2:1", method="create", payload='{"qty": 1e999}'), "out of the range"),
    ("lone surrogate in a path value", request("k:3:0", payload='{"order_id": "\\ud800"}'), "lone surrogate"),
    ("lone surrogate in the body", request("k:3:1", method="create", payload='{"note": "\\udfff"}'),
     "lone surrogate"),
    ("5,000-digit number", request("k:4:0", method="create", payload='{"n": ' + "9" * 5000 + "}"), "digits"),
    ("11-minute timeout", request("k:5:0", timeout_ms=660_000), "timeout_ms is 660000; the limit is 600000"),
]


@pytest.fixture
def gateway(start_service, backend: Backend, tmp_path: Path):  # noqa: ANN001, ANN201
    return start_service("integration-gateway", env={PREFIX + "SERVICES_FILE": services_file(tmp_path, backend.url)})


async def test_hostile_invokes_are_refused_and_leave_the_backend_alone(gateway, backend: Backend) -> None:  # noqa: ANN001
    """Every hostile Invoke is INVALID_ARGUMENT with a short message naming the problem; the
    backend saw none of them, its breaker stayed closed (the issue's five newline keys opened
    it), and a normal call afterwards is ok at the first attempt."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = pb_grpc.IntegrationGatewayStub(channel)
        for _round in range(5):  # the breaker's threshold is 2: five refusals would open it twice over
            for name, hostile, reason in HOSTILE:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.Invoke(hostile, timeout=10)
                details = refused.value.details() or ""
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (name, details[:200])
                assert reason in details and len(details) < MAX_MESSAGE_CHARS, (name, details[:400])
        # the 1 MB key: refused by gRPC itself before it is read, and still counted nowhere
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await stub.Invoke(request("k" * 1_000_000 + ":0:0", session_id="k"), timeout=10)
        assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(too_big.value.details() or "") < MAX_MESSAGE_CHARS
        assert backend.seen() == []
        normal = await stub.Invoke(request("normal:1:0"), timeout=10)
    assert normal.ok and normal.attempts == 1 and json.loads(normal.body_json)["path"] == "/orders/1234"
    metrics = httpx.get(f"http://127.0.0.1:{gateway.metrics_port}/metrics").text
    assert 'dialtone_backend_breaker_state{service="orders"} 0.0' in metrics
    assert 'outcome="connect_error"' not in metrics


async def test_unknown_names_are_quoted_short(gateway) -> None:  # noqa: ANN001
    """An unknown service or method comes back as a result whose message quotes a short prefix."""
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = pb_grpc.IntegrationGatewayStub(channel)
        unknown_method = await stub.Invoke(request("u:1:0", method="m" * 128), timeout=10)
        unknown_service = await stub.Invoke(pb.ActionRequest(session_id="u", idempotency_key="u:2:0",
                                                              service="s" * 128, method="x"), timeout=10)
    assert unknown_method.error_kind == pb.ERROR_KIND_INVALID_REQUEST and "(128 characters)" in \
        unknown_method.error_message and len(unknown_method.error_message) < MAX_MESSAGE_CHARS
    assert unknown_service.error_kind == pb.ERROR_KIND_UNKNOWN_SERVICE and "(128 characters)" in \
        unknown_service.error_message and len(unknown_service.error_message) < MAX_MESSAGE_CHARS


async def test_a_request_httpx_refuses_is_invalid_and_never_a_backend_failure(
        backend: Backend, make_gateway: GatewayFactory) -> None:
    """Past the edge's checks (an in-process caller), a key with a newline or a body that cannot
    be encoded is invalid_request after zero attempts: no backend request, no retry, and five
    of them leave the breaker (threshold 3) closed for the next call."""
    gateway = make_gateway({"svc": service(backend.url)})
    for n in range(5):
        bad_header = await gateway.invoke(call(key=f"s1:{n}:0\n"))
        bad_body = await gateway.invoke(call(method="create", payload={"qty": float("nan")}))
        for outcome in (bad_header, bad_body):
            assert not outcome.ok and outcome.error_kind == "invalid_request" and outcome.attempts == 0
    assert "control character" in bad_header.error_message and "ValueError" in bad_body.error_message
    assert backend.seen() == []
    normal = await gateway.invoke(call())
    assert normal.ok and normal.attempts == 1


@pytest.mark.parametrize("headers", [{"X-Tenant": "a\nb"}, {"X-Tenant": "caf\u00e9"}, {"Bad Name": "v"}])
def test_configured_headers_are_checked_at_load(headers: dict[str, str]) -> None:
    """A fixed header that could never be sent stops the gateway at load, not every call later."""
    svc = service("http://127.0.0.1:1")
    svc.headers = headers
    with pytest.raises(ConfigError, match="headers"):
        load_services(IntegrationGatewayConfig(services={"svc": svc}))
