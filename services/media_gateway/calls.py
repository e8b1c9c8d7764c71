"""Calls: one call model over two transports, and the one registry of them.

Runs on the asyncio loop. ``CallBase`` is what every call does whatever carries its audio:
it forwards frames, DTMF and playback reports up its ``SpeechLink``, acts on what comes down
(PlayAudio, StopPlayback, Hold/ResumePlayback into the transport's one ``PlaybackQueue``;
Transfer and Hangup only once the prompts queued before them were heard), and ends once.
A transport subclass owns only what differs: ``Call`` here is a SIP leg + an RTP
``MediaSession`` (SDP offer/answer, re-INVITE, REFER for a transfer); ``webrtc.call.WebRtcCall``
is a browser's aiortc leg (a transfer is refused, events go to the page). ``CallRegistry``
holds every call of the process, so both control APIs list and hang up all of them;
``CallManager`` adds SIP's INVITEs and ``originate``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from dialtone.common.grpc_channel import balanced_target
from dialtone.common.ids import new_session_id
from dialtone.common.logging import RateLimitedLog, session_context
from dialtone.common.metrics import counter, gauge, histogram
from dialtone.media_gateway import sdp
from dialtone.media_gateway.call_rules import (
    SessionIntervalTooSmall,
    parse_dtmf_info,
    parse_sip_uri,
    session_timer,
    sip_uri_transport,
)
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.media_types import (
    CallEndReason,
    CallState,
    Direction,
    DtmfDigit,
    DtmfMode,
    NegotiatedMedia,
    PlaybackReport,
    SrtpPolicy,
)
from dialtone.media_gateway.sip_stack import InboundOffer, SipLeg, SipStack
from dialtone.media_gateway.speech_link import ChannelPool, SpeechLink
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb

log = logging.getLogger(__name__)
_DOWNLINK_LOG = RateLimitedLog(log, 10.0)

ACTIVE_CALLS = gauge("media_active_calls", "calls in progress, SIP and WebRTC")
CALL_SETUPS = counter("media_call_setups_total", "call setups by final response code", ["direction", "code"])
DTMF_DIGITS = counter("media_dtmf_total", "DTMF digits sent to the speech side, by mode", ["mode"])
SETUP_SECONDS = histogram("media_call_setup_seconds", "INVITE received to 200 OK sent")
TRANSFERS = counter("media_transfers_total", "blind transfers by outcome", ["outcome"])
_PLAYBACK_BEFORE_VERB_S = 30.0   # longest a dialog's transfer/hangup waits for its prompt to finish playing

_DTMF_SOURCE = {DtmfMode.RFC4733: common_pb2.DTMF_SOURCE_RFC4733, DtmfMode.SIP_INFO: common_pb2.DTMF_SOURCE_SIP_INFO,
                DtmfMode.INBAND: common_pb2.DTMF_SOURCE_INBAND, DtmfMode.WEBRTC: common_pb2.DTMF_SOURCE_WEBRTC}


class Media(Protocol):
    """What a call needs from ``media.session.MediaSession``."""

    local_port: int

    @property
    def playback_pending(self) -> bool: ...
    def start(self, media: NegotiatedMedia) -> None: ...
    def update(self, media: NegotiatedMedia) -> None: ...
    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None: ...
    def stop_playback(self, utterance_id: str | None = None) -> None: ...
    def hold_playback(self, max_ms: int = 0) -> None: ...
    def resume_playback(self) -> None: ...
    def stats(self) -> dict[str, float]: ...
    async def close(self) -> None: ...


MediaFactory = Callable[..., Awaitable[Media]]   # MediaSession.open(session_id=, bind_host=, on_frame=, ...)


class Playout(Protocol):
    """What ``CallBase`` needs of its transport's media: the RTP ``MediaSession`` or the ``WebRtcLeg``."""

    @property
    def playback_pending(self) -> bool: ...
    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None: ...
    def stop_playback(self, utterance_id: str | None = None) -> None: ...
    def hold_playback(self, max_ms: int = 0) -> None: ...
    def resume_playback(self) -> None: ...


