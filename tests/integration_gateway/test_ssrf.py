"""SSRF defence of the integration gateway against a real HTTP backend on loopback: a caller's payload
cannot move a call off its service's base URL, and loopback, link-local and metadata addresses are
refused (at start when written as addresses, on connect when a name resolves to one) unless the
service allows them. Every refusal is a clear invalid_request or ConfigError, and the backend sees
nothing."""

from __future__ import annotations

import pytest
from dialtone.common.config import ConfigError
from dialtone.integration_gateway.config import AuthConfig, OAuth2Auth, check_service

from tests.integration_gateway.backend_server import Backend, Reply
from tests.integration_gateway.conftest import GatewayFactory, call, service


@pytest.mark.parametrize("sneaky", [
    "../../admin", "..%2F..%2Fadmin", "http://169.254.169.254/latest/meta-data", "@169.254.169.254",
    "user@evil.example", "42\r\nHost: evil.example", "42\r\n\r\nGET /admin HTTP/1.1", "//evil.example/x",
])
async def test_templated_path_attacks_are_refused_and_nothing_is_sent(
        sneaky: str, backend: Backend, make_gateway: GatewayFactory) -> None:
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call(payload={"item_id": sneaky}))
    assert outcome.error_kind == "invalid_request", outcome
    assert "payload field 'item_id' fills a path segment and must not contain" in outcome.error_message
    assert outcome.attempts == 0
    assert backend.seen() == []


async def test_a_query_or_body_field_cannot_change_the_host(backend: Backend, make_gateway: GatewayFactory) -> None:
    """Query and body values are data: an absolute URL or CRLF there is encoded (query) or JSON (body)."""
    gateway = make_gateway({"svc": service(backend.url)})
    query = await gateway.invoke(call(payload={"item_id": "1", "fields": "http://169.254.169.254/\r\nX: y"}))
    body = await gateway.invoke(call(method="create", payload={"url": "http://169.254.169.254/", "n": "\r\n"}))
    assert query.ok and body.ok
    assert [(r.method, r.path) for r in backend.seen()] == [("GET", "/items/1"), ("POST", "/items")]
    assert backend.seen()[0].query == {"fields": ["http://169.254.169.254/\r\nX: y"]}
    assert "X" not in backend.seen()[0].headers


async def test_a_redirect_is_not_followed(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A backend's redirect (to a metadata address, say) is its answer, never a second request."""
    backend.script("/items/1", [Reply(302, {}, {"Location": "http://169.254.169.254/latest/meta-data"})])
    gateway = make_gateway({"svc": service(backend.url)})
    outcome = await gateway.invoke(call(payload={"item_id": "1"}))
    assert not outcome.ok and outcome.http_status == 302
    assert len(backend.seen()) == 1


async def test_a_name_that_resolves_to_loopback_is_refused_unless_allowed(
        backend: Backend, make_gateway: GatewayFactory) -> None:
    """The check is on the resolved address, so a host name is no way around it; nothing is sent."""
    by_name = f"http://localhost:{backend.port}"
    refused = make_gateway({"svc": service(by_name, allow_networks=[])})
    outcome = await refused.invoke(call(payload={"item_id": "1"}))
    assert outcome.error_kind == "invalid_request", outcome
    assert "backend address 127.0.0.1 (localhost resolves to it) is a loopback address: refused" \
        in outcome.error_message
    assert "services.svc.allow_networks" in outcome.error_message
    assert outcome.attempts == 1     # not retried: the same address would be refused again
    assert backend.seen() == []
    allowed = make_gateway({"svc": service(by_name, allow_networks=["127.0.0.0/8", "::1/128"])})
    assert (await allowed.invoke(call(payload={"item_id": "1"}))).ok
    assert [r.path for r in backend.seen()] == ["/items/1"]


@pytest.mark.parametrize(("base_url", "kind"), [
    ("http://169.254.169.254", "a cloud metadata address"),
    ("http://[fd00:ec2::254]", "a cloud metadata address"),
    ("http://100.100.100.200", "a cloud metadata address"),
    ("http://169.254.10.1:8080", "a link-local address"),
    ("http://[fe80::1]", "a link-local address"),
    ("http://127.0.0.1:8081", "a loopback address"),
    ("http://[::1]:8081", "a loopback address"),
    ("http://[::ffff:127.0.0.1]", "a loopback address"),
    ("http://0.0.0.0", "an unspecified address"),
])
def test_forbidden_addresses_in_a_base_url_are_refused_at_start(base_url: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"services.svc.base_url: backend address .* is {kind}: refused"):
        check_service("svc", service(base_url, allow_networks=[]))


def test_allow_networks_allows_exactly_what_it_lists() -> None:
    check_service("svc", service("http://127.0.0.1:8081", allow_networks=["127.0.0.1/32"]))
    with pytest.raises(ConfigError, match="169.254.169.254 is a cloud metadata address"):
        check_service("svc", service("http://169.254.169.254", allow_networks=["127.0.0.0/8"]))
    with pytest.raises(ConfigError, match="services.svc.allow_networks: 'loopback' is not a network"):
        check_service("svc", service("http://127.0.0.1:8081", allow_networks=["loopback"]))


def test_an_oauth2_token_url_is_held_to_the_same_rule() -> None:
    auth = AuthConfig(kind="oauth2", oauth2=OAuth2Auth(token_url="http://169.254.169.254/token", client_id="c"))
    with pytest.raises(ConfigError, match="services.svc.auth.oauth2.token_url: backend address 169.254.169.254"):
        check_service("svc", service("https://api.example.test", allow_networks=[], auth=auth))


def test_credentials_in_a_base_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="credentials do not belong in the URL"):
        check_service("svc", service("https://user:pw@api.example.test"))
