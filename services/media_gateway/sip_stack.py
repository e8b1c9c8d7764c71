"""sippy's transaction manager on our transports, and the requests no dialog claims.

``SipStack`` runs sippy's transaction manager over the guarded UDP socket and the TCP
listener, answers out-of-dialog requests (OPTIONS 200; 503 + Retry-After for INVITEs while
draining; 405/481/501), turns each new INVITE into a ``sip_leg.SipLeg`` and places outbound
calls. Together with ``sip_leg`` it is the only code that knows sippy's UA and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import sys
import threading
import traceback
from typing import Any, Protocol

import sippy.Core.Exceptions as sippy_exceptions
from dialtone.common.logging import RateLimitedLog
from dialtone.common.metrics import counter
from dialtone.common.tls import ReloadingContext
from dialtone.media_gateway.call_rules import sip_uri_transport
from dialtone.media_gateway.sip_bridge import SippyBridge
from dialtone.media_gateway.sip_guard import ALLOW, SipGuard
from dialtone.media_gateway.sip_leg import InboundOffer, SipLeg, _body_text, _GatewayUA, exact_header
from dialtone.media_gateway.sip_tcp import TcpLimits, TcpListener
from dialtone.media_gateway.sip_transport import GuardedUdpServer
from sippy.CCEvents import (
    CCEventTry,
)
from sippy.MsgBody import MsgBody
from sippy.SipConf import MyAddress, MyPort, SipConf
from sippy.SipHeader import SipHeader
from sippy.SipLogger import SipLogger
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Udp_server import Udp_server_opts

log = logging.getLogger(__name__)

STACK_ERRORS = counter("media_sip_stack_errors_total",
                       "exceptions sippy caught and reported inside its own code, by what it was doing", ["where"])
_STACK_LOG = RateLimitedLog(log, 10.0)


def _report_sippy_exception(msg: str, f: Any = None, extra: Any = None) -> None:
    """Stands in for sippy's ``dump_exception``, which prints a full traceback (and the datagram)
    per bad message: a flood of those floods the logs. Ours is a counter and one rate-limited line."""
    exc_type, exc, tb = sys.exc_info()
    where = re.sub(r" from .*|[^a-z ]", "", str(msg).lower()).strip()[:40] or "unknown"
    STACK_ERRORS.labels(where).inc()
    origin = ""
    if tb is not None:
        frame = traceback.extract_tb(tb)[-1]
        origin = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
    _STACK_LOG.warning(where, "sippy: %.80s: %s: %.120s%s", msg, getattr(exc_type, "__name__", "?"), exc, origin)


def _quiet_sippy_tracebacks() -> None:
    """Point every loaded sippy module's ``dump_exception`` at ours (each imported it by name)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("sippy") and getattr(module, "dump_exception", None) is sippy_exceptions.dump_exception:
            module.dump_exception = _report_sippy_exception


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
    current_headers: tuple[tuple[str, str], ...] = ()
    tcp: TcpListener | None = None
    tls: TcpListener | None = None

    def newTransaction(self, msg: Any, resp_cb: Any = None, laddress: Any = None, userv: Any = None,  # noqa: N802
                       *args: Any, **kwargs: Any) -> Any:
        # sippy only sends over UDP/WS; a request to a TCP or TLS target goes out on that peer's
        # connection, or on a new one we dial.
        if userv is None:
            address, transport = msg.getTarget()
            kind = str(transport).lower()
            listener = {"tcp": self.tcp, "tls": self.tls}.get(kind)
            if kind in ("tcp", "tls"):
                if listener is None:
                    raise RuntimeError(f"SIP/{kind.upper()} is not configured here: cannot send to {address[0]}")
                userv = listener.server_for(str(address[0])) or listener.dial(str(address[0]), int(address[1]))
        return super().newTransaction(msg, resp_cb, laddress, userv, *args, **kwargs)

    def handleIncoming(self, data_in: bytes, ra: Any, server: Any, rtime: Any) -> None:  # noqa: N802
        # sippy lower-cases and re-capitalises header names; keep the headers of the message being
        # dispatched as the guard read them, so a new call can report them exactly as sent.
        self.current_headers = getattr(data_in, "headers", ())
        try:
            super().handleIncoming(data_in, ra, server, rtime)
        finally:
            self.current_headers = ()


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