class Link(Protocol):
    """What a call needs from ``speech_link.SpeechLink``."""

    def start(self) -> None: ...
    def send_audio(self, pcm: bytes, timestamp_ms: int) -> None: ...
    def send(self, **payload: object) -> None: ...
    async def close(self, reason: str, timeout: float = 2.0) -> None: ...


class CallBase(abc.ABC):
    """What every call does, whatever its transport (see module docstring). All methods run on the
    asyncio loop. A transport subclass provides ``playout``, ``call_id``, ``codec``, ``transfer``
    and ``hangup``, and may observe more through ``_on_notice``."""

    channel = common_pb2.CHANNEL_SIP

    def __init__(self, session_id: str, direction: int, caller: str, callee: str,
                 headers: tuple[tuple[str, str], ...], dialog: str) -> None:
        self.session_id = session_id
        self.direction = direction
        self.caller, self.callee, self.headers, self.dialog = caller, callee, headers, dialog
        self.state = CallState.RINGING
        self.started_monotonic = time.monotonic()
        self.started_unix_ms = int(time.time() * 1000)
        self.link: Link | None = None
        self.end_reason = ""
        self.ended = asyncio.Event()
        self._after_playback: list[Callable[[], None]] = []   # dialog verbs waiting for the prompt to end
        self._after_playback_timer: asyncio.TimerHandle | None = None

    # --- what the transport provides ---------------------------------------------------------
    @property
    @abc.abstractmethod
    def playout(self) -> Playout | None:
        """The transport's."""

    @property
    @abc.abstractmethod
    def call_id(self) -> str:
        """The transport's."""

    @property
    @abc.abstractmethod
    def codec(self) -> str:
        """The transport's."""

    @abc.abstractmethod
    def transfer(self, target_uri: str) -> None:
        """The transport's."""

    @abc.abstractmethod
    def hangup(self, reason: str = CallEndReason.DIALOG_HANGUP) -> None:
        """The transport's."""

    def _on_notice(self, notice: common_pb2.CallNotice) -> None:
        """What the dialog says about itself (transcripts, state); only a browser shows it."""
        return None

    # --- what every call shares --------------------------------------------------------------
    def _on_speech_refused(self, code: str) -> None:
        """The speech gateway refused this call's stream: nobody will listen, so the call ends."""
        if not self.ended.is_set():
            self.hangup(CallEndReason.SPEECH_REFUSED)

    def now_ms(self) -> int:
        return int((time.monotonic() - self.started_monotonic) * 1000)

    def call_info(self) -> common_pb2.CallInfo:
        return common_pb2.CallInfo(
            caller=self.caller, callee=self.callee, dialog=self.dialog, call_id=self.call_id,
            channel=self.channel, direction=self.direction,
            headers=[common_pb2.SipHeader(name=name, value=value) for name, value in self.headers])

    def view(self) -> CallView:
        return CallView(self.session_id, self.call_id, self.caller, self.callee, self.dialog,
                        "outbound" if self.direction == common_pb2.DIRECTION_OUTBOUND else "inbound",
                        self.state.value, self.codec, self.started_unix_ms, self.now_ms(),
                        "webrtc" if self.channel == common_pb2.CHANNEL_WEBRTC else "sip")

    # uplink: media callbacks
    def _on_frame(self, pcm: bytes, timestamp_ms: int) -> None:
        if self.link is not None:
            self.link.send_audio(pcm, timestamp_ms)

    def _on_dtmf(self, digit: DtmfDigit) -> None:
        DTMF_DIGITS.labels(digit.mode.value).inc()
        if self.link is not None:
            self.link.send(dtmf=common_pb2.Dtmf(digit=digit.digit, duration_ms=digit.duration_ms,
                                                source=_DTMF_SOURCE[digit.mode], timestamp_ms=digit.timestamp_ms))

    def _on_playback(self, report: PlaybackReport) -> None:
        if report.finished and self._after_playback and not self._playback_pending():
            self._run_after_playback()
        if self.link is None:
            return
        if not report.finished:
            self.link.send(playback_started=common_pb2.PlaybackStarted(
                utterance_id=report.utterance_id, timestamp_ms=report.timestamp_ms))
        else:
            self.link.send(playback_finished=common_pb2.PlaybackFinished(
                utterance_id=report.utterance_id, played_ms=report.played_ms, total_ms=report.total_ms,
                interrupted=report.interrupted, timestamp_ms=report.timestamp_ms))

    # downlink: what the speech gateway asks
    def _on_downlink(self, down: spb.MediaDownlink) -> None:
        kind = down.WhichOneof("payload")
        playout = self.playout
        if kind == "play_audio" and playout is not None:
            play = down.play_audio
            try:
                playout.play(play.utterance_id, play.pcm, play.sample_rate or 16000, play.last)
            except (ValueError, RuntimeError) as exc:   # the speech side sent audio we cannot play
                _DOWNLINK_LOG.warning("play_audio", "PlayAudio for %.40r refused: %s", play.utterance_id, exc)
        elif kind == "stop_playback" and playout is not None:
            playout.stop_playback(down.stop_playback.utterance_id or None)
        elif kind == "hold_playback" and playout is not None:
            playout.hold_playback(down.hold_playback.max_ms)
        elif kind == "resume_playback" and playout is not None:
            playout.resume_playback()
        elif kind == "notice":
            self._on_notice(down.notice)
        elif kind == "transfer":
            target = down.transfer.target_uri
            self._when_played(lambda: self.transfer(target))
        elif kind == "hangup":
            reason = down.hangup.reason or CallEndReason.DIALOG_HANGUP
            self._when_played(lambda: self._dialog_hangup(reason))

    def _dialog_hangup(self, reason: str) -> None:
        self.hangup(reason)

    # A dialog's "say goodbye, then hang up" must be heard whole, as on any IVR: its transfer or hangup
    # waits until the prompts queued before it have played (bounded, so a stuck prompt cannot hold a call).
    def _playback_pending(self) -> bool:
        playout = self.playout
        return playout is not None and playout.playback_pending

    def _when_played(self, verb: Callable[[], None]) -> None:
        if not self._playback_pending() and not self._after_playback:
            verb()
            return
        self._after_playback.append(verb)
        if self._after_playback_timer is None:
            self._after_playback_timer = asyncio.get_running_loop().call_later(
                _PLAYBACK_BEFORE_VERB_S, self._run_after_playback)

    def _run_after_playback(self) -> None:
        if self._after_playback_timer is not None:
            self._after_playback_timer.cancel()
            self._after_playback_timer = None
        verbs, self._after_playback = self._after_playback, []
        for verb in verbs:
            if not self.ended.is_set():
                verb()

    def _forget_verbs(self) -> None:
        """The call is ending: verbs still waiting for a prompt will never run."""
        if self._after_playback_timer is not None:
            self._after_playback_timer.cancel()
            self._after_playback_timer = None
        self._after_playback.clear()


