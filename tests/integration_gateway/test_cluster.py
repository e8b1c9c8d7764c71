"""Two gateway processes sharing a real redis-server: one backend call per key, one
breaker, one rate limit; and a malformed ActionRequest answered INVALID_ARGUMENT."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from dialtone.common import token_bucket
from dialtone.integration_gateway.store_redis import RedisStore
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc

from tests.integration_gateway.backend_server import Backend, Reply
from tests.integration_gateway.test_gateway_http import _closed_port

PREFIX = "DIALTONE_INTEGRATION_GATEWAY__"


def services_file(tmp_path: Path, backend_url: str, dead_url: str) -> str:
    path = tmp_path / "services.yaml"
    path.write_text(f"""\
services:
  shop:
    base_url: {backend_url}
    allow_networks: [127.0.0.0/8]
    retry: {{max_attempts: 2, backoff_initial_s: 0.01, backoff_max_s: 0.02}}
    rate_limit: {{rate_per_s: 0.01, burst: 3}}
    methods:
      order: {{verb: POST, path: /orders}}
      peek: {{verb: GET, path: "/peek/{{item}}"}}
  dead:
    base_url: {dead_url}
    allow_networks: [127.0.0.0/8]
    retry: {{max_attempts: 1}}
    breaker: {{failure_threshold: 2, reset_timeout_s: 60}}
    methods:
      ping: {{verb: GET, path: /ping}}
""")
    return str(path)


@pytest.fixture
def two_gateways(start_service, redis_server: str, backend: Backend, tmp_path: Path) -> list[str]:  # noqa: ANN001
    env = {PREFIX + "STORE__KIND": "redis", PREFIX + "STORE__REDIS_URL": redis_server,
           PREFIX + "SERVICES_FILE": services_file(tmp_path, backend.url, f"http://127.0.0.1:{_closed_port()}")}
    return [start_service("integration-gateway", env=env).address for _ in range(2)]


async def invoke(address: str, key: str, service: str = "shop", method: str = "order",
                 payload: dict | None = None) -> pb.ActionResult:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.IntegrationGatewayStub(channel)
        request = pb.ActionRequest(session_id=key.split(":")[0], idempotency_key=key, service=service,
                                   method=method, payload_json=json.dumps(payload or {"sku": "A"}))
        return await stub.Invoke(request, timeout=10)


async def test_cluster_shares_dedup_breaker_and_rate_limit(two_gateways: list[str], backend: Backend) -> None:
    """Across two processes: one key calls the backend once; a breaker opened through one
    gateway is open on the other; the rate limit is one bucket for both."""
    a, b = two_gateways
    # The same key to both at once: one backend call, the same result twice.
    backend.script("/orders", [Reply(201, {"order": "O-1"}, delay_s=0.5)])
    first, second = await asyncio.gather(invoke(a, "call7:3:0"), invoke(b, "call7:3:0"))
    assert len(backend.seen("/orders")) == 1
    assert first.ok and second.ok and first.body_json == second.body_json == '{"order": "O-1"}'
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert backend.seen("/orders")[0].headers["Idempotency-Key"] == "call7:3:0"
    # Later, on either replica, the record answers.
    again = await invoke(b, "call7:3:0")
    assert again.replayed and again.body_json == first.body_json and len(backend.seen("/orders")) == 1

    # Breaker: two refused connections through A open it; B answers breaker_open at once.
    for n in range(2):
        failed = await invoke(a, f"call7:4:{n}", service="dead", method="ping")
        assert failed.error_kind == pb.ERROR_KIND_CONNECT_ERROR
    on_b = await invoke(b, "call7:5:0", service="dead", method="ping")
    assert on_b.error_kind == pb.ERROR_KIND_BREAKER_OPEN and on_b.attempts == 0

    # Rate limit (burst 3, first token used above): one more on each, then refused on either.
    assert (await invoke(a, "call7:6:0", method="peek", payload={"item": "1"})).ok
    assert (await invoke(b, "call7:6:1", method="peek", payload={"item": "1"})).ok
    limited = await invoke(a, "call7:6:2", method="peek", payload={"item": "1"})
    assert limited.error_kind == pb.ERROR_KIND_RATE_LIMITED
    assert len(backend.seen("/peek")) == 2


MALFORMED = [
    ({"idempotency_key": "s:1:0", "service": "shop", "method": "order"}, "session_id is required"),
    ({"session_id": "s", "service": "shop", "method": "order"}, "idempotency_key is required"),
    ({"session_id": "s", "idempotency_key": "s-1-0", "service": "shop", "method": "order"},
     "session:seq:index"),
    ({"session_id": "s", "idempotency_key": "t:1:0", "service": "shop", "method": "order"},
     "must start with the request's session_id"),
    ({"session_id": "s", "idempotency_key": "s:1:0", "method": "order"}, "service and method are required"),
    ({"session_id": "s", "idempotency_key": "s:1:0", "service": "shop", "method": "order", "payload_json": "{x"},
     "not valid JSON"),
    ({"session_id": "s", "idempotency_key": "s:1:0", "service": "shop", "method": "order", "payload_json": "[1]"},
     "must be a JSON object"),
    ({"session_id": "s", "idempotency_key": "s:1:0", "service": "shop", "method": "order",
      "payload_json": json.dumps({"x": "y" * 70000})}, "the limit is 65536"),
]


async def test_malformed_requests_are_invalid_argument(start_service, backend: Backend,  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    """Each malformed ActionRequest gets INVALID_ARGUMENT with a message saying what is wrong,
    and the gateway goes on serving a good one afterwards."""
    env = {PREFIX + "SERVICES_FILE": services_file(tmp_path, backend.url, "http://127.0.0.1:1")}
    address = start_service("integration-gateway", env=env).address
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.IntegrationGatewayStub(channel)
        for fields, message in MALFORMED:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Invoke(pb.ActionRequest(**fields), timeout=5)
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, fields
            assert message in (caught.value.details() or ""), fields
        unknown = await stub.Invoke(pb.ActionRequest(session_id="s", idempotency_key="s:1:0", service="nope",
                                                     method="x"), timeout=5)
        assert not unknown.ok and unknown.error_kind == pb.ERROR_KIND_UNKNOWN_SERVICE
    assert (await invoke(address, "s:2:0")).ok


async def test_redis_store_updates_are_atomic(redis_server: str) -> None:
    """40 concurrent token takes from two clients on a bucket of 10 let exactly 10 through."""
    stores = [RedisStore(redis_server, "t:"), RedisStore(redis_server, "t:")]
    try:
        async def take(store: RedisStore) -> bool:
            decision = await store.transact("bucket", lambda s: token_bucket.take(s, 0.0, 0.001, 10), 60.0)
            return decision.allowed

        results = await asyncio.gather(*(take(stores[i % 2]) for i in range(40)))
        assert sum(results) == 10
    finally:
        for store in stores:
            await store.close()