def _headers_of(req: Any, as_sent: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if as_sent:
        return as_sent
    headers = []
    for header in req.headers:
        text = str(header)
        name, _, value = text.partition(":")
        headers.append((name.strip(), value.strip()))
    return tuple(headers)


class SipStack:
    """sippy's transaction manager on our socket; creates legs for INVITEs (see module docstring)."""

    def __init__(self, bridge: SippyBridge, guard: SipGuard, host: str, port: int,
                 listener: StackListener, retry_after_s: int = 30, advertised_host: str = "", advertised_port: int = 0,
                 tcp_limits: TcpLimits | None = None, tls: ReloadingContext | None = None, tls_port: int = 5061,
                 tls_client: ReloadingContext | None = None) -> None:
        self.bridge = bridge
        self.guard = guard
        self._host = host
        self._port = port
        self._listener = listener
        self._retry_after_s = retry_after_s
        self._advertised_host = advertised_host
        self._advertised_port = advertised_port
        self._tcp_limits = tcp_limits or TcpLimits()
        self._tls = tls
        self._tls_port = tls_port
        self._tls_client = tls_client
        self.tls_port = 0
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
        _quiet_sippy_tracebacks()
        config: dict[str, Any] = {"_sip_address": self._host, "_sip_port": self._port,
                                  "_sip_logger": _SilentLogger(), "_dialtone_guard": self.guard,
                                  "_dialtone_advertised": self._advertised_host,
                                  "_dialtone_advertised_port": self._advertised_port}
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
        self._tm.tcp = TcpListener(self._host, self.bound_port, self.guard, self._advertised_host,
                                   self._tm.handleIncoming, self._tcp_limits, advertised_port=self._advertised_port)
        if self._tls is not None:
            self._tm.tls = TcpListener(self._host, self._tls_port, self.guard, self._advertised_host,
                                       self._tm.handleIncoming, self._tcp_limits, tls=self._tls,
                                       client_tls=self._tls_client)
            self.tls_port = self._tm.tls.port
        return self.bound_port

    async def register(self, config: Any) -> Any:
        """Start registering to a PBX (``RegistrationConfig``); returns the ``Registration``."""
        from dialtone.media_gateway.sip_register import Registration

        over_tls = sip_uri_transport(config.registrar) == "tls"
        if over_tls and self._tm.tls is None:
            raise ValueError(f"registration.registrar {config.registrar}: SIP over TLS needs sip.tls_cert_file "
                             "and sip.tls_key_file")

        def start() -> Any:
            server = self._tm.l4r.getServer(None)
            (host, port), _transport = server.getSIPaddr()
            if over_tls:
                port = self.tls_port
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
            for listener in (self._tm.tcp, self._tm.tls):
                if listener is not None:
                    listener.close()
            server = self._tm.l4r.getServer(None)
            await self.bridge.call_in_sippy(self._tm.shutdown)
            self._tm = None
            closing = getattr(server, "closing", None)
            if closing is not None:   # the sender still holds messages: wait for them off the loop
                await asyncio.to_thread(closing.join, 2.5)
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
            headers=_headers_of(req, self._tm.current_headers), sdp=_body_text(req.getBody()),
            source=(str(source[0]), int(source[1])) if source else ("", 0),
            transport=str(req.getSource(ver=2)[1]).lower() if source else "udp")
        self.bridge.to_asyncio(self._listener.on_invite, leg, offer)
        return result

    def critical_threads(self) -> list[threading.Thread]:
        """The threads without which no SIP message is read, handled or answered."""
        threads = [self.bridge.thread] if self.bridge.thread is not None else []
        if self._tm is not None:
            server = self._tm.l4r.getServer(None)
            threads += [*server.areceivers, *server.asenders]
            threads += [listener.accept_thread for listener in (self._tm.tcp, self._tm.tls) if listener is not None]
        return threads

    @property
    def speaks_tls(self) -> bool:
        """SIP over TLS is configured (a certificate): calls can be placed to sips: / transport=tls URIs."""
        return self._tls is not None

    def active_legs(self) -> int:
        return len(self._legs)

    # asyncio thread: outbound call
    def new_outbound_leg(self, host: str, port: int, ring_timeout_s: float,
                         credentials: tuple[str, str] | None = None, transport: str = "udp") -> SipLeg:
        """A leg for a call we place; nothing is sent until ``originate_with``. (UA() only sets fields.)
        Unanswered after ``ring_timeout_s``, sippy CANCELs it."""
        holder: dict[str, SipLeg] = {}

        def event_cb(event: Any, ua: Any) -> None:
            holder["leg"]._event(event, ua)

        # With credentials sippy answers a 401/407 on our INVITE with digest auth (a PBX trunk).
        username, password = credentials or (None, None)
        hop: dict[str, Any] = {} if transport == "udp" else {"nh_transport": transport}
        ua = self._new_ua(event_cb=event_cb, nh_address=(host, port), expire_time=ring_timeout_s,
                          username=username, password=password, **hop)
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


__all__ = ["InboundOffer", "SipLeg", "SipStack", "StackListener"]
