"""The caller's telephone: the media gateway's own SIP stack (sippy, as a UAC) and ``MediaSession``.

``Phone`` owns one ``SipStack`` per process (sippy's dispatcher is a process-wide singleton)
and places calls. A ``PhoneCall`` is one dialog plus one RTP session: it dials, plays PCM,
sends RFC 4733 digits, hangs up, and reports what happens on the wire to a ``CallEvents``
listener: every received packet's decoded audio with its arrival time (``MediaSession``
delivers frames only after its jitter buffer; latencies are measured on arrival), the start
and end of our own audio on the wire, an incoming REFER's Refer-To, and the end of the call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
from collections.abc import Callable
from typing import Any, Protocol

from aiortp.codecs import PcmuCodec
from aiortp.dtmf import DtmfSender
from aiortp.packet import RtpPacket
from dialtone.common.ids import new_session_id
from dialtone.media_gateway import sdp
from dialtone.media_gateway.calls import parse_sip_uri
from dialtone.media_gateway.config import SipConfig
from dialtone.media_gateway.media.ports import PortAllocator
from dialtone.media_gateway.media.session import MediaSession
from dialtone.media_gateway.media_types import CallEndReason, DtmfDigit, NegotiatedMedia, PlaybackReport
from dialtone.media_gateway.sip_bridge import SippyBridge
from dialtone.media_gateway.sip_guard import SipGuard
from dialtone.media_gateway.sip_stack import InboundOffer, SipLeg, SipStack
from sippy.CCEvents import CCEventDisconnect

log = logging.getLogger(__name__)

CODECS = ("PCMU",)            # the caller offers G.711 u-law only: every gateway and softphone has it
DTMF_DURATION_MS = 160
RING_TIMEOUT_S = 30.0         # unanswered this long: sippy CANCELs the INVITE
RTP_PORTS = (40000, 50000)    # away from the gateway's default 20000-30000


class CallFailed(Exception):
    """The call was not answered (final status) or could not be set up; ``kind`` names which
    (``refused_<status>``, ``not_answered``), as the caller's runner counts failures."""

    def __init__(self, message: str, kind: str = "not_answered") -> None:
        super().__init__(message)
        self.kind = kind


class CallEvents(Protocol):
    """What a ``PhoneCall`` reports, on the asyncio loop; ``at`` is ``loop.time()``."""

    def on_audio(self, at: float, pcm: bytes, rate: int) -> None: ...      # one received packet, decoded
    def on_said(self, at: float, utterance_id: str, finished: bool) -> None: ...  # our audio on the wire
    def on_refer(self, at: float, refer_to: str) -> None: ...
    def on_ended(self, at: float, reason: str) -> None: ...


class _TappedMediaSession(MediaSession):
    """``MediaSession`` plus a tap on arriving audio packets and an RFC 4733 sender.

    The tap sees every datagram the session accepted, before the jitter buffer, so that
    "first non-silent packet back" is the arrival time on the wire.
    """

    _tap: Callable[[float, bytes], None] | None = None
    symmetric_latching = False
    _decoder = PcmuCodec()

    def _handle_rtp(self, data: bytes, addr: Any) -> None:
        super()._handle_rtp(data, addr)
        media = self._media
        if self._tap is None or media is None or self._closed or len(data) < 12 \
                or (data[1] & 0x7F) != media.payload_type or (addr[0], addr[1]) != self._latched:
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            return
        self._tap(self._loop.time(), self._decoder.decode(packet.payload))

    _next_event_timestamp = random.randrange(1 << 31)

    def send_digit(self, digit: str) -> None:
        """One RFC 4733 event (progress packets, then three end packets) on the session's RTP sender."""
        media, target = self._media, self._latched or self._remote
        if media is None or media.telephone_event_pt is None or target is None or self._sender is None:
            raise RuntimeError("the far end did not accept RFC 4733 telephone-event")
        # receivers tell events apart by their RTP timestamp: give each digit its own
        self._next_event_timestamp = (self._next_event_timestamp + media.clock_rate) & 0xFFFFFFFF
        DtmfSender(self._sender, media.telephone_event_pt, media.clock_rate).send_digit(
            digit, DTMF_DURATION_MS, timestamp=self._next_event_timestamp, addr=target)


