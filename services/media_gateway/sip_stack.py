"""sippy behind a small call-leg interface: the only module that knows sippy's UA and events.

``SipStack`` owns sippy's transaction manager on our guarded UDP socket and answers
out-of-dialog requests (OPTIONS 200; new INVITEs become a ``SipLeg``; 503 while draining).
A ``SipLeg`` is one call's dialog: sippy's events are turned into ``LegListener`` calls
on the asyncio loop, and the leg's verbs (ring, answer, reject, hang up, refer, answer a
re-INVITE) hop onto the sippy thread. All sippy objects are touched only on that thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import socket
from typing import Any, Protocol

from dialtone.media_gateway.sip_bridge import SippyBridge
from dialtone.media_gateway.sip_guard import ALLOW, SipGuard
from dialtone.media_gateway.sip_syntax import SipSyntaxError, split_message
from dialtone.media_gateway.sip_tcp import TcpListener
from dialtone.media_gateway.sip_transport import GuardedUdpServer
from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventInfo,
    CCEventPreConnect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.MsgBody import MsgBody
from sippy.SipAddress import SipAddress
from sippy.SipConf import MyAddress, MyPort, SipConf
from sippy.SipGenericHF import SipGenericHF
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SipLogger
from sippy.SipReferredBy import SipReferredBy
from sippy.SipReferTo import SipReferTo
from sippy.SipTransactionManager import SipTransactionManager
from sippy.SipURL import SipURL
from sippy.UA import UA
from sippy.Udp_server import Udp_server_opts

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InboundOffer:
    call_id: str
    caller: str                          # From URI
    callee: str                          # Request-URI user part
    headers: tuple[tuple[str, str], ...]  # every header as received (name, value)
    sdp: str | None
    source: tuple[str, int]


class LegListener(Protocol):
    """What the call layer hears from a leg. Called on the asyncio loop thread."""

    def on_connected(self, leg: SipLeg, sdp: str | None) -> None: ...     # ACK (UAS) / 200 (UAC)
    def on_ringing(self, leg: SipLeg) -> None: ...
    def on_failed(self, leg: SipLeg, status: int, reason: str) -> None: ...  # UAC: final non-2xx
    def on_ended(self, leg: SipLeg, reason: str) -> None: ...             # BYE, CANCEL, timeout
    def on_reoffer(self, leg: SipLeg, sdp: str | None) -> None: ...        # re-INVITE: answer it
    def on_info(self, leg: SipLeg, content_type: str, body: str) -> None: ...
    def on_transfer_outcome(self, leg: SipLeg, status: int, reason: str) -> None: ...


class StackListener(Protocol):
    def on_invite(self, leg: SipLeg, offer: InboundOffer) -> None: ...   # asyncio thread; set leg.listener


class _SilentLogger(SipLogger):  # type: ignore[misc]
    """sippy's logger writes every message to stdout; ours logs nothing per message."""

    def __init__(self) -> None:  # noqa: D107 - no AsyncLogger thread, no file
        pass

    def write(self, *args: Any, **kwargs: Any) -> None:
        return None


class _GatewayTM(SipTransactionManager):  # type: ignore[misc]
    model_udp_server = (GuardedUdpServer, Udp_server_opts)
    current_datagram: bytes = b""
    tcp: TcpListener | None = None

    def newTransaction(self, msg: Any, resp_cb: Any = None, laddress: Any = None, userv: Any = None,  # noqa: N802
                       *args: Any, **kwargs: Any) -> Any:
        # sippy only sends over UDP/WS; a request inside a TCP dialog goes out on that peer's connection.
        if userv is None and self.tcp is not None:
            address, transport = msg.getTarget()
            if str(transport).lower() == "tcp":
                userv = self.tcp.server_for(str(address[0]))
                if userv is None:
                    raise RuntimeError(f"no SIP/TCP connection to {address[0]} (we do not dial TCP)")
        return super().newTransaction(msg, resp_cb, laddress, userv, *args, **kwargs)

    def handleIncoming(self, data_in: bytes, ra: Any, server: Any, rtime: Any) -> None:  # noqa: N802
        # sippy lower-cases and re-capitalises header names; keep the raw bytes of the message
        # being dispatched so a new call can report its headers exactly as sent.
        self.current_datagram = data_in if isinstance(data_in, bytes) else getattr(data_in, "raw", b"")
        try:
            super().handleIncoming(data_in, ra, server, rtime)
        finally:
            self.current_datagram = b""


