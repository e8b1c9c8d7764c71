"""Fixtures of the integration gateway tests: a real loopback backend and an in-process gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from dialtone.integration_gateway.config import (
    BackendServiceConfig,
    BreakerConfig,
    IntegrationGatewayConfig,
    MethodConfig,
    RetryConfig,
    TimeoutsConfig,
)
from dialtone.integration_gateway.gateway import ActionCall, IntegrationGateway
from dialtone.integration_gateway.store import MemoryStore, StateStore

from tests.integration_gateway.backend_server import Backend


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend().start()
    yield server
    server.stop()


def service(base_url: str, **overrides: object) -> BackendServiceConfig:
    """A service with quick timeouts and backoff, and a few methods on the test backend (on loopback,
    which a service must allow explicitly)."""
    config = BackendServiceConfig(
        base_url=base_url,
        allow_networks=["127.0.0.0/8"],
        timeouts=TimeoutsConfig(connect_s=1.0, read_s=2.0, total_s=3.0),
        retry=RetryConfig(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, max_retry_after_s=2.0),
        breaker=BreakerConfig(failure_threshold=3, reset_timeout_s=1.0),
        methods={
            "get_item": MethodConfig(verb="GET", path="/items/{item_id}", query=["fields"]),
            "create": MethodConfig(verb="POST", path="/items"),
            "secure": MethodConfig(verb="GET", path="/secure/{item_id}"),
        })
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


_seq = iter(range(1, 1_000_000))


def call(service_name: str = "svc", method: str = "get_item", payload: dict | None = None,
         key: str | None = None, timeout_ms: int = 0) -> ActionCall:
    return ActionCall(session_id="s1", key=key or f"s1:{next(_seq)}:0", service=service_name, method=method,
                      payload={"item_id": "42"} if payload is None else payload, timeout_ms=timeout_ms)


GatewayFactory = Callable[..., IntegrationGateway]


@pytest.fixture
async def make_gateway() -> AsyncIterator[GatewayFactory]:
    made: list[IntegrationGateway] = []

    def make(services: dict[str, BackendServiceConfig], config: IntegrationGatewayConfig | None = None,
             store: StateStore | None = None) -> IntegrationGateway:
        gateway = IntegrationGateway(config or IntegrationGatewayConfig(), services, store or MemoryStore())
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()