class Phone:
    """One SIP stack (UAC) and an RTP port range; ``call()`` places a call."""

    def __init__(self, host: str = "127.0.0.1", rtp_ports: tuple[int, int] = RTP_PORTS) -> None:
        self.host = host
        self._ports = PortAllocator(*rtp_ports)
        self._stack: SipStack | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # The caller dials out; the guard still bounds what may arrive on its socket.
        guard = SipGuard(SipConfig(allowed_networks=["0.0.0.0/0", "::/0"]))
        self._stack = SipStack(SippyBridge(loop), guard, self.host, free_sip_port(self.host), self)
        await self._stack.start()

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.stop()
            self._stack = None

    def on_invite(self, leg: SipLeg, offer: InboundOffer) -> None:  # StackListener: we take no calls
        leg.reject(486, "Busy Here")

    async def call(self, uri: str, events: CallEvents, caller_id: str = "caller",
                   headers: list[tuple[str, str]] | None = None) -> PhoneCall:
        """Dial ``uri``; returns once answered. CallFailed when it is refused or fails."""
        if self._stack is None:
            raise RuntimeError("Phone.start() first")
        user, host, port = parse_sip_uri(uri)
        call = PhoneCall(self._stack, events, uri)
        await call.dial(self._ports, self.host, user, host, port, caller_id, headers or [])
        return call