class _GatewayUA(UA):  # type: ignore[misc]
    """sippy's UA plus the in-dialog requests it does not handle (NOTIFY for our REFER)."""

    leg: SipLeg | None = None
    initial_request: Any = None

    def recvRequest(self, req: Any, sip_t: Any) -> Any:  # noqa: N802 - sippy's name
        method = req.getMethod()
        if method == "INVITE" and self.initial_request is None:
            self.initial_request = req
        if method == "NOTIFY":
            if self.leg is not None:
                self.leg._notify_received(req)
            return (req.genResponse(200, "OK"), None, None)
        if method in ("UPDATE", "PRACK", "MESSAGE", "SUBSCRIBE") and self.isConnected():
            return (req.genResponse(501, "Not Implemented"), None, None)
        return super().recvRequest(req, sip_t)


class _ExactHeader(SipGenericHF):  # type: ignore[misc]
    """An extra header written with the caller's spelling (sippy would write 'X-campaign')."""

    def __init__(self, body: str, name: str | None = None) -> None:
        super().__init__(body, name)
        self.exact_name = name or ""

    def getCopy(self) -> _ExactHeader:  # noqa: N802 - sippy's name
        return _ExactHeader(self.body, self.exact_name)

    def getCanName(self, name: str, compact: bool = False) -> str:  # noqa: N802 - sippy's name
        return self.exact_name or str(name).capitalize()


def exact_header(name: str, value: str) -> Any:
    return SipHeader(name=name, body=_ExactHeader(value, name))


_leg_ids = itertools.count(1)


