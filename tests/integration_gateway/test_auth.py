"""Authentication against real loopback servers: API key, OAuth2 client credentials, mutual TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import trustme
from dialtone.integration_gateway.config import (
    ApiKeyAuth,
    AuthConfig,
    BackendServiceConfig,
    OAuth2Auth,
    RetryConfig,
    SecretRef,
    TlsConfig,
)

from tests.integration_gateway.backend_server import Backend
from tests.integration_gateway.conftest import GatewayFactory, call, service


async def test_api_key_in_a_header(backend: Backend, make_gateway: GatewayFactory,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The key from the environment goes out in the configured header."""
    monkeypatch.setenv("IG_TEST_API_KEY", "k-123")
    auth = AuthConfig(kind="api_key", api_key=ApiKeyAuth(secret=SecretRef(env="IG_TEST_API_KEY"),
                                                         header="X-Api-Key"))
    gateway = make_gateway({"svc": service(backend.url, auth=auth)})
    assert (await gateway.invoke(call())).ok
    assert backend.seen("/items")[0].headers["X-Api-Key"] == "k-123"


async def test_api_key_in_the_query(backend: Backend, make_gateway: GatewayFactory, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """The key from a file goes out as a query parameter and is never logged."""
    (tmp_path / "key").write_text("q-secret-9\n")
    auth = AuthConfig(kind="api_key", api_key=ApiKeyAuth(secret=SecretRef(file=str(tmp_path / "key")),
                                                         query="api_key"))
    gateway = make_gateway({"svc": service(backend.url, auth=auth)})
    with caplog.at_level("INFO"):
        assert (await gateway.invoke(call(payload={"item_id": "1", "fields": "a"}))).ok
    assert backend.seen("/items")[0].query == {"fields": ["a"], "api_key": ["q-secret-9"]}
    assert "q-secret-9" not in caplog.text and "backend svc.get_item" in caplog.text


def oauth_service(backend: Backend, margin_s: float = 30.0,
                  client_auth: Literal["body", "basic"] = "body") -> BackendServiceConfig:
    auth = AuthConfig(kind="oauth2", oauth2=OAuth2Auth(
        token_url=backend.url + "/token", client_id="dialtone", scope="orders", client_auth=client_auth,
        client_secret=SecretRef(env="IG_TEST_CLIENT_SECRET"), refresh_margin_s=margin_s))
    return service(backend.url, auth=auth)


@pytest.fixture
def client_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IG_TEST_CLIENT_SECRET", "cs-123")


async def test_oauth2_token_is_fetched_once_and_reused(backend: Backend, make_gateway: GatewayFactory,
                                                       client_secret: None) -> None:
    """The first call fetches a token with client credentials; later calls reuse it."""
    gateway = make_gateway({"svc": oauth_service(backend)})
    results = await asyncio.gather(*(gateway.invoke(call(method="secure")) for _ in range(3)))
    assert all(r.ok for r in results)
    assert backend.tokens_issued == ["tok-1"]
    assert {r.headers["Authorization"] for r in backend.seen("/secure")} == {"Bearer tok-1"}
    token_request = backend.seen("/token")[0]
    assert "grant_type=client_credentials" in token_request.body and "scope=orders" in token_request.body


async def test_oauth2_client_credentials_in_http_basic(backend: Backend, make_gateway: GatewayFactory,
                                                        client_secret: None) -> None:
    """With client_auth: basic the credentials go in an Authorization header, not in the form."""
    gateway = make_gateway({"svc": oauth_service(backend, client_auth="basic")})
    assert (await gateway.invoke(call(method="secure"))).ok
    token_request = backend.seen("/token")[0]
    assert token_request.headers["Authorization"].startswith("Basic ") and "cs-123" not in token_request.body


async def test_oauth2_token_is_refreshed_before_expiry(backend: Backend, make_gateway: GatewayFactory,
                                                       client_secret: None) -> None:
    """A token within refresh_margin_s of its expiry is replaced before the next call."""
    backend.token_expires_in = 1
    gateway = make_gateway({"svc": oauth_service(backend, margin_s=0.5)})
    assert (await gateway.invoke(call(method="secure"))).ok
    await asyncio.sleep(0.6)
    assert (await gateway.invoke(call(method="secure"))).ok
    assert backend.tokens_issued == ["tok-1", "tok-2"]
    assert backend.seen("/secure")[-1].headers["Authorization"] == "Bearer tok-2"


async def test_oauth2_token_is_refreshed_on_401(backend: Backend, make_gateway: GatewayFactory,
                                                client_secret: None) -> None:
    """A 401 drops the cached token; the call is repeated once with a new one and succeeds."""
    gateway = make_gateway({"svc": oauth_service(backend)})
    assert (await gateway.invoke(call(method="secure"))).ok
    backend.revoke_tokens()
    outcome = await gateway.invoke(call(method="secure"))
    assert outcome.ok and outcome.attempts == 1
    assert backend.tokens_issued == ["tok-1", "tok-2"]


async def test_oauth2_bad_client_secret_is_an_http_error(backend: Backend, make_gateway: GatewayFactory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A token endpoint that refuses our credentials gives http_error 401, not a crash."""
    monkeypatch.setenv("IG_TEST_CLIENT_SECRET", "wrong")
    gateway = make_gateway({"svc": oauth_service(backend)})
    outcome = await gateway.invoke(call(method="secure"))
    assert outcome.error_kind == "http_error" and outcome.http_status == 401 and "oauth2" in outcome.error_message
    assert backend.seen("/secure") == []


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("dialtone-gateway.test")
    paths = {"ca": tmp_path / "ca.pem", "server": tmp_path / "server.pem", "client": tmp_path / "client.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def mtls_backend(pki: dict[str, str]) -> Iterator[Backend]:
    """A backend that requires a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"])
    context.load_cert_chain(pki["server"])
    context.verify_mode = ssl.CERT_REQUIRED
    server = Backend(tls=context).start()
    yield server
    server.stop()


async def test_mutual_tls_with_a_client_certificate(mtls_backend: Backend, pki: dict[str, str],
                                                    make_gateway: GatewayFactory) -> None:
    """With the client certificate and the CA bundle configured, the call succeeds over TLS."""
    tls = TlsConfig(ca_bundle=pki["ca"], client_cert=pki["client"], client_key=pki["client"])
    gateway = make_gateway({"svc": service(mtls_backend.url, tls=tls)})
    outcome = await gateway.invoke(call())
    assert outcome.ok and mtls_backend.url.startswith("https://")
    assert len(mtls_backend.seen("/items")) == 1


async def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_backend: Backend, pki: dict[str, str],
                                                                 make_gateway: GatewayFactory) -> None:
    """Without a client certificate the backend rejects the handshake: connect_error, no request served."""
    tls = TlsConfig(ca_bundle=pki["ca"])
    gateway = make_gateway({"svc": service(mtls_backend.url, tls=tls, retry=RetryConfig(max_attempts=1))})
    outcome = await gateway.invoke(call())
    assert not outcome.ok and outcome.error_kind == "connect_error"
    assert mtls_backend.seen() == []


async def test_untrusted_server_certificate_is_refused(mtls_backend: Backend, pki: dict[str, str],
                                                       make_gateway: GatewayFactory) -> None:
    """Without the test CA in the bundle the server's certificate is not trusted."""
    tls = TlsConfig(client_cert=pki["client"], client_key=pki["client"])
    gateway = make_gateway({"svc": service(mtls_backend.url, tls=tls, retry=RetryConfig(max_attempts=1))})
    outcome = await gateway.invoke(call())
    assert outcome.error_kind == "connect_error" and "CERTIFICATE_VERIFY_FAILED" in outcome.error_message


async def test_http2_calls_share_one_connection(pki: dict[str, str], make_gateway: GatewayFactory) -> None:
    """With http2: true, concurrent calls go over HTTP/2 (ALPN h2), multiplexed on one connection."""
    from tests.integration_gateway.h2_server import H2Echo, start_h2_server

    server, port = await start_h2_server(pki["server"])
    svc = service(f"https://127.0.0.1:{port}", http2=True, tls=TlsConfig(ca_bundle=pki["ca"]))
    gateway = make_gateway({"svc": svc})
    try:
        results = await asyncio.gather(*(gateway.invoke(call(payload={"item_id": str(n)})) for n in range(5)))
        assert all(r.ok for r in results)
        assert {json.loads(r.body_json)["path"] for r in results} == {f"/items/{n}" for n in range(5)}
        assert {json.loads(r.body_json)["http_version"] for r in results} == {"2"}
        assert H2Echo.connections == 1 and len(H2Echo.requests) == 5
    finally:
        await gateway.close()  # before wait_closed, which waits for open connections on newer Pythons
        server.close()
        await server.wait_closed()