def free_sip_port(host: str) -> int:
    """A port free for both UDP and TCP: the stack binds its TCP listener on its UDP port's number,
    so letting the kernel pick the UDP port (0) can collide with a TCP socket already there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
        return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


_utterance_ids = itertools.count(1)


class PhoneCall:
    """One placed call (LegListener of its SIP leg). Methods run on the asyncio loop."""

    def __init__(self, stack: SipStack, events: CallEvents, uri: str) -> None:
        self.uri = uri
        self.session_id = new_session_id()
        self.negotiated: NegotiatedMedia | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._stack = stack
        self._events = events
        self._loop = asyncio.get_running_loop()
        self._leg: SipLeg | None = None
        self._media: _TappedMediaSession | None = None
        self._answered: asyncio.Future[None] = self._loop.create_future()
        self._refer_to = ""

    async def dial(self, ports: PortAllocator, bind_host: str, user: str, host: str, port: int,
                   caller_id: str, headers: list[tuple[str, str]]) -> None:
        media = await _TappedMediaSession.open(
            session_id=self.session_id, bind_host=bind_host, port_allocator=ports,
            on_frame=_ignore_frame, on_dtmf=_ignore_digit, on_playback=self._on_playback)
        assert isinstance(media, _TappedMediaSession)
        media._tap = self._on_packet
        self._media = media
        leg = self._stack.new_outbound_leg(host, port, RING_TIMEOUT_S)
        leg.listener = self
        self._leg = leg
        self._watch_refer(leg)
        offer = sdp.build_offer(CODECS, local_host=bind_host, local_port=media.local_port,
                                session_id=random.randint(1, 2**31), version=1)
        try:
            await self._stack.originate_with(leg, host=host, port=port, user=user, caller_id=caller_id,
                                             sdp=offer, extra_headers=headers)
            await self._answered
        except BaseException:
            await self._close_media()
            raise

    def _watch_refer(self, leg: SipLeg) -> None:
        # sippy answers an in-dialog REFER itself (202, then BYE) and hands the Refer-To only to
        # its event callback, inside the Disconnect event; read it there, then pass the event on.
        original = leg.ua.event_cb
        bridge = self._stack.bridge

        def event_cb(event: Any, ua: Any) -> None:
            if isinstance(event, CCEventDisconnect) and event.getData() is not None:
                also = event.getData()
                target = str(also.getUrl()) if hasattr(also, "getUrl") else str(also)
                bridge.to_asyncio(self._on_refer, target)
            original(event, ua)

        leg.ua.event_cb = event_cb

    # --- verbs -------------------------------------------------------------------------------
    def play(self, pcm: bytes, rate: int) -> str:
        """Queue our audio (s16le mono at ``rate``); returns its utterance id (see ``on_said``)."""
        if self._media is None or self.ended.is_set():
            raise RuntimeError("the call is over")
        utterance_id = f"caller-{next(_utterance_ids)}"
        self._media.play(utterance_id, pcm, rate, last=True)
        return utterance_id

    def send_digit(self, digit: str) -> None:
        if self._media is None or self.ended.is_set():
            raise RuntimeError("the call is over")
        self._media.send_digit(digit)

    def hangup(self, reason: str = "caller_hangup") -> None:
        if self._leg is not None and not self.ended.is_set():
            self._leg.hangup()
            # after a REFER sippy is already tearing the call down itself; our BYE only races it
            self._end("transferred" if self._refer_to else reason)

    def stats(self) -> dict[str, float]:
        return self._media.stats() if self._media is not None else {}

    async def close(self) -> None:
        self.hangup()
        await self._close_media()

    async def _close_media(self) -> None:
        if self._media is not None:
            media, self._media = self._media, None
            await media.close()

    # --- media callbacks ---------------------------------------------------------------------
    def _on_packet(self, at: float, pcm: bytes) -> None:
        self._events.on_audio(at, pcm, 8000)

    def _on_playback(self, report: PlaybackReport) -> None:
        self._events.on_said(self._loop.time(), report.utterance_id, report.finished)

    def _on_refer(self, target: str) -> None:
        self._refer_to = target
        self._events.on_refer(self._loop.time(), target)

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        self._events.on_ended(self._loop.time(), reason)
        asyncio.get_running_loop().create_task(self._close_media())

    # --- LegListener -------------------------------------------------------------------------
    def on_connected(self, leg: SipLeg, body: str | None) -> None:
        if self._answered.done():
            return
        try:
            self.negotiated = sdp.accept_answer(sdp.parse_sdp(body or ""), CODECS)
        except sdp.SdpError as exc:
            leg.hangup()
            self._answered.set_exception(CallFailed(f"unusable SDP answer: {exc}"))
            return
        assert self._media is not None
        self._media.start(self.negotiated)
        self._answered.set_result(None)

    def on_ringing(self, leg: SipLeg) -> None:
        return None

    def on_failed(self, leg: SipLeg, status: int, reason: str) -> None:
        if not self._answered.done():
            self._answered.set_exception(CallFailed(f"call refused: {status} {reason}", f"refused_{status}"))
        self._end(f"failed_{status}")

    def on_ended(self, leg: SipLeg, reason: str) -> None:
        if not self._answered.done():
            self._answered.set_exception(CallFailed(f"call ended before it was answered ({reason})"))
        if self._refer_to:
            reason = "transferred"
        elif reason == CallEndReason.REMOTE_HANGUP:
            reason = "bot_hangup"
        self._end(reason)

    def on_reoffer(self, leg: SipLeg, body: str | None) -> None:
        try:
            offer = sdp.parse_sdp(body or "")
            negotiated = sdp.negotiate_answer(offer, CODECS)
        except sdp.SdpError as exc:
            leg.reject_reoffer(exc.sip_status or 488, "Not Acceptable Here")
            return
        if self._media is None:
            leg.reject_reoffer(481, "Call/Transaction Does Not Exist")
            return
        self._media.update(negotiated)
        self.negotiated = negotiated
        leg.answer_reoffer(sdp.build_answer(offer, negotiated, local_host=self._media_host(),
                                            local_port=self._media.local_port, session_id=1, version=2))

    def _media_host(self) -> str:
        return self._stack.global_config.get("_sip_address", "127.0.0.1")

    def on_info(self, leg: SipLeg, content_type: str, body: str) -> None:
        return None

    def on_transfer_outcome(self, leg: SipLeg, status: int, reason: str) -> None:
        return None


def _ignore_frame(pcm: bytes, timestamp_ms: int) -> None:
    return None   # we hear through the packet tap, not the jitter-buffered frames


def _ignore_digit(digit: DtmfDigit) -> None:
    return None