class Call(CallBase):
    """A SIP call: one SIP leg and one RTP ``MediaSession``."""

    def __init__(self, manager: CallManager, leg: SipLeg, direction: int, caller: str, callee: str,
                 headers: tuple[tuple[str, str], ...], dialog: str) -> None:
        super().__init__(new_session_id(), direction, caller, callee, headers, dialog)
        self.manager = manager
        self.leg = leg
        self.negotiated: NegotiatedMedia | None = None
        self.media: Media | None = None
        self._remote_offer: sdp.SessionDescription | None = None
        self._sdp_session = random.randint(1, 2**31)
        self._sdp_version = 1
        self._transfer_target: str | None = None
        self._transfer_timer: asyncio.TimerHandle | None = None
        self._secure_signalling = False     # the INVITE came over TLS: SDES keys may be taken
        self._offered_srtp_key: bytes | None = None   # the key in an offer of ours awaiting its answer
        self._media_running = False
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        leg.listener = self

    @property
    def playout(self) -> Playout | None:
        return self.media

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    @property
    def codec(self) -> str:
        return self.negotiated.codec if self.negotiated else ""

    async def _open_media(self) -> Media:
        return await self.manager.media_factory(
            session_id=self.session_id, bind_host=self.manager.config.rtp.host,
            on_frame=self._on_frame, on_dtmf=self._on_dtmf, on_playback=self._on_playback)

    def _local_host(self) -> str:
        """The address in our SDP c= line: never a wildcard (c=0.0.0.0 would put the peer on hold)."""
        config = self.manager.config
        for host in (config.sip.advertised_host, config.rtp.host, config.sip.host):
            if host and host not in ("0.0.0.0", "::"):
                return host
        return socket.gethostbyname(socket.gethostname())

    def _answer_sdp(self, offer: sdp.SessionDescription, media: NegotiatedMedia) -> str:
        assert self.media is not None
        self._sdp_version += 1
        return sdp.build_answer(offer, media, local_host=self._local_host(), local_port=self.media.local_port,
                                session_id=self._sdp_session, version=self._sdp_version)

    def _start_link(self) -> None:
        addresses = self.manager.speech_targets
        self.link = SpeechLink(addresses, self.session_id, self.call_info(), self._on_downlink,
                               self.manager.channels, on_refused=self._on_speech_refused)
        self.link.start()
        self._watchdog = asyncio.create_task(self._watch_speech(self.link), name=f"speech-watch-{self.session_id}")

    async def _watch_speech(self, link: SpeechLink) -> None:
        """A call nobody listens to is hung up: no speech gateway reachable within the timeout."""
        timeout = self.manager.config.speech_connect_timeout_s
        try:
            await asyncio.wait_for(link.connected.wait(), timeout)
        except TimeoutError:
            if not self.ended.is_set():
                log.warning("call %s: no speech gateway reachable within %.0f s; hanging up", self.leg.call_id,
                            timeout)
                self.hangup(CallEndReason.SPEECH_UNAVAILABLE)

    # --- inbound setup -----------------------------------------------------------------------
    def _negotiate(self, parsed: sdp.SessionDescription) -> NegotiatedMedia:
        """The answer to an offer (INVITE or re-INVITE); our SRTP key is kept across re-INVITEs."""
        current = self.negotiated.srtp if self.negotiated is not None else None
        return sdp.negotiate_answer(parsed, self.manager.codecs, srtp=self.manager.srtp_policy,
                                    secure_signalling=self._secure_signalling,
                                    local_key=current.local_key if current else os.urandom(sdp.SRTP_KEY_BYTES))

    def start_inbound(self, offer: InboundOffer) -> None:
        self._secure_signalling = offer.transport == "tls"
        self._task = asyncio.create_task(self._setup_inbound(offer), name=f"call-setup-{self.session_id}")

    async def _setup_inbound(self, offer: InboundOffer) -> None:
        with session_context(self.session_id):
            received = time.monotonic()
            if offer.sdp is None:
                await self._setup_late_offer(received)
                return
            try:
                parsed = sdp.parse_sdp(offer.sdp)
                negotiated = self._negotiate(parsed)
            except sdp.SdpError as exc:
                reason = "Not Acceptable Here" if exc.sip_status == 488 else "Bad Request"
                self._fail_setup(exc.sip_status, reason, str(exc))
                return
            try:
                timer = session_timer(offer.headers, self.manager.config.sip.min_session_expires_s)
            except SessionIntervalTooSmall as exc:
                self._fail_setup(422, "Session Interval Too Small", str(exc),
                                 [("Min-SE", str(self.manager.config.sip.min_session_expires_s))])
                return
            if not await self._open_media_or_refuse():
                return
            self._remote_offer = parsed
            self.negotiated = negotiated
            answer = self._answer_sdp(parsed, negotiated)
            if not await self._ring():
                return
            # RFC 3264 §6: an answerer must take media as soon as its answer is sent. A caller may talk
            # or key a digit the moment our 200 arrives, and its ACK reaches us through the SIP thread
            # after those first packets: starting on the ACK lost them.
            if not self._run_media():
                self._fail_setup(488, "Not Acceptable Here", f"media cannot run {negotiated.codec}")
                return
            if timer is None:
                self.leg.answer(answer)
            else:
                interval, refresher = timer
                self.leg.answer(answer, [("Session-Expires", f"{interval};refresher={refresher}"),
                                         ("Require", "timer")],
                                refresh_every_s=interval / 2 if refresher == "uas" else 0.0)
            CALL_SETUPS.labels("inbound", "200").inc()
            SETUP_SECONDS.observe(time.monotonic() - received)
            log.info("answered call %s with %s/%d", self.leg.call_id, negotiated.codec, negotiated.clock_rate)

    async def _setup_late_offer(self, received: float) -> None:
        """INVITE without SDP (delayed offer, RFC 3261 §13.2.1): we offer in the 200, the answer comes in the ACK."""
        if self.manager.srtp_policy is SrtpPolicy.REQUIRED:
            if not self._secure_signalling:
                self._fail_setup(488, "Not Acceptable Here", "SRTP is required and SDES keys only travel over TLS")
                return
            self._offered_srtp_key = os.urandom(sdp.SRTP_KEY_BYTES)
        if not await self._open_media_or_refuse():
            return
        self._sdp_version += 1
        our_offer = sdp.build_offer(self.manager.codecs, local_host=self._local_host(),
                                    local_port=self.media.local_port, session_id=self._sdp_session,
                                    version=self._sdp_version, srtp_key=self._offered_srtp_key)
        if not await self._ring():
            return
        self.leg.answer(our_offer)
        CALL_SETUPS.labels("inbound", "200").inc()
        SETUP_SECONDS.observe(time.monotonic() - received)

    async def _open_media_or_refuse(self) -> bool:
        """The call's RTP session; False when there is none (503 sent) or the caller already left."""
        try:
            self.media = await self._open_media()
        except Exception as exc:  # noqa: BLE001 - no media, no call: tell the caller why
            log.exception("could not open media for call %s", self.leg.call_id)
            self._fail_setup(503, "Service Unavailable", f"media: {exc}")
            return False
        if self.ended.is_set():
            await self._cleanup()
            return False
        return True

    async def _ring(self) -> bool:
        """Open the speech stream; with ``sip.ring_ms`` send 180 and wait that long. False when the caller
        hung up meanwhile. Answering at once sends no 180 (as Asterisk's Answer() and FreeSWITCH's answer
        do): sippy's 100 Trying already stops the INVITE's retransmissions, and a 180 the caller would
        replace a millisecond later with the 200 only costs a SIP message per call."""
        self._start_link()
        ring_s = self.manager.config.sip.ring_ms / 1000
        if ring_s > 0:
            self.leg.ring()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ended.wait(), ring_s)
        return not self.ended.is_set()

    def _fail_setup(self, status: int, reason: str, detail: str,
                    headers: list[tuple[str, str]] | None = None) -> None:
        log.info("refused call %s: %d %s", self.leg.call_id, status, detail)
        CALL_SETUPS.labels("outbound" if self.direction == common_pb2.DIRECTION_OUTBOUND else "inbound",
                            str(status)).inc()
        self.leg.reject(status, reason, headers)
        self._finish(CallEndReason.REJECTED)

    # --- outbound setup ----------------------------------------------------------------------
    async def setup_outbound(self, host: str, port: int, user: str, caller_id: str,
                             extra_headers: list[tuple[str, str]], transport: str = "udp") -> None:
        self._secure_signalling = transport == "tls"
        if self._secure_signalling and self.manager.srtp_policy is not SrtpPolicy.OFF:
            # over TLS with SRTP on (optional or required) we offer it; a plain answer is then refused
            self._offered_srtp_key = os.urandom(sdp.SRTP_KEY_BYTES)
        self.media = await self._open_media()
        offer = sdp.build_offer(self.manager.codecs, local_host=self._local_host(), local_port=self.media.local_port,
                                session_id=self._sdp_session, version=self._sdp_version,
                                srtp_key=self._offered_srtp_key)
        await self.manager.stack.originate_with(self.leg, host=host, port=port, user=user, caller_id=caller_id,
                                                sdp=offer, extra_headers=extra_headers)

    # --- LegListener -------------------------------------------------------------------------
    def on_ringing(self, leg: SipLeg) -> None:
        self.state = CallState.RINGING

    def on_connected(self, leg: SipLeg, body: str | None) -> None:
        with session_context(self.session_id):
            if self.direction == common_pb2.DIRECTION_OUTBOUND or self.negotiated is None:
                # Our offer went out (Originate, or a late-offer INVITE): the answer is in the 200 / the ACK.
                try:
                    self.negotiated = sdp.accept_answer(sdp.parse_sdp(body or ""), self.manager.codecs,
                                                        srtp_key=self._offered_srtp_key)
                except sdp.SdpError as exc:
                    log.warning("outbound call %s: unusable SDP answer (%s); hanging up", leg.call_id, exc)
                    self.hangup(CallEndReason.BAD_ANSWER)
                    return
                if self.direction == common_pb2.DIRECTION_OUTBOUND:
                    CALL_SETUPS.labels("outbound", "200").inc()
                    self._start_link()
            self.state = CallState.ACTIVE
            if not self._run_media():
                self.hangup(CallEndReason.MEDIA_ERROR)

    def _run_media(self) -> bool:
        """Start the RTP session on the negotiated stream once (nothing to do before both exist);
        False when it cannot run."""
        if self._media_running or self.media is None or self.negotiated is None:
            return True
        try:
            self.media.start(self.negotiated)
        except (ValueError, RuntimeError) as exc:
            log.error("call %s: media cannot run %s (%s)", self.leg.call_id, self.negotiated.codec, exc)
            return False
        self._media_running = True
        return True

    def on_failed(self, leg: SipLeg, status: int, reason: str) -> None:
        if self.direction == common_pb2.DIRECTION_OUTBOUND and self.state is CallState.RINGING:
            CALL_SETUPS.labels("outbound", str(status)).inc()
        self._finish(f"failed_{status}")

    def on_ended(self, leg: SipLeg, reason: str) -> None:
        if reason == CallEndReason.CANCELLED:
            CALL_SETUPS.labels("inbound", "487").inc()
        self._finish(CallEndReason.CALLER_HANGUP if reason == CallEndReason.REMOTE_HANGUP else reason)

    def on_reoffer(self, leg: SipLeg, body: str | None) -> None:
        with session_context(self.session_id):
            try:
                parsed = sdp.parse_sdp(body or "")
                negotiated = self._negotiate(parsed)
            except sdp.SdpError as exc:
                log.info("re-INVITE refused: %s", exc)
                leg.reject_reoffer(exc.sip_status, "Not Acceptable Here" if exc.sip_status == 488 else "Bad Request")
                return
            if self.media is not None:
                try:
                    self.media.update(negotiated)
                except (ValueError, RuntimeError) as exc:
                    log.info("re-INVITE refused, media cannot run it: %s", exc)
                    leg.reject_reoffer(488, "Not Acceptable Here")
                    return
            self._remote_offer = parsed
            self.negotiated = negotiated
            self.state = CallState.ACTIVE if negotiated.direction is Direction.SENDRECV else CallState.HELD
            leg.answer_reoffer(self._answer_sdp(parsed, negotiated))
            log.info("re-INVITE answered %s", negotiated.direction.value)

    def on_info(self, leg: SipLeg, content_type: str, body: str) -> None:
        parsed = parse_dtmf_info(content_type, body)
        if parsed is not None:
            self._on_dtmf(DtmfDigit(parsed[0], parsed[1], DtmfMode.SIP_INFO, self.now_ms()))

    def on_transfer_outcome(self, leg: SipLeg, status: int, reason: str) -> None:
        if self._transfer_target is None:
            return
        target, self._transfer_target = self._transfer_target, None
        if self._transfer_timer is not None:
            self._transfer_timer.cancel()
        ok = 200 <= status < 300
        TRANSFERS.labels("ok" if ok else "failed").inc()
        if self.link is not None:
            self.link.send(transfer_result=common_pb2.TransferResult(target_uri=target, sip_status=status, ok=ok,
                                                                     reason=reason))
        if ok:
            self.hangup(CallEndReason.TRANSFER)

    # --- verbs -------------------------------------------------------------------------------
    def transfer(self, target_uri: str) -> None:
        try:
            parse_sip_uri(target_uri)
        except ValueError as exc:
            if self.link is not None:
                self.link.send(transfer_result=common_pb2.TransferResult(
                    target_uri=target_uri, sip_status=0, ok=False, reason=str(exc)))
            return
        self._transfer_target = target_uri
        loop = asyncio.get_running_loop()
        self._transfer_timer = loop.call_later(self.manager.config.sip.transfer_timeout_s,
                                               self.on_transfer_outcome, self.leg, 408, "no NOTIFY in time")
        self.leg.refer(target_uri)

    def hangup(self, reason: str = CallEndReason.DIALOG_HANGUP) -> None:
        if self.ended.is_set():
            return
        self.state = CallState.ENDING
        self.leg.hangup()
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self._forget_verbs()
        self.end_reason = reason
        self.ended.set()
        asyncio.get_running_loop().create_task(self._cleanup(), name=f"call-end-{self.session_id}")

    async def _cleanup(self) -> None:
        with session_context(self.session_id):
            if self._transfer_timer is not None:
                self._transfer_timer.cancel()
            if self._watchdog is not None and self._watchdog is not asyncio.current_task():
                self._watchdog.cancel()
            if self.media is not None:
                media, self.media = self.media, None
                try:
                    stats = media.stats()
                    log.info("call %s media summary: %s", self.leg.call_id,
                             ", ".join(f"{key}={value:g}" for key, value in sorted(stats.items())),
                             extra={"event": "call_media_summary", **{f"rtp_{k}": v for k, v in stats.items()}})
                except Exception:  # noqa: BLE001 - a summary must not stop the clean-up
                    log.debug("no media summary", exc_info=True)
                try:
                    await media.close()
                except Exception:  # noqa: BLE001 - closing must go on with the link
                    log.exception("closing media failed")
            if self.link is not None:
                await self.link.close(self.end_reason)
            self.manager.remove(self)
            log.info("call %s ended: %s", self.leg.call_id, self.end_reason)


