"""Bearer tokens for the operator surfaces (control APIs, metrics): one way to load them, one check.

A surface bound to loopback may run open (only this machine reaches it); bound anywhere else it
needs a token, and the service refuses to start without one (``require_token``), the way the
softphone refuses without its access key. Callers send ``Authorization: Bearer <token>`` (HTTP)
or ``authorization: Bearer <token>`` metadata (gRPC); ``token_allows`` compares in constant time.
Refusals are 401 / UNAUTHENTICATED with a short message that never echoes what was sent.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
from dialtone.common.config import ConfigError

UNAUTHENTICATED_MESSAGE = "a bearer token is required (authorization: Bearer <token>)"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(token: str, token_file: str, setting: str) -> str:
    """The token of a ``token``/``token_file`` pair (the file wins: a mounted Secret), stripped.
    ConfigError when the file cannot be read or is empty."""
    if token_file:
        try:
            value = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{setting}.token_file: cannot read {token_file}: {exc}") from None
        if not value:
            raise ConfigError(f"{setting}.token_file: {token_file} is empty")
        return value
    return token.strip()


def require_token(host: str, token: str, setting: str, what: str, env_hint: str = "") -> None:
    """Refuse to start ``what`` bound to ``host`` beyond loopback without a token."""
    if token or is_loopback_host(host):
        return
    hint = f" (or {env_hint})" if env_hint else ""
    raise ConfigError(f"{what} binds {host!r}, which is reachable beyond loopback: set {setting}.token_file or "
                      f"{setting}.token{hint} so that only callers with the token are served")


def token_allows(expected: str, provided: str | None) -> bool:
    """True when no token is configured, or ``provided`` is it (constant-time compare)."""
    if not expected:
        return True
    if not provided:
        return False
    return hmac.compare_digest(expected.encode(), provided.encode())


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (the scheme in any case), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying ``token`` (none when it is empty)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Calls to ``services`` (full names) need ``authorization: Bearer <token>``; others pass untouched."""

    def __init__(self, token: str, services: Iterable[str]) -> None:
        self._token = token
        self._prefixes = tuple(f"/{name}/" for name in services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(self._prefixes):
            return handler
        provided = None
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                provided = bearer(value if isinstance(value, str) else None)
                break
        if token_allows(self._token, provided):
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED without running it."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

    kinds = {"unary_unary": grpc.unary_unary_rpc_method_handler, "unary_stream": grpc.unary_stream_rpc_method_handler,
             "stream_unary": grpc.stream_unary_rpc_method_handler,
             "stream_stream": grpc.stream_stream_rpc_method_handler}
    for kind, make in kinds.items():
        if getattr(handler, kind) is not None:
            return make(refuse, request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)
    return handler
