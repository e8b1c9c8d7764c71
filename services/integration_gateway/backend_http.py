"""The httpx adapter: one pooled ``httpx.AsyncClient`` per configured service, with
its TLS (CA bundle, client certificate for mutual TLS), HTTP/2 when configured, and
its authentication (API key in a header or the query, OAuth2 client credentials).

Connections go only where the service's address policy allows (``addresses``): httpcore's network
layer is wrapped so that every resolved address is checked before a byte is sent, and proxies from
the environment are not used (a proxy would resolve names beyond the check).

``build`` makes the HTTP request of an Invoke once, before any attempt: what httpx or
the HTTP rules refuse there (a header value with a newline, a body that cannot be
encoded) is the caller's request at fault, raised as ``InvalidRequest``, never a
backend failure. ``send`` makes ONE attempt of a built request and never raises for
backend trouble: timeouts and transport errors are mapped here, once, to an
``AttemptOutcome``; retries and breakers are the gateway's job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl

import httpcore
import httpx
from dialtone.common.config import ConfigError
from dialtone.common.limits import header_value_ok
from dialtone.integration_gateway.addresses import AddressPolicy, AddressRefused, CheckedBackend
from dialtone.integration_gateway.config import BackendServiceConfig, address_policy
from dialtone.integration_gateway.core.retry import AttemptKind, AttemptOutcome
from dialtone.integration_gateway.errors import InvalidRequest
from dialtone.integration_gateway.oauth2 import OAuth2Tokens, TokenError
from dialtone.integration_gateway.requests import HttpRequestSpec

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class _DropRequestLines(logging.Filter):
    """httpx logs every request's full URL at INFO, query included, and an API key may be in the query.
    The gateway logs each call itself, redacted, so those lines are dropped whatever the log level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("HTTP Request:"))


logging.getLogger("httpx").addFilter(_DropRequestLines())


@dataclasses.dataclass(frozen=True)
class HttpReply:
    outcome: AttemptOutcome
    body: bytes = b""
    error: str = ""  # why, when there is no usable response


def _ssl_context(name: str, service: BackendServiceConfig) -> ssl.SSLContext | bool:
    tls = service.tls
    if not (tls.ca_bundle or tls.client_cert) and tls.verify:
        return True
    try:
        context = ssl.create_default_context(cafile=tls.ca_bundle or None)
        if not tls.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if tls.client_cert:
            context.load_cert_chain(tls.client_cert, tls.client_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"services.{name}.tls: cannot load certificates: {exc}") from exc
    return context


def _checked_transport(policy: AddressPolicy, **options: object) -> httpx.AsyncHTTPTransport:
    """httpx's transport whose connection pool connects through ``CheckedBackend``. httpx takes no
    network backend of its own, so the pool's is wrapped; ``_pool._network_backend`` is what every
    new connection uses (httpcore 1.x), and a change there fails here, at start, not silently."""
    transport = httpx.AsyncHTTPTransport(**options)  # type: ignore[arg-type]
    pool = transport._pool
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpcore's connection pool changed: the backend address check cannot be installed")
    pool._network_backend = CheckedBackend(pool._network_backend, policy)
    return transport