def speech_targets(speech_gateway_address: str) -> list[str]:
    """The speech gateway targets a call's stream may use, in failover order: one balanced target
    (``common.grpc_channel.balanced_target``: every call goes to the next replica) when the list is IP
    addresses or one name; otherwise each name is its own target, tried in turn when a stream breaks."""
    try:
        return [balanced_target(speech_gateway_address)]
    except ValueError:
        return [item.strip() for item in speech_gateway_address.split(",") if item.strip()]


class CallRegistry:
    """Every call of this process, SIP and WebRTC alike: what the control APIs list and hang up, what
    draining waits for, and the one speech channel pool every call's stream uses."""

    def __init__(self) -> None:
        self.calls: dict[str, CallBase] = {}
        self.channels = ChannelPool()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, call: CallBase) -> None:
        self.calls[call.session_id] = call
        ACTIVE_CALLS.set(len(self.calls))
        self._idle.clear()

    def remove(self, call: CallBase) -> None:
        if self.calls.get(call.session_id) is call:
            del self.calls[call.session_id]
        ACTIVE_CALLS.set(len(self.calls))
        if not self.calls:
            self._idle.set()

    def count(self, kind: type[CallBase]) -> int:
        return sum(1 for call in self.calls.values() if isinstance(call, kind))

    def hangup(self, session_id: str, reason: str = CallEndReason.OPERATOR_HANGUP) -> bool:
        call = self.calls.get(session_id)
        if call is None or call.ended.is_set():
            return False
        call.hangup(reason)
        return True

    async def wait_idle(self) -> None:
        await self._idle.wait()


