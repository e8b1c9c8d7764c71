"""OAuth2 client-credentials tokens for one service: fetched on first use, cached,
refreshed ``refresh_margin_s`` before expiry, and dropped when the backend says 401."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

import httpx
from dialtone.common.limits import header_value_ok
from dialtone.integration_gateway.config import OAuth2Auth
from dialtone.integration_gateway.core.retry import AttemptKind

log = logging.getLogger(__name__)


class TokenError(Exception):
    """The token endpoint could not be reached or refused us; ``kind`` is the attempt's outcome to report
    (RESPONSE: it answered, but not with a token)."""

    def __init__(self, message: str, kind: AttemptKind, status: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclasses.dataclass(frozen=True)
class CachedToken:
    value: str
    expires_at: float  # monotonic

    def fresh(self, now: float, margin_s: float) -> bool:
        return now < self.expires_at - margin_s


class OAuth2Tokens:
    def __init__(self, config: OAuth2Auth, client_secret: str, service: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._secret = client_secret
        self._service = service
        self._clock = clock
        self._token: CachedToken | None = None
        self._lock = asyncio.Lock()  # one fetch at a time; concurrent callers share its result
        self.fetches = 0

    async def token(self, client: httpx.AsyncClient, timeout: httpx.Timeout) -> str:
        token = self._token
        if token is not None and token.fresh(self._clock(), self._config.refresh_margin_s):
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and token.fresh(self._clock(), self._config.refresh_margin_s):
                return token.value
            self._token = await self._fetch(client, timeout)
            return self._token.value

    def invalidate(self, value: str) -> None:
        """The backend refused ``value`` (401): fetch a new one next time."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch(self, client: httpx.AsyncClient, timeout: httpx.Timeout) -> CachedToken:
        form = {"grant_type": "client_credentials"}
        auth: tuple[str, str] | None = None
        if self._config.client_auth == "basic":
            auth = (self._config.client_id, self._secret)
        else:
            form.update(client_id=self._config.client_id, client_secret=self._secret)
        if self._config.scope:
            form["scope"] = self._config.scope
        try:
            reply = await client.post(self._config.token_url, data=form, auth=auth, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TokenError(f"token endpoint timed out: {exc!r}", AttemptKind.TIMEOUT) from exc
        except (httpx.TransportError, OSError) as exc:  # OSError: TLS failures httpcore leaves unmapped
            raise TokenError(f"token endpoint unreachable: {exc!r}", AttemptKind.CONNECT_ERROR) from exc
        if reply.status_code != 200:
            raise TokenError(f"token endpoint answered {reply.status_code}", AttemptKind.RESPONSE, reply.status_code)
        try:
            data = reply.json()
            value = str(data["access_token"])
            expires_in = float(data.get("expires_in", 3600))
            if not (value.isascii() and header_value_ok(value)):  # it goes into the Authorization header
                raise ValueError("access_token cannot be a header value")
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("token endpoint answered without a usable access_token", AttemptKind.RESPONSE,
                             reply.status_code) from exc
        self.fetches += 1
        log.info("oauth2 token fetched for %s (expires in %.0f s)", self._service, expires_in,
                 extra={"event": "oauth2_token", "backend_service": self._service})
        return CachedToken(value, self._clock() + expires_in)