class SipLeg:
    """One dialog. Public methods may be called from the asyncio thread; they hop to sippy."""

    def __init__(self, stack: SipStack, ua: _GatewayUA, inbound: bool) -> None:
        self.stack = stack
        self.ua = ua
        self.inbound = inbound
        self.listener: LegListener | None = None
        self.leg_id = next(_leg_ids)
        self.call_id = ""
        self._ended = False
        self._connected = False
        self._refer_pending = False
        ua.leg = self

    # --- sippy thread: events from the UA ---------------------------------------------------
    def _event(self, event: Any, ua: Any) -> None:
        bridge = self.stack.bridge
        if isinstance(event, CCEventTry):
            return  # handled by SipStack._recv_request (it needs the request)
        if isinstance(event, CCEventRing):
            bridge.to_asyncio(self._deliver, "on_ringing")
        elif isinstance(event, CCEventConnect):
            code, _reason, body = event.getData()
            if self._connected and code != "ACK":
                return  # 200 to our own re-INVITE
            self._connected = True
            bridge.to_asyncio(self._deliver, "on_connected", _body_text(body))
        elif isinstance(event, CCEventUpdate):
            bridge.to_asyncio(self._deliver, "on_reoffer", _body_text(event.getData()))
        elif isinstance(event, CCEventInfo):
            body = event.getData()
            content_type = body.getType() if body is not None else ""
            bridge.to_asyncio(self._deliver, "on_info", content_type, _body_text(body) or "")
        elif isinstance(event, CCEventFail):
            data = event.getData() or (500, "Failed")
            self._end_once()
            bridge.to_asyncio(self._deliver, "on_failed", int(data[0]), str(data[1]))
        elif isinstance(event, CCEventDisconnect):
            if not self._connected:
                reason = "cancelled" if self.inbound else "no_answer"
            else:
                reason = "remote_hangup"
            if self._end_once():
                bridge.to_asyncio(self._deliver, "on_ended", reason)

    def _dead(self, ua: Any, *args: Any) -> None:
        if self._end_once():
            self.stack.bridge.to_asyncio(self._deliver, "on_ended", "timeout")

    def _end_once(self) -> bool:
        if self._ended:
            return False
        self._ended = True
        self.stack._forget(self)
        return True

    def _notify_received(self, req: Any) -> None:
        body = req.getBody()
        text = _body_text(body) or ""
        first = text.strip().split("\n", 1)[0].strip()
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            return
        status = int(parts[1])
        if status < 200 or not self._refer_pending:
            return
        self._refer_pending = False
        self.stack.bridge.to_asyncio(self._deliver, "on_transfer_outcome", status,
                                     parts[2].strip() if len(parts) > 2 else "")

    def _refer_response(self, resp: Any) -> None:
        code, reason = resp.getSCode()
        if code >= 300 and self._refer_pending:
            self._refer_pending = False
            self.stack.bridge.to_asyncio(self._deliver, "on_transfer_outcome", code, str(reason))

    def _deliver(self, method: str, *args: Any) -> None:  # asyncio thread
        if self.listener is not None:
            getattr(self.listener, method)(self, *args)

    # --- asyncio thread: verbs ---------------------------------------------------------------
    def ring(self) -> None:
        self.stack.bridge.to_sippy(self._send, CCEventRing((180, "Ringing", None)))

    def answer(self, sdp: str, headers: list[tuple[str, str]] | None = None, refresh_every_s: float = 0.0) -> None:
        """200 with ``sdp``; with ``refresh_every_s`` we refresh the session (RFC 4028 refresher=uas) by
        re-INVITE with the same SDP, which is sippy's keep-alive."""
        # PreConnect: sippy sends the 200 and waits for the ACK, which then arrives as CCEventConnect.
        event = CCEventPreConnect((200, "OK", MsgBody(sdp)))
        if headers:
            event.extra_headers = tuple(exact_header(name, value) for name, value in headers)
        self.stack.bridge.to_sippy(self._answer, event, refresh_every_s)

    def reject(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        event = CCEventFail((status, reason))
        if headers:
            event.extra_headers = tuple(exact_header(name, value) for name, value in headers)
        self.stack.bridge.to_sippy(self._send, event)

    def answer_reoffer(self, sdp: str) -> None:
        self.stack.bridge.to_sippy(self._send, CCEventConnect((200, "OK", MsgBody(sdp))))

    def reject_reoffer(self, status: int, reason: str) -> None:
        self.stack.bridge.to_sippy(self._send, CCEventFail((status, reason)))

    def hangup(self) -> None:
        self.stack.bridge.to_sippy(self._hangup)

    def refer(self, target_uri: str) -> None:
        self.stack.bridge.to_sippy(self._refer, target_uri)

    # --- sippy thread: verb bodies -----------------------------------------------------------
    def _answer(self, event: Any, refresh_every_s: float) -> None:
        if refresh_every_s > 0:
            self.ua.kaInterval = refresh_every_s   # read when the UA enters the Connected state
        self._send(event)

    def _send(self, event: Any) -> None:
        if not self.ua.isDead():
            self.ua.recvEvent(event)

    def _hangup(self) -> None:
        if self.ua.isDead() or self._ended:
            return
        self._end_once()
        if self.ua.isConnected() or not self.inbound:
            self.ua.recvEvent(CCEventDisconnect())
        else:
            self.ua.recvEvent(CCEventFail((480, "Temporarily Unavailable")))

    def _refer(self, target_uri: str) -> None:
        if not self.ua.isConnected():
            self.stack.bridge.to_asyncio(self._deliver, "on_transfer_outcome", 481, "call is not connected")
            return
        url = SipURL(url=target_uri)
        req = self.ua.genRequest("REFER")
        req.appendHeader(SipHeader(name="refer-to", body=SipReferTo(address=SipAddress(url=url))))
        req.appendHeader(SipHeader(name="referred-by",
                                   body=SipReferredBy(address=SipAddress(url=self.ua.lUri.getUrl()))))
        self._refer_pending = True
        self.ua.newTransaction(req, resp_cb=self._refer_response)


def _free_udp_and_tcp_port(host: str) -> int:
    """A port free for both UDP and TCP (SIP listens on both); for ``sip.port: 0``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as udp, socket.socket(family, socket.SOCK_STREAM) as tcp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


def _body_text(body: Any) -> str | None:
    if body is None:
        return None
    return str(body.localStr()) if hasattr(body, "localStr") else str(body)


def _headers_of(req: Any, raw: bytes) -> tuple[tuple[str, str], ...]:
    if raw:
        try:
            return tuple((name, value) for name, value in split_message(raw).headers)
        except SipSyntaxError:
            pass
    headers = []
    for header in req.headers:
        text = str(header)
        name, _, value = text.partition(":")
        headers.append((name.strip(), value.strip()))
    return tuple(headers)


class SipStack:
    """sippy's transaction manager on our socket; creates legs for INVITEs (see module docstring)."""

    def __init__(self, bridge: SippyBridge, guard: SipGuard, host: str, port: int,
                 listener: StackListener, retry_after_s: int = 30, advertised_host: str = "") -> None:
        self.bridge = bridge
        self._guard = guard
        self._host = host
        self._port = port
        self._listener = listener
        self._retry_after_s = retry_after_s
        self._advertised_host = advertised_host
        self.draining = False
        self.bound_port = 0
        self.global_config: dict[str, Any] = {}
        self._tm: Any = None
        self._legs: dict[int, SipLeg] = {}
        self.registration: Any = None

    async def start(self) -> int:
        if self._port == 0:
            self._port = _free_udp_and_tcp_port(self._host)
        self.bridge.start()
        try:
            return int(await self.bridge.call_in_sippy(self._start))
        except BaseException:
            # ED2 is a process-wide singleton: never leave its loop running for a stack that did not start.
            if self._tm is not None:
                with contextlib.suppress(Exception):
                    await self.bridge.call_in_sippy(self._tm.shutdown)
                self._tm = None
            self.bridge.stop()
            raise

    def _start(self) -> int:
        config: dict[str, Any] = {"_sip_address": self._host, "_sip_port": self._port,
                                  "_sip_logger": _SilentLogger(), "_dialtone_guard": self._guard,
                                  "_dialtone_advertised": self._advertised_host}
        self.global_config = config
        self._tm = _GatewayTM(config, self._recv_request)
        config["_sip_tm"] = self._tm
        server = self._tm.l4r.getServer(None)
        self.bound_port = int(server.uopts.laddress[1])
        # Contacts we generate take host:port from the server's getSIPaddr() (MyAddress/MyPort are
        # placeholders sippy replaces when it writes a message).
        SipConf.my_address = MyAddress()
        SipConf.my_port = MyPort(self.bound_port)
        SipConf.my_uaname = "dialtone"
        config["_sip_port"] = self.bound_port
        self._tm.tcp = TcpListener(self._host, self.bound_port, self._guard, self._advertised_host,
                                   self._tm.handleIncoming)
        return self.bound_port

    async def register(self, config: Any) -> Any:
        """Start registering to a PBX (``RegistrationConfig``); returns the ``Registration``."""
        from dialtone.media_gateway.sip_register import Registration

        def start() -> Any:
            server = self._tm.l4r.getServer(None)
            (host, port), _transport = server.getSIPaddr()
            registration = Registration(self.global_config, config, host, port)
            registration.start()
            self.registration = registration
            return registration

        return await self.bridge.call_in_sippy(start)

    async def stop(self) -> None:
        if self.registration is not None:
            await self.bridge.call_in_sippy(self.registration.stop)
            self.registration = None
        if self._tm is not None:
            if self._tm.tcp is not None:
                self._tm.tcp.close()
            await self.bridge.call_in_sippy(self._tm.shutdown)
            self._tm = None
        self.bridge.stop()

    def _forget(self, leg: SipLeg) -> None:
        self._legs.pop(leg.leg_id, None)

    def _new_ua(self, **kwargs: Any) -> _GatewayUA:
        ua = _GatewayUA(self.global_config, **kwargs)
        ua.local_ua = "dialtone"
        return ua

    # sippy thread: every request that no dialog claimed
    def _recv_request(self, req: Any, sip_t: Any) -> Any:
        method = req.getMethod()
        if method == "INVITE":
            if self.draining:
                resp = req.genResponse(503, "Service Unavailable")
                resp.appendHeader(exact_header("Retry-After", str(self._retry_after_s)))
                return (resp, None, None)
            return self._new_inbound(req, sip_t)
        if method == "OPTIONS":
            resp = req.genResponse(200, "OK")
            resp.appendHeader(SipHeader(name="allow", bodys=ALLOW))
            resp.appendHeader(SipHeader(name="accept", bodys="application/sdp"))
            return (resp, None, None)
        if method in ("BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK"):
            return (req.genResponse(481, "Call/Transaction Does Not Exist"), None, None)
        if method in ("REGISTER", "SUBSCRIBE", "MESSAGE", "PUBLISH"):
            resp = req.genResponse(405, "Method Not Allowed")
            resp.appendHeader(SipHeader(name="allow", bodys=ALLOW))
            return (resp, None, None)
        resp = req.genResponse(501, "Not Implemented")
        resp.appendHeader(SipHeader(name="allow", bodys=ALLOW))
        return (resp, None, None)

    def _new_inbound(self, req: Any, sip_t: Any) -> Any:
        holder: dict[str, SipLeg] = {}

        def event_cb(event: Any, ua: Any) -> None:
            holder["leg"]._event(event, ua)

        ua = self._new_ua(event_cb=event_cb)
        leg = SipLeg(self, ua, inbound=True)
        holder["leg"] = leg
        ua.dead_cbs = (leg._dead,)
        ua.disc_cbs = ()
        self._legs[leg.leg_id] = leg
        result = ua.recvRequest(req, sip_t)
        leg.call_id = str(req.getHFBody("call-id"))
        source = req.getSource()
        from_url = req.getHFBody("from").getUrl()
        offer = InboundOffer(
            call_id=leg.call_id, caller=str(from_url), callee=req.getRURI().username or "",
            headers=_headers_of(req, self._tm.current_datagram), sdp=_body_text(req.getBody()),
            source=(str(source[0]), int(source[1])) if source else ("", 0))
        self.bridge.to_asyncio(self._listener.on_invite, leg, offer)
        return result

    def active_legs(self) -> int:
        return len(self._legs)

    # asyncio thread: outbound call
    def new_outbound_leg(self, host: str, port: int, ring_timeout_s: float,
                         credentials: tuple[str, str] | None = None) -> SipLeg:
        """A leg for a call we place; nothing is sent until ``originate_with``. (UA() only sets fields.)
        Unanswered after ``ring_timeout_s``, sippy CANCELs it."""
        holder: dict[str, SipLeg] = {}

        def event_cb(event: Any, ua: Any) -> None:
            holder["leg"]._event(event, ua)

        # With credentials sippy answers a 401/407 on our INVITE with digest auth (a PBX trunk).
        username, password = credentials or (None, None)
        ua = self._new_ua(event_cb=event_cb, nh_address=(host, port), expire_time=ring_timeout_s,
                          username=username, password=password)
        leg = SipLeg(self, ua, inbound=False)
        holder["leg"] = leg
        ua.dead_cbs = (leg._dead,)
        return leg

    async def originate_with(self, leg: SipLeg, *, host: str, port: int, user: str, caller_id: str, sdp: str,
                             extra_headers: list[tuple[str, str]]) -> None:
        await self.bridge.call_in_sippy(self._originate, leg, user, caller_id, sdp, extra_headers)

    def _originate(self, leg: SipLeg, user: str, caller_id: str, sdp: str,
                   extra_headers: list[tuple[str, str]]) -> None:
        self._legs[leg.leg_id] = leg
        event = CCEventTry((None, caller_id or "dialtone", user, MsgBody(sdp), None, caller_id or "dialtone"))
        if extra_headers:
            event.extra_headers = tuple(exact_header(name, value) for name, value in extra_headers)
        leg.ua.recvEvent(event)
        leg.call_id = str(leg.ua.cId)


__all__ = ["InboundOffer", "LegListener", "SipLeg", "SipStack", "StackListener"]
