"""The gateway against a real HTTP backend on loopback: retries, timeouts, breaker,
Retry-After, idempotency, rate limits and request building."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from dialtone.integration_gateway.config import RateLimitConfig, RetryConfig, TimeoutsConfig

from tests.helpers import free_port
from tests.integration_gateway.backend_server import Backend, Reply
from tests.integration_gateway.conftest import GatewayFactory, call, service


async def test_success_returns_the_body_and_sends_the_key(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A 200 is ok after one attempt; the body comes back and the key went out as Idempotency-Key."""
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call(payload={"item_id": "42", "fields": "all"}, key="s1:7:0"))
    assert outcome.ok and outcome.http_status == 200 and outcome.attempts == 1 and not outcome.replayed
    body = json.loads(outcome.body_json)
    assert body["path"] == "/items/42" and body["query"] == {"fields": ["all"]}
    assert body["idempotency_key"] == "s1:7:0"


async def test_two_500s_then_200_is_ok_after_three_attempts(backend: Backend,
                                                             make_gateway: GatewayFactory) -> None:
    """500, 500, 200 gives ok with attempts == 3, and the backend saw three requests."""
    backend.script("/items/42", [Reply(500, {"e": 1}), Reply(500, {"e": 2})])
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    assert outcome.ok and outcome.attempts == 3
    assert len(backend.seen("/items/42")) == 3