class CallManager(CallRegistry):
    """The registry, plus SIP's side: INVITEs become calls, ``originate`` places one. Implements
    ``StackListener``."""

    def __init__(self, config: MediaGatewayConfig, media_factory: MediaFactory) -> None:
        super().__init__()
        self.config = config
        self.media_factory = media_factory
        self.codecs = tuple(config.sip.codecs)
        self.srtp_policy = SrtpPolicy(config.sip.srtp)
        self.speech_targets = speech_targets(config.speech_gateway_address)
        self.stack: Any = None

    def dialog_for(self, callee: str) -> str:
        return self.config.routing.by_callee.get(callee, self.config.routing.default_dialog)

    def on_invite(self, leg: SipLeg, offer: InboundOffer) -> None:
        call = Call(self, leg, common_pb2.DIRECTION_INBOUND, offer.caller, offer.callee, offer.headers,
                    self.dialog_for(offer.callee))
        self.add(call)
        call.start_inbound(offer)

    async def originate(self, to_uri: str, dialog: str, caller_id: str, headers: list[tuple[str, str]],
                        ring_timeout_s: float = 0.0) -> Call:
        user, host, port = parse_sip_uri(to_uri)
        transport = sip_uri_transport(to_uri)
        assert isinstance(self.stack, SipStack)
        if transport == "tls" and not self.stack.speaks_tls:
            raise ValueError(f"{to_uri[:80]}: SIP over TLS needs sip.tls_cert_file and sip.tls_key_file")
        if self.srtp_policy is SrtpPolicy.REQUIRED and transport != "tls":
            raise ValueError(f"{to_uri[:80]}: sip.srtp is required and SDES keys only travel over TLS "
                             "(dial sips: or ;transport=tls)")
        registration = self.config.registration
        credentials = (registration.user, registration.password) if registration.user and registration.password \
            else None
        leg = self.stack.new_outbound_leg(host, port, ring_timeout_s or self.config.sip.ring_timeout_s, credentials,
                                          transport)
        call = Call(self, leg, common_pb2.DIRECTION_OUTBOUND, f"sip:{caller_id or 'dialtone'}@{self.config.sip.host}",
                    user, tuple(headers), dialog or self.dialog_for(user))
        self.add(call)
        try:
            await call.setup_outbound(host, port, user, caller_id, headers, transport)
        except Exception:
            call._finish("setup_failed")
            raise
        return call


@dataclasses.dataclass(frozen=True)
class CallView:
    """What the control APIs show of a call (``CallBase.view``)."""

    session_id: str
    call_id: str
    caller: str
    callee: str
    dialog: str
    direction: str
    state: str
    codec: str
    started_unix_ms: int
    duration_ms: int
    channel: str = "sip"    # "sip" | "webrtc"

    @classmethod
    def of(cls, call: CallBase) -> CallView:
        return call.view()
