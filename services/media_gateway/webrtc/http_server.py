"""The softphone's HTTP side (aiohttp): the page, the offer/hangup API and per-call live events.

    GET  /                          the softphone page (static/index.html)
    GET  /static/{file}             its script and style (public, no call data)
    GET  /api/config                {"dialogs": [...], "ice_servers": [...]} for the page
    POST /api/offer                 {"sdp", "dialog"} -> {"sdp", "type": "answer", "session_id"}
    POST /api/hangup                {"session_id"} -> {"found": bool}
    GET  /api/events?session_id=    server-sent events of that call (history first), until it ends
    GET  /healthz                   "ok"

Errors are JSON ``{"error": "..."}``: 400 bad offer/request, 401 wrong access key, 404 unknown
session, 413 body too large, 503 too many calls or draining. With ``webrtc.access_key`` set, the page and the
API want it as ``?key=`` or the ``X-Dialtone-Key`` header. aiohttp is used (not h11 as the control
API is) because this server streams events and serves files: that is a web framework's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from dialtone.common.ids import new_session_id, valid_session_id
from dialtone.media_gateway.calls import CallRegistry
from dialtone.media_gateway.media_types import CallEndReason
from dialtone.media_gateway.webrtc.call import LinkFactory, WebRtcCall
from dialtone.media_gateway.webrtc.config import WebRtcConfig
from dialtone.media_gateway.webrtc.core.access import check_access_config, key_allows
from dialtone.media_gateway.webrtc.errors import BadRequest, Unauthorized, UnknownSession, WebRtcError
from dialtone.media_gateway.webrtc.ice import use_host_addresses

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ASSETS = {"softphone.js": "text/javascript; charset=utf-8", "softphone.css": "text/css; charset=utf-8"}
MAX_BODY_BYTES = 128 * 1024
MAX_CALLS = 64
HEARTBEAT_S = 15.0
_DIALOG_NAME = re.compile(r"^[A-Za-z0-9_.\-]{0,64}$")
_PUBLIC_PREFIXES = ("/static/", "/healthz")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class WebRtcServer:
    def __init__(self, config: WebRtcConfig, link_factory: LinkFactory, registry: CallRegistry | None = None) -> None:
        check_access_config(config.host, config.access_key)
        use_host_addresses(config.ice_host_addresses)
        self.config = config
        self.registry = registry or CallRegistry()   # the gateway's one registry: SIP and browser calls
        self._link_factory = link_factory
        self._runner: web.AppRunner | None = None
        self.draining = False
        self.port = 0

    @property
    def calls(self) -> dict[str, WebRtcCall]:
        """The browser calls among the registry's."""
        return {sid: call for sid, call in self.registry.calls.items() if isinstance(call, WebRtcCall)}

    # --- lifecycle -----------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._errors, self._access])
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._asset)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/api/config", self._page_config)
        app.router.add_post("/api/offer", self._offer)
        app.router.add_post("/api/hangup", self._hangup)
        app.router.add_get("/api/events", self._events)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the asyncio server
        assert server is not None and server.sockets
        self.port = int(server.sockets[0].getsockname()[1])
        log.info("webrtc softphone on http://%s:%d/", self.config.host, self.port,
                 extra={"event": "webrtc_listening", "webrtc_port": self.port})
        return self.port

    async def close(self) -> None:
        """Hang up every browser call, then stop serving."""
        await asyncio.gather(*(call.close(CallEndReason.SHUTDOWN) for call in list(self.calls.values())))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._link_factory.close()

    async def wait_idle(self) -> None:
        """Return once no call is in progress (used while draining)."""
        await self.registry.wait_idle()

    def hangup(self, session_id: str, reason: str = CallEndReason.OPERATOR_HANGUP) -> bool:
        """A browser call only: the page's key must not reach SIP calls."""
        call = self.registry.calls.get(session_id)
        if not isinstance(call, WebRtcCall):
            return False
        call.hangup(reason)
        return True

    # --- middlewares ---------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except WebRtcError as exc:
            return _error(exc.http_status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - the page gets JSON it can show, the log gets the traceback
            log.exception("softphone request %s %s failed", request.method, request.path)
            return _error(500, f"internal error: {type(exc).__name__}")

    @web.middleware
    async def _access(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(_PUBLIC_PREFIXES):
            provided = request.headers.get("X-Dialtone-Key") or request.query.get("key")
            if not key_allows(self.config.access_key, provided):
                raise Unauthorized("access key missing or wrong (pass ?key= or the X-Dialtone-Key header)")
        return await handler(request)

    # --- handlers ------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound(text="no such file")
        return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": ASSETS[name]})

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def _page_config(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "dialogs": list(self.config.dialogs),
            "ice_servers": [{"urls": s.urls, **({"username": s.username, "credential": s.credential}
                                                 if s.username else {})} for s in self.config.ice_servers],
        })

    async def _offer(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        dialog = body.get("dialog", "")
        if not isinstance(dialog, str) or not _DIALOG_NAME.fullmatch(dialog):
            raise BadRequest("'dialog' must be a dialog name (letters, digits, _ . -; at most 64)")
        if self.draining:
            return _error(503, "the media gateway is draining: try another replica")
        if self.registry.count(WebRtcCall) >= MAX_CALLS:
            return _error(503, f"too many browser calls in progress ({MAX_CALLS})")
        session_id = new_session_id()
        call = WebRtcCall(session_id, dialog, link_factory=self._link_factory,
                          ice_servers=self.config.ice_servers, connect_timeout_s=self.config.connect_timeout_s,
                          user_agent=request.headers.get("User-Agent", ""), on_ended=self._forget)
        answer = await call.start(body.get("sdp"))  # BadOffer -> 400 by _errors; nothing registered
        if not call.ended.is_set():
            self.registry.add(call)
        return web.json_response({"sdp": answer, "type": "answer", "session_id": session_id})

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        session_id = _session_id(body.get("session_id"))
        return web.json_response({"found": self.hangup(session_id, CallEndReason.CALLER_HANGUP)})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        session_id = _session_id(request.query.get("session_id"))
        call = self.calls.get(session_id)
        if call is None:
            raise UnknownSession(f"no call with session_id {session_id}")
        try:
            events = call.live.subscribe()
            first = asyncio.ensure_future(anext(events))
        except OverflowError as exc:
            return _error(429, str(exc))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b": events of " + session_id.encode() + b"\n\n")
        pending: asyncio.Future[Any] = first
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
                if not done:
                    await response.write(b": keep-alive\n\n")
                    continue
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    break
                await response.write(event.to_sse())
                pending = asyncio.ensure_future(anext(events))
        except ConnectionResetError:
            log.debug("event stream of %s closed by the browser", session_id)
        finally:
            if not pending.done():
                pending.cancel()
                try:
                    await pending
                except (asyncio.CancelledError, StopAsyncIteration):
                    pass  # we just cancelled it
            await events.aclose()
        return response

    def _forget(self, call: WebRtcCall) -> None:
        self.registry.remove(call)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def _session_id(value: object) -> str:
    if not isinstance(value, str) or not valid_session_id(value):
        raise BadRequest("'session_id' is missing or malformed")
    return value
