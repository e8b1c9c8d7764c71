"""One Invoke, end to end: idempotency claim, rate limits, breaker, the call with
retries (tenacity), then the record. Every failure becomes an ``ActionOutcome``
with ``ok=False`` and an error kind; nothing but cancellation escapes.

Shared state (breaker, buckets, records) goes through a ``StateStore`` and is
decided by the pure cores, with wall-clock ``now`` because replicas share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import tenacity
from dialtone.common import token_bucket
from dialtone.common.errors import quote_prefix
from dialtone.common.logging import session_context
from dialtone.integration_gateway import telemetry
from dialtone.integration_gateway.backend_http import BackendClient, HttpReply
from dialtone.integration_gateway.config import BackendServiceConfig, IntegrationGatewayConfig, RateLimitConfig
from dialtone.integration_gateway.core import breaker, idempotency
from dialtone.integration_gateway.core.retry import AttemptKind, RetryPolicy, is_retryable, next_delay
from dialtone.integration_gateway.errors import ErrorKind, GatewayError, InvalidRequest, UnknownService
from dialtone.integration_gateway.redaction import redact_json_text
from dialtone.integration_gateway.requests import HttpRequestSpec, build_request
from dialtone.integration_gateway.store import DELETE, StateStore

log = logging.getLogger(__name__)

WAIT_POLL_S = 0.02  # how often a duplicate checks whether the first caller finished
BREAKER_TTL_S = 7 * 86400.0


@dataclasses.dataclass(frozen=True)
class ActionCall:
    session_id: str
    key: str
    service: str
    method: str
    payload: dict[str, Any]
    timeout_ms: int = 0


@dataclasses.dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    key: str
    http_status: int = 0
    body_json: str = ""
    attempts: int = 0
    error_kind: str = ""  # "" when ok; else an ErrorKind (a plain string when replayed from the store)
    error_message: str = ""
    replayed: bool = False
    latency_ms: int = 0

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "http_status": self.http_status, "body_json": self.body_json,
                "attempts": self.attempts, "error_kind": self.error_kind, "error_message": self.error_message}

    @classmethod
    def from_record(cls, key: str, data: dict[str, Any]) -> ActionOutcome:
        return cls(ok=bool(data["ok"]), key=key, http_status=int(data["http_status"]), body_json=data["body_json"],
                   attempts=int(data["attempts"]), error_kind=data["error_kind"],
                   error_message=data["error_message"], replayed=True)


def _failure(call: ActionCall, kind: ErrorKind, message: str, attempts: int = 0, status: int = 0) -> ActionOutcome:
    return ActionOutcome(ok=False, key=call.key, error_kind=kind, error_message=message, attempts=attempts,
                         http_status=status)


def _body_json(body: bytes) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    try:
        json.loads(text)
    except ValueError:
        return json.dumps({"text": text[:4096]})
    return text


class _RetryRun:
    """The retry decisions of one Invoke, asked by tenacity and answered by the retry core."""

    def __init__(self, policy: RetryPolicy, deadline: float, clock: Callable[[], float],
                 rng: Callable[[], float]) -> None:
        self.policy = policy
        self.deadline = deadline
        self.clock = clock
        self.rng = rng
        self.attempts = 0
        self.delay = 0.0

    def retry(self, state: tenacity.RetryCallState) -> bool:
        if state.outcome is None or state.outcome.failed:
            return False
        reply: HttpReply = state.outcome.result()
        delay = next_delay(self.policy, reply.outcome, self.attempts, self.clock(), self.deadline, time.time(),
                           self.rng)
        self.delay = delay or 0.0
        return delay is not None

    def wait(self, state: tenacity.RetryCallState) -> float:
        return self.delay


class IntegrationGateway:
    def __init__(self, config: IntegrationGatewayConfig, services: dict[str, BackendServiceConfig],
                 store: StateStore, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, rng: Callable[[], float] = random.random) -> None:
        self._config = config
        self._services = services
        self._store = store
        self._clock = clock
        self._wall = wall
        self._rng = rng
        self._clients = {name: BackendClient(name, service) for name, service in services.items()}
        self._owner_prefix = f"{socket.gethostname()}:{os.getpid()}:"
        for name in services:
            telemetry.BREAKER_STATE.labels(name).set(0)

    def client(self, service: str) -> BackendClient:
        return self._clients[service]

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self._clients.values()))

    async def invoke(self, call: ActionCall) -> ActionOutcome:
        started = self._clock()
        with session_context(call.session_id):
            spec: HttpRequestSpec | None = None
            try:
                service, spec = self._prepare(call)
                # Built before the claim, the rate limits and the breaker: a request that cannot be
                # built is refused without touching any shared state.
                request = self._clients[call.service].build(spec, call.key)
                outcome = await self._invoke(call, service, request, started)
            except GatewayError as exc:
                outcome = _failure(call, exc.error_kind, str(exc))
            latency_s = self._clock() - started
            outcome = dataclasses.replace(outcome, latency_ms=int(latency_s * 1000))
            self._observe(call, spec, outcome, latency_s)
            return outcome

    def _prepare(self, call: ActionCall) -> tuple[BackendServiceConfig, HttpRequestSpec]:
        service = self._services.get(call.service)
        if service is None:
            raise UnknownService(f"no service named {quote_prefix(call.service)} is configured")
        method = service.methods.get(call.method)
        if method is None:
            raise InvalidRequest(f"service {call.service!r} has no method {quote_prefix(call.method)} "
                                 f"(configured: {', '.join(sorted(service.methods))})")
        return service, build_request(self._clients[call.service].base_url, service, call.method, method,
                                      call.payload)

    async def _invoke(self, call: ActionCall, service: BackendServiceConfig, request: httpx.Request,
                      started: float) -> ActionOutcome:
        total_s = call.timeout_ms / 1000 if call.timeout_ms else service.timeouts.total_s
        deadline = started + total_s
        owner = self._owner_prefix + uuid.uuid4().hex[:12]
        store_cfg = self._config.store
        idem_key = "idem:" + call.key
        fingerprint = _fingerprint(call)
        # A claim must outlive the call it guards, or another replica would take it over mid-call.
        lease_s = max(store_cfg.pending_ttl_s, total_s + 5.0)

        # 1. Idempotency: call, wait for the replica that is calling, or replay its result.
        while True:
            decision = await self._store.transact(
                idem_key, lambda rec: idempotency.claim(rec, self._wall(), owner, lease_s, fingerprint), lease_s)
            if decision.action is idempotency.ClaimAction.REPLAY:
                return ActionOutcome.from_record(call.key, decision.result or {})
            if decision.action is idempotency.ClaimAction.CONFLICT:
                return _failure(call, ErrorKind.INVALID_REQUEST, "this idempotency key was already used for a "
                                "different service, method or payload")
            if decision.action is idempotency.ClaimAction.CALL:
                break
            if self._clock() + WAIT_POLL_S >= deadline:
                return _failure(call, ErrorKind.TIMEOUT, "a request with this idempotency key is still in progress")
            await asyncio.sleep(WAIT_POLL_S)

        definitive = False
        outcome: ActionOutcome | None = None
        try:
            outcome, definitive = await self._guarded_call(call, service, request, deadline)
            return outcome
        finally:
            if definitive and outcome is not None:
                record = idempotency.complete(outcome.record(), fingerprint)
                await self._store.transact(idem_key, lambda rec: (record, None), store_cfg.idempotency_ttl_s)
            else:
                # Transient failures (and cancellation) free the key so that a retry calls again.
                await asyncio.shield(self._store.transact(
                    idem_key, lambda rec: (DELETE if idempotency.owned_by(rec, owner) else None, None), lease_s))

    async def _guarded_call(self, call: ActionCall, service: BackendServiceConfig, request: httpx.Request,
                            deadline: float) -> tuple[ActionOutcome, bool]:
        """Rate limits, breaker, the call with retries. Returns the outcome and whether it is definitive."""
        method = service.methods[call.method]
        for key, limit in ((f"rate:{call.service}", service.rate_limit),
                           (f"rate:{call.service}:{call.method}", method.rate_limit)):
            refused = await self._rate_limited(key, limit)
            if refused is not None:
                telemetry.RATE_LIMITED.labels(call.service).inc()
                return _failure(call, ErrorKind.RATE_LIMITED, f"rate limit of {limit.rate_per_s:g}/s reached; "
                                f"a token is free in {refused:.3f} s"), False

        policy = breaker.BreakerPolicy(service.breaker.failure_threshold, service.breaker.reset_timeout_s,
                                       trial_lease_s=max(1.0, deadline - self._clock() + 1.0))
        breaker_key = f"breaker:{call.service}"
        admission = await self._store.transact(breaker_key, lambda d: breaker.admit(d, self._wall(), policy),
                                               BREAKER_TTL_S)
        telemetry.BREAKER_STATE.labels(call.service).set(telemetry.BREAKER_GAUGE_VALUE[admission.state.value])
        if not admission.allowed:
            return _failure(call, ErrorKind.BREAKER_OPEN, f"circuit breaker of {call.service!r} is open; next trial in "
                            f"{admission.retry_in_s:.1f} s"), False

        reply, attempts = await self._call_with_retries(call, service, request, deadline)
        if reply.outcome.kind is AttemptKind.REQUEST_ERROR:
            # Says nothing about the backend: not recorded (a half-open trial lapses after its lease).
            return _failure(call, ErrorKind.INVALID_REQUEST, reply.error, attempts), False
        healthy = reply.outcome.kind is AttemptKind.RESPONSE and reply.outcome.status < 500
        if reply.outcome.kind is AttemptKind.TIMEOUT and call.timeout_ms and \
                call.timeout_ms / 1000 < service.timeouts.read_s:
            # The caller's own deadline was shorter than the time this backend is given to answer: its
            # lapse says nothing about the backend, so one impatient client cannot open the breaker
            # for every call. Not recorded (a half-open trial lapses after its lease).
            return _failure(call, ErrorKind.TIMEOUT, reply.error, attempts), False
        after = await self._store.transact(breaker_key, lambda d: _recorded(d, self._wall(), healthy, policy),
                                           BREAKER_TTL_S)
        telemetry.BREAKER_STATE.labels(call.service).set(telemetry.BREAKER_GAUGE_VALUE[after])
        if attempts > 1:
            telemetry.RETRIES.labels(call.service).inc(attempts - 1)
        outcome = reply.outcome
        if outcome.ok:
            return ActionOutcome(ok=True, key=call.key, http_status=outcome.status, body_json=_body_json(reply.body),
                                 attempts=attempts), True
        if outcome.kind is AttemptKind.TIMEOUT:
            return _failure(call, ErrorKind.TIMEOUT, reply.error, attempts), False
        if outcome.kind is AttemptKind.CONNECT_ERROR:
            return _failure(call, ErrorKind.CONNECT_ERROR, reply.error, attempts), False
        failed = dataclasses.replace(
            _failure(call, ErrorKind.HTTP_ERROR, reply.error or f"backend answered HTTP {outcome.status}", attempts,
                     outcome.status), body_json=_body_json(reply.body))
        return failed, not is_retryable(outcome)

    async def _rate_limited(self, key: str, limit: RateLimitConfig) -> float | None:
        """None when a token was taken (or no limit); else seconds until one is free."""
        if limit.rate_per_s <= 0:
            return None
        ttl = token_bucket.capacity(limit.rate_per_s, limit.burst) / limit.rate_per_s + 60.0
        decision = await self._store.transact(
            key, lambda s: token_bucket.take(s, self._wall(), limit.rate_per_s, limit.burst), ttl)
        return None if decision.allowed else decision.wait_s

    async def _call_with_retries(self, call: ActionCall, service: BackendServiceConfig, request: httpx.Request,
                                 deadline: float) -> tuple[HttpReply, int]:
        r = service.retry
        run = _RetryRun(RetryPolicy(r.max_attempts, r.backoff_initial_s, r.backoff_max_s, r.max_retry_after_s),
                        deadline, self._clock, self._rng)
        client = self._clients[call.service]

        async def attempt() -> HttpReply:
            run.attempts += 1
            return await client.send(request, deadline - self._clock())

        retrying = tenacity.AsyncRetrying(retry=run.retry, wait=run.wait, stop=tenacity.stop_never,
                                          sleep=asyncio.sleep, reraise=True)
        reply = await retrying(attempt)
        return reply, run.attempts

    def _observe(self, call: ActionCall, spec: HttpRequestSpec | None, outcome: ActionOutcome,
                 latency_s: float) -> None:
        label = "ok" if outcome.ok else outcome.error_kind
        known = call.service in self._services
        if known:  # an unknown name is caller input: never a label
            telemetry.BACKEND_LATENCY.labels(call.service, label).observe(latency_s)
            telemetry.BACKEND_OUTCOMES.labels(call.service, label).inc()
            if outcome.replayed:
                telemetry.REPLAYED.labels(call.service).inc()
        fields = list(self._config.redact_fields)
        if known:
            fields += self._services[call.service].redact_fields
        level = logging.INFO if outcome.ok or outcome.error_kind in (ErrorKind.HTTP_ERROR, ErrorKind.INVALID_REQUEST) \
            else logging.WARNING
        log.log(level, "backend %s.%s %s %s -> %s in %d ms, %d attempt(s)%s",
                call.service[:64], call.method[:64], spec.verb if spec else "-",
                redact_json_text(spec.path, fields) if spec else "-",
                outcome.http_status or outcome.error_kind or "ok", outcome.latency_ms, outcome.attempts,
                " (replayed)" if outcome.replayed else "",
                extra={"event": "backend_call", "backend_service": call.service[:64],
                       "backend_method": call.method[:64], "outcome": label, "http_status": outcome.http_status,
                       "latency_ms": outcome.latency_ms, "attempts": outcome.attempts,
                       "idempotency_key": call.key, "replayed": outcome.replayed,
                       "error": redact_json_text(outcome.error_message, fields),
                       "request": redact_json_text(json.dumps(call.payload), fields),
                       "response": redact_json_text(outcome.body_json, fields)})


def _fingerprint(call: ActionCall) -> str:
    canonical = json.dumps([call.service, call.method, call.payload], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def _recorded(data: dict | None, now: float, healthy: bool, policy: breaker.BreakerPolicy) -> tuple[dict, str]:
    new = breaker.record(data, now, healthy, policy)
    return new, new["state"]
