"""One SIP dialog (``SipLeg``) over sippy's UA, and the listener protocol the call layer implements.

sippy's events for the dialog are turned into ``LegListener`` calls on the asyncio loop; the
leg's verbs (ring, answer, reject, hang up, refer, answer a re-INVITE) hop onto the sippy
thread through ``SippyBridge``. sippy objects are touched only on that thread.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Any, Protocol

from dialtone.media_gateway.media_types import CallEndReason
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
from sippy.SipGenericHF import SipGenericHF
from sippy.SipHeader import SipHeader
from sippy.SipReferredBy import SipReferredBy
from sippy.SipReferTo import SipReferTo
from sippy.SipURL import SipURL
from sippy.UA import UA

if TYPE_CHECKING:
    from dialtone.media_gateway.sip_stack import SipStack

__all__ = ["InboundOffer", "LegListener", "SipLeg", "exact_header"]


@dataclasses.dataclass(frozen=True)
class InboundOffer:
    call_id: str
    caller: str                          # From URI
    callee: str                          # Request-URI user part
    headers: tuple[tuple[str, str], ...]  # every header as received (name, value)
    sdp: str | None
    source: tuple[str, int]
    transport: str = "udp"               # the connection it came on: udp, tcp or tls


class LegListener(Protocol):
    """What the call layer hears from a leg. Called on the asyncio loop thread."""

    def on_connected(self, leg: SipLeg, sdp: str | None) -> None: ...     # ACK (UAS) / 200 (UAC)
    def on_ringing(self, leg: SipLeg) -> None: ...
    def on_failed(self, leg: SipLeg, status: int, reason: str) -> None: ...  # UAC: final non-2xx
    def on_ended(self, leg: SipLeg, reason: str) -> None: ...             # BYE, CANCEL, timeout
    def on_reoffer(self, leg: SipLeg, sdp: str | None) -> None: ...        # re-INVITE: answer it
    def on_info(self, leg: SipLeg, content_type: str, body: str) -> None: ...
    def on_transfer_outcome(self, leg: SipLeg, status: int, reason: str) -> None: ...


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
                reason = CallEndReason.CANCELLED if self.inbound else CallEndReason.NO_ANSWER
            else:
                reason = CallEndReason.REMOTE_HANGUP
            if self._end_once():
                bridge.to_asyncio(self._deliver, "on_ended", reason)

    def _dead(self, ua: Any, *args: Any) -> None:
        if self._end_once():
            self.stack.bridge.to_asyncio(self._deliver, "on_ended", CallEndReason.TIMEOUT)

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


def _body_text(body: Any) -> str | None:
    if body is None:
        return None
    return str(body.localStr()) if hasattr(body, "localStr") else str(body)