async def test_400_is_not_retried(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A 400 is an http_error after exactly one attempt, with the backend's body."""
    backend.script("/items/42", [Reply(400, {"error": "bad item"})])
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    assert not outcome.ok and outcome.error_kind == "http_error" and outcome.http_status == 400
    assert outcome.attempts == 1 and json.loads(outcome.body_json) == {"error": "bad item"}
    assert len(backend.seen("/items/42")) == 1


async def test_500_until_attempts_run_out(backend: Backend, make_gateway: GatewayFactory) -> None:
    """Persistent 503s end as http_error 503 after max_attempts."""
    backend.script("/items/42", [Reply(503)] * 5)
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    assert outcome.error_kind == "http_error" and outcome.http_status == 503 and outcome.attempts == 3


async def test_slow_backend_times_out_within_the_deadline(backend: Backend,
                                                          make_gateway: GatewayFactory) -> None:
    """A backend slower than the request's timeout_ms gives a timeout result, not a hang."""
    backend.script("/items/42", [Reply(delay_s=3.0)] * 3)
    gateway = make_gateway({"svc": service(backend.url)})
    started = time.monotonic()
    outcome = await gateway.invoke(call(timeout_ms=400))
    elapsed = time.monotonic() - started
    assert not outcome.ok and outcome.error_kind == "timeout"
    assert elapsed < 2.5  # below the backend's 3 s delay: the deadline cut it, not the answer


async def test_read_timeout_is_retried(backend: Backend, make_gateway: GatewayFactory) -> None:
    """An answer slower than read_s is given up and retried; a later, fast one succeeds."""
    backend.script("/items/42", [Reply(delay_s=1.5)])
    svc = service(backend.url, timeouts=TimeoutsConfig(connect_s=1.0, read_s=0.3, total_s=5.0))
    gateway = make_gateway({"svc": svc})
    outcome = await gateway.invoke(call())
    assert outcome.ok and outcome.attempts >= 2  # >= : a loaded machine may make a fast answer slow too
    assert len(backend.seen("/items/42")) == outcome.attempts


async def test_retry_after_is_honoured(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A 429 with Retry-After: 1 is retried no sooner than one second later."""
    backend.script("/items/42", [Reply(429, {"error": "slow down"}, {"Retry-After": "1"})])
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    seen = backend.seen("/items/42")
    assert outcome.ok and outcome.attempts == 2 and len(seen) == 2
    assert seen[1].at - seen[0].at >= 0.95  # measured by the backend: the retry waited Retry-After


async def test_retry_after_beyond_the_limit_is_not_waited_for(backend: Backend,
                                                              make_gateway: GatewayFactory) -> None:
    """Retry-After longer than max_retry_after_s ends the call at once with the 429."""
    backend.script("/items/42", [Reply(429, {}, {"Retry-After": "120"})])
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    assert outcome.error_kind == "http_error" and outcome.http_status == 429 and outcome.attempts == 1


def _closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:  # nothing listens there: connections are refused
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


async def test_breaker_opens_after_refused_connections_and_recovers(make_gateway: GatewayFactory) -> None:
    """Refused connections open the breaker after 3 calls; after the reset timeout a trial
    goes through half-open and, the backend being back, closes it."""
    port = _closed_port()
    svc = service(f"http://127.0.0.1:{port}", retry=RetryConfig(max_attempts=1))
    gateway = make_gateway({"svc": svc})
    kinds = [(await gateway.invoke(call())).error_kind for _ in range(3)]
    assert kinds == ["connect_error"] * 3
    refused = await gateway.invoke(call())
    assert refused.error_kind == "breaker_open" and refused.attempts == 0

    backend = Backend(port=port).start()  # the backend comes back on the same port
    try:
        await asyncio.sleep(1.1)  # past reset_timeout_s = 1.0
        trial = await gateway.invoke(call())
        assert trial.ok and trial.attempts == 1
        after = await gateway.invoke(call())
        assert after.ok
    finally:
        backend.stop()


async def test_failed_trial_reopens(make_gateway: GatewayFactory) -> None:
    """A half-open trial that fails opens the breaker again."""
    port = _closed_port()
    gateway = make_gateway({"svc": service(f"http://127.0.0.1:{port}", retry=RetryConfig(max_attempts=1))})
    for _ in range(3):
        await gateway.invoke(call())
    await asyncio.sleep(1.1)  # past reset_timeout_s = 1.0
    trial = await gateway.invoke(call())
    assert trial.error_kind == "connect_error"
    assert (await gateway.invoke(call())).error_kind == "breaker_open"


async def test_4xx_does_not_open_the_breaker(backend: Backend, make_gateway: GatewayFactory) -> None:
    """Client errors mean the backend is up: many 404s leave the breaker closed."""
    backend.script("/items/42", [Reply(404)] * 5)
    gateway = make_gateway({"svc": service(backend.url)})
    for _ in range(5):
        assert (await gateway.invoke(call())).http_status == 404
    assert (await gateway.invoke(call())).ok


async def test_same_key_calls_the_backend_once(backend: Backend, make_gateway: GatewayFactory) -> None:
    """Concurrent and later requests with one key call the backend once and get the same result."""
    backend.script("/items", [Reply(201, {"id": "A1"}, delay_s=0.3)])
    gateway = make_gateway({"svc": service(backend.url)})
    request = call(method="create", payload={"name": "x"}, key="s1:9:0")
    first, second = await asyncio.gather(gateway.invoke(request), gateway.invoke(request))
    later = await gateway.invoke(request)
    assert len(backend.seen("/items")) == 1
    assert first.body_json == second.body_json == later.body_json == '{"id": "A1"}'
    assert sorted([first.replayed, second.replayed]) == [False, True] and later.replayed
    assert json.loads(backend.seen("/items")[0].body) == {"name": "x"}


async def test_transient_failure_frees_the_key(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A key whose call failed transiently is not recorded: the retry calls the backend again."""
    backend.script("/items/42", [Reply(503)] * 3)
    gateway = make_gateway({"svc": service(backend.url)})
    assert (await gateway.invoke(call(key="s1:5:0"))).http_status == 503
    again = await gateway.invoke(call(key="s1:5:0"))
    assert again.ok and not again.replayed


async def test_rate_limit_per_service(backend: Backend, make_gateway: GatewayFactory) -> None:
    """With burst 2 (and a slow refill), a third call is rate_limited and never reaches the backend."""
    gateway = make_gateway({"svc": service(backend.url, rate_limit=RateLimitConfig(rate_per_s=0.01, burst=2))})
    results = [await gateway.invoke(call()) for _ in range(3)]
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error_kind == "rate_limited"
    assert len(backend.seen("/items")) == 2


async def test_rate_limit_per_method(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A method's own limit applies to it only."""
    svc = service(backend.url)
    svc.methods["create"].rate_limit = RateLimitConfig(rate_per_s=0.01, burst=1)
    gateway = make_gateway({"svc": svc})
    assert (await gateway.invoke(call(method="create", payload={}))).ok
    assert (await gateway.invoke(call(method="create", payload={}))).error_kind == "rate_limited"
    assert (await gateway.invoke(call())).ok


async def test_unknown_service_and_method(backend: Backend, make_gateway: GatewayFactory) -> None:
    """An unconfigured service or method is an error result, not an exception."""
    gateway = make_gateway({"svc": service(backend.url)})
    assert (await gateway.invoke(call(service_name="nope"))).error_kind == "unknown_service"
    bad = await gateway.invoke(call(method="nope"))
    assert bad.error_kind == "invalid_request" and "get_item" in bad.error_message


async def test_payload_cannot_leave_the_configured_host(backend: Backend, make_gateway: GatewayFactory) -> None:
    """Path values that could leave their segment ('../admin?x', a URL, 'a/b#c') are refused, nothing sent;
    the others are encoded whole and stay inside one path segment (tests/integration_gateway/test_ssrf.py)."""
    gateway = make_gateway({"svc": service(backend.url)})
    for sneaky in ("../admin?x=1", "http://evil.example/", "a/b#c"):
        outcome = await gateway.invoke(call(payload={"item_id": sneaky}))
        assert outcome.error_kind == "invalid_request" and "item_id" in outcome.error_message
    assert backend.seen() == []
    assert (await gateway.invoke(call(payload={"item_id": "a b;c=d"}))).ok
    assert [r.path for r in backend.seen()] == ["/items/a%20b%3Bc%3Dd"]
    missing = await gateway.invoke(call(payload={}))
    assert missing.error_kind == "invalid_request" and "item_id" in missing.error_message
    dots = await gateway.invoke(call(payload={"item_id": ".."}))
    assert dots.error_kind == "invalid_request"


async def test_unreachable_shared_store_is_a_result_not_an_exception(backend: Backend,
                                                                     make_gateway: GatewayFactory) -> None:
    """With the Redis store down, Invoke answers connect_error naming the store, and raises nothing."""
    from dialtone.integration_gateway.store_redis import RedisStore

    store = RedisStore(f"redis://127.0.0.1:{_closed_port()}/0", "x:")
    try:
        gateway = make_gateway({"svc": service(backend.url)}, store=store)
        outcome = await gateway.invoke(call())
        assert not outcome.ok and outcome.error_kind == "connect_error" and "redis store" in outcome.error_message
        assert backend.seen() == []
    finally:
        await store.close()


async def test_undecodable_body_is_an_http_error(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A body that its Content-Encoding cannot decode is a 502-like http_error, never an exception."""
    backend.script("/items/42", [Reply(200, {"x": 1}, {"Content-Encoding": "gzip"})] * 3)
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call())
    assert outcome.error_kind == "http_error" and outcome.http_status == 502
    assert "undecodable" in outcome.error_message and outcome.attempts == 3


async def test_key_reused_for_another_request_is_refused(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A recorded key sent with another payload is invalid_request, and the backend is not called again."""
    gateway = make_gateway({"svc": service(backend.url)})
    assert (await gateway.invoke(call(payload={"item_id": "1"}, key="s1:88:0"))).ok
    other = await gateway.invoke(call(payload={"item_id": "2"}, key="s1:88:0"))
    assert other.error_kind == "invalid_request" and "already used" in other.error_message
    assert [r.path for r in backend.seen()] == ["/items/1"]
