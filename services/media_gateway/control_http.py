"""The control API over HTTP/JSON for operators (curl): a small asyncio server on h11.

    GET    /v1/calls                 -> {"calls": [...]}
    POST   /v1/calls                 {"to_uri", "dialog", "caller_id", "headers": {name: value}}
                                     -> 201 {"session_id", "call_id"}
    DELETE /v1/calls/{session_id}    -> 200 {"found": true} | 404 {"found": false}

h11 does the HTTP/1.1 framing (no web framework for three routes); one request per
connection, bodies capped at 64 KiB, parsed as strict JSON nested at most 64 deep
(``common.limits.loads_json``); every field has the type it is documented with.
Errors are JSON ``{"error": "..."}`` with 400/404/503, quoting at most a short prefix.
With a control token (``control.token``), every request needs ``Authorization: Bearer <token>``:
401 otherwise, and nothing is done with the request (``dialtone.common.auth``). The request is still
read whole first (at most 64 KiB, 10 s), so that the 401 is not lost to a reset of unread data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import h11
from dialtone.common.auth import UNAUTHENTICATED_MESSAGE, bearer, token_allows
from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.common.limits import JsonTooDeep, loads_json
from dialtone.media_gateway import control
from dialtone.media_gateway.calls import CallManager

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
LINGER_S = 2.0                 # how long, and how much, a refused request's rest is read and dropped
LINGER_BYTES = 16 * 1024 * 1024
READ_TIMEOUT_S = 10.0


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number")
    return float(value)


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    return value


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument("headers must be an object of name: string")
    return list(value.items())


class ControlHttpServer:
    def __init__(self, manager: Callable[[], CallManager | None], draining: Callable[[], bool],
                 token: str = "") -> None:
        self._manager = manager
        self._draining = draining
        self._token = token
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            request, body = await asyncio.wait_for(self._read(conn, reader), READ_TIMEOUT_S)
            if self._token and not token_allows(self._token, _authorization(request)):
                status, payload = 401, {"error": UNAUTHENTICATED_MESSAGE}
            else:
                status, payload = await self._route(request, body)
        except (TimeoutError, h11.RemoteProtocolError, ConnectionError) as exc:
            status, payload = 400, {"error": f"bad HTTP request: {quote_prefix(str(exc), 160)}"}
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.next_event()
        except Exception:  # noqa: BLE001 - an operator request must not crash the gateway
            log.exception("control HTTP request failed")
            status, payload = 500, {"error": "internal error"}
        data = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(data))), ("connection", "close")]
        if status == 401:
            headers.append(("www-authenticate", "Bearer"))
        try:
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
            writer.write(conn.send(h11.Data(data=data)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            await _linger(reader, writer)
        except (ConnectionError, h11.LocalProtocolError):
            pass
        finally:
            writer.close()

    async def _read(self, conn: h11.Connection, reader: asyncio.StreamReader) -> tuple[h11.Request, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise h11.RemoteProtocolError(f"body over {MAX_BODY} bytes")
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("client closed the connection")

    async def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        method = request.method.decode()
        path = request.target.decode().split("?", 1)[0].rstrip("/")
        manager = self._manager()
        try:
            if path == "/v1/calls" and method == "GET":
                return 200, {"calls": [control.view_json(v) for v in control.list_calls(manager)]}
            if path == "/v1/calls" and method == "POST":
                try:
                    data = loads_json(body or b"{}")
                except JsonTooDeep as exc:
                    raise InvalidArgument(f"body is refused: {exc}") from None
                except ValueError as exc:
                    raise InvalidArgument(f"body is not JSON: {exc}") from None
                if not isinstance(data, dict):
                    raise InvalidArgument("body must be a JSON object")
                result = await control.originate(
                    manager, self._draining(), to_uri=_string(data, "to_uri"), dialog=_string(data, "dialog"),
                    caller_id=_string(data, "caller_id"), headers=_headers(data.get("headers")),
                    ring_timeout_s=_number(data.get("ring_timeout_s", 0), "ring_timeout_s"))
                return 201, {"session_id": result.session_id, "call_id": result.call_id}
            if path.startswith("/v1/calls/") and method == "DELETE":
                found = control.hangup(manager, path[len("/v1/calls/"):])
                return (200 if found else 404), {"found": found}
            return 404, {"error": f"no route {method} {quote_prefix(path)}"}
        except InvalidArgument as exc:
            return 400, {"error": str(exc)}
        except control.Unavailable as exc:
            return 503, {"error": str(exc)}


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Lingering close: after our answer, read and drop what the client still sends (bounded), so a
    request refused before it was read whole (a 1 MB body) gets its 400 instead of a reset, which
    the kernel sends when a socket closes with unread data."""
    if writer.can_write_eof():
        writer.write_eof()
    dropped = 0
    try:
        async with asyncio.timeout(LINGER_S):
            while dropped < LINGER_BYTES:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                dropped += len(chunk)
    except TimeoutError:
        return


def _authorization(request: h11.Request) -> str | None:
    for name, value in request.headers:
        if name == b"authorization":
            return bearer(value.decode("latin-1"))
    return None