class BackendClient:
    def __init__(self, name: str, service: BackendServiceConfig) -> None:
        self.name = name
        self.config = service
        self.base_url = service.effective_base_url()
        auth = service.auth
        self._api_key = auth.api_key.secret.resolve(f"services.{name}.auth.api_key.secret") \
            if auth.kind == "api_key" else ""
        self.oauth2: OAuth2Tokens | None = None
        if auth.kind == "oauth2":
            secret = auth.oauth2.client_secret.resolve(f"services.{name}.auth.oauth2.client_secret")
            self.oauth2 = OAuth2Tokens(auth.oauth2, secret, name)
        timeouts = service.timeouts
        self._client = httpx.AsyncClient(
            transport=_checked_transport(address_policy(name, service), verify=_ssl_context(name, service),
                                         http2=service.http2,
                                         limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)),
            follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(timeouts.read_s, connect=timeouts.connect_s),
            headers=service.headers)

    def _timeout(self, remaining_s: float) -> httpx.Timeout:
        t = self.config.timeouts
        read = max(0.001, min(t.read_s, remaining_s))
        return httpx.Timeout(read, connect=max(0.001, min(t.connect_s, remaining_s)))

    def build(self, spec: HttpRequestSpec, idempotency_key: str) -> httpx.Request:
        """The request every attempt sends; raises InvalidRequest for what cannot be sent."""
        headers = {"Idempotency-Key": idempotency_key}
        params = list(spec.query)
        api_key = self.config.auth.api_key
        if self._api_key and api_key.header:
            headers[api_key.header] = api_key.prefix + self._api_key
        elif self._api_key:
            params.append((api_key.query, api_key.prefix + self._api_key))
        try:
            request = self._client.build_request(spec.verb, spec.url, params=params or None, json=spec.json_body,
                                                 headers=headers)
        except (ValueError, TypeError, httpx.InvalidURL) as exc:  # UnicodeEncodeError is a ValueError
            raise InvalidRequest(f"the HTTP request cannot be built: {type(exc).__name__}") from None
        # httpx checks header values only when h11 or h2 writes them, inside an attempt: then the
        # refusal would look like a transport error, be retried and count against the backend.
        for name, value in request.headers.raw:
            if not header_value_ok(value):
                raise InvalidRequest(f"header {name.decode('latin-1')[:64]} would hold a control character")
        return request

    async def send(self, request: httpx.Request, remaining_s: float) -> HttpReply:
        """One attempt of a built request, bounded by ``remaining_s``."""
        if remaining_s <= 0:
            return HttpReply(AttemptOutcome(AttemptKind.TIMEOUT), error="deadline passed before the attempt")
        try:
            async with asyncio.timeout(remaining_s):
                return await self._send(request, remaining_s)
        except TimeoutError:
            return HttpReply(AttemptOutcome(AttemptKind.TIMEOUT), error=f"no answer within {remaining_s:.3f} s")

    async def _send(self, request: httpx.Request, remaining_s: float) -> HttpReply:
        timeout = self._timeout(remaining_s)
        request.extensions["timeout"] = timeout.as_dict()  # httpx's per-request timeout
        for auth_round in range(2):  # a 401 with OAuth2 refreshes the token once
            token = ""
            if self.oauth2 is not None:
                try:
                    token = await self.oauth2.token(self._client, timeout)
                except TokenError as exc:
                    return HttpReply(AttemptOutcome(exc.kind, exc.status), error=f"oauth2: {exc}")
                except AddressRefused as exc:
                    return HttpReply(AttemptOutcome(AttemptKind.REQUEST_ERROR), error=f"oauth2 token_url: {exc}")
                request.headers["Authorization"] = "Bearer " + token
            try:
                reply = await self._client.send(request)
            except AddressRefused as exc:
                # The service's address policy: nothing was sent, and asking again would not change it.
                return HttpReply(AttemptOutcome(AttemptKind.REQUEST_ERROR), error=str(exc))
            except httpx.TimeoutException as exc:
                return HttpReply(AttemptOutcome(AttemptKind.TIMEOUT), error=f"timeout: {type(exc).__name__}")
            except httpx.LocalProtocolError as exc:
                # h11/h2 refused to write our own request: no backend was asked anything.
                return HttpReply(AttemptOutcome(AttemptKind.REQUEST_ERROR),
                                 error=f"the request cannot be sent: {type(exc).__name__}")
            except httpx.TransportError as exc:
                return HttpReply(AttemptOutcome(AttemptKind.CONNECT_ERROR),
                                 error=f"{type(exc).__name__}: {exc}"[:300])
            except OSError as exc:
                # httpcore does not map every TLS failure: a server that refuses our (missing) client
                # certificate after the TLS 1.3 handshake surfaces as a raw ssl.SSLError on read.
                return HttpReply(AttemptOutcome(AttemptKind.CONNECT_ERROR),
                                 error=f"{type(exc).__name__}: {exc}"[:300])
            except httpx.DecodingError as exc:  # the backend sent a body its Content-Encoding cannot decode
                return HttpReply(AttemptOutcome(AttemptKind.RESPONSE, 502),
                                 error=f"undecodable response body: {exc}"[:300])
            if reply.status_code == 401 and self.oauth2 is not None and auth_round == 0:
                self.oauth2.invalidate(token)
                continue
            break
        body = reply.content
        if len(body) > MAX_BODY_BYTES:
            return HttpReply(AttemptOutcome(AttemptKind.RESPONSE, 502),
                             error=f"backend body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
        return HttpReply(AttemptOutcome(AttemptKind.RESPONSE, reply.status_code, reply.headers.get("retry-after")),
                         body=body)

    async def close(self) -> None:
        await self._client.aclose()
