"""One browser call: the shared call (``calls.CallBase``) over a ``WebRtcLeg``, with its ``LiveChannel``.

Everything a SIP call does with its speech stream is ``CallBase``'s and so the same here:
frames, DTMF and playback reports go up; PlayAudio, Stop/Hold/ResumePlayback come down into
the one ``PlaybackQueue``; a dialog's hangup waits until its goodbye was heard. What differs:
CallStart says ``CHANNEL_WEBRTC``; a Transfer can't be done from a browser and is answered
with a failed ``TransferResult``; every ``CallNotice`` (transcripts, what the dialog said,
its state) and the leg's own events go to the page's live panel; the call's lifetime follows
ICE/DTLS (connect timeout, the browser going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from dialtone.common.logging import session_context
from dialtone.common.metrics import counter, gauge
from dialtone.media_gateway.calls import CallBase, Link
from dialtone.media_gateway.media_types import CallEndReason, CallState, DtmfDigit, PlaybackReport
from dialtone.media_gateway.webrtc.config import IceServerConfig
from dialtone.media_gateway.webrtc.leg import WebRtcLeg
from dialtone.media_gateway.webrtc.live import LiveChannel
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb

log = logging.getLogger(__name__)

ACTIVE_WEBRTC_CALLS = gauge("webrtc_active_calls", "browser calls in progress")
WEBRTC_CALL_ENDS = counter("webrtc_call_ends_total", "browser calls ended, by reason", ["reason"])
# a dialog may hang up with any reason: the metric counts the others as "other"
_END_REASONS = frozenset({
    CallEndReason.CALLER_HANGUP, CallEndReason.DIALOG_HANGUP, CallEndReason.MEDIA_FAILED, CallEndReason.CONNECT_TIMEOUT,
    CallEndReason.SPEECH_UNAVAILABLE, CallEndReason.SHUTDOWN, CallEndReason.OPERATOR_HANGUP})


class LinkFactory(Protocol):
    """Opens a call's link (``wiring.SpeechLinks``); ``close()`` releases what the links share."""

    def __call__(self, session_id: str, call_info: common_pb2.CallInfo,
                 on_downlink: Callable[[spb.MediaDownlink], None],
                 on_refused: Callable[[str], None] | None = None) -> Link: ...
    async def close(self) -> None: ...


class WebRtcCall(CallBase):
    """A browser call: the shared call (``calls.CallBase``) over a ``WebRtcLeg``."""

    channel = common_pb2.CHANNEL_WEBRTC

    def __init__(self, session_id: str, dialog: str, *, link_factory: LinkFactory,
                 ice_servers: Sequence[IceServerConfig] = (), connect_timeout_s: float = 20.0,
                 user_agent: str = "", on_ended: Callable[[WebRtcCall], None] | None = None) -> None:
        self.user_agent = user_agent[:200]
        headers = (("User-Agent", self.user_agent),) if self.user_agent else ()
        super().__init__(session_id, common_pb2.DIRECTION_INBOUND, "webrtc", dialog, headers, dialog)
        self.live = LiveChannel()
        self._link_factory = link_factory
        self._connect_timeout_s = connect_timeout_s
        self._on_ended = on_ended
        self._watcher: asyncio.Task[None] | None = None
        self._first_in = self._first_out = False
        self._finishing = False
        self._connected = asyncio.Event()
        self.leg = WebRtcLeg(session_id, on_frame=self._on_frame, on_dtmf=self._on_dtmf,
                             on_playback=self._on_playback, on_state=self._on_leg_state, ice_servers=ice_servers)

    @property
    def playout(self) -> WebRtcLeg | None:
        return None if self.leg.closed else self.leg

    @property
    def call_id(self) -> str:
        return self.session_id

    @property
    def codec(self) -> str:
        return self.leg.codec or ""

    def now_ms(self) -> int:
        return self.leg.now_ms()

    # --- setup and teardown ------------------------------------------------------------------

    async def start(self, offer_sdp: object) -> str:
        """Answer the offer and open the speech stream; ``BadOffer`` propagates with nothing left open."""
        with session_context(self.session_id):
            received = self.leg.now_ms()
            answer = await self.leg.accept(offer_sdp)
            self._publish("timing", name="answer_ms", ms=self.leg.now_ms() - received)
            self._publish("state", state="connecting", codec=self.leg.codec)
            try:
                self.link = self._link_factory(self.session_id, self.call_info(), self._on_downlink,
                                               self._on_speech_refused)
                self.link.start()
            except BaseException:
                await self.leg.close()  # no browser call without its speech stream
                raise
            ACTIVE_WEBRTC_CALLS.inc()
            self._watcher = asyncio.create_task(self._watch(), name=f"webrtc-call-{self.session_id}")
            log.info("webrtc call started (dialog %r)", self.dialog)
            return answer

    def hangup(self, reason: str = CallEndReason.CALLER_HANGUP) -> None:
        """End the call soon (from the page's Hang up, the dialog, or the operator)."""
        if self._watcher is not None and not self._finishing:
            self.end_reason = self.end_reason or reason
            self._watcher.cancel()

    async def wait_ended(self) -> None:
        await self.ended.wait()

    async def _watch(self) -> None:
        """Own the call's lifetime: until the leg ends, connect times out, or hangup() cancels us."""
        reason: str = CallEndReason.CALLER_HANGUP
        try:
            try:
                await asyncio.wait_for(self._wait_connected(), self._connect_timeout_s)
            except TimeoutError:
                reason = CallEndReason.CONNECT_TIMEOUT
            else:
                await self.leg.wait_ended()
                closed = self.leg.connection_state == "closed"
                reason = CallEndReason.CALLER_HANGUP if closed else CallEndReason.MEDIA_FAILED
        except asyncio.CancelledError:
            reason = self.end_reason or CallEndReason.CALLER_HANGUP
            await self._finish(reason)
            raise
        await self._finish(reason)

    async def _wait_connected(self) -> None:
        """Until ICE + DTLS are up, or the leg ended first (then the caller's wait_ended returns at once)."""
        connected = asyncio.ensure_future(self._connected.wait())
        gone = asyncio.ensure_future(self.leg.wait_ended())
        try:
            await asyncio.wait({connected, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (connected, gone):
                waiter.cancel()
            await asyncio.gather(connected, gone, return_exceptions=True)

    async def _finish(self, reason: str) -> None:
        if self._finishing:
            return
        self._finishing = True
        self._forget_verbs()
        with session_context(self.session_id):
            self.end_reason = reason
            self.state = CallState.ENDING
            await self.leg.close()
            if self.link is not None:
                await self.link.close(reason)
                ACTIVE_WEBRTC_CALLS.dec()
            WEBRTC_CALL_ENDS.labels(reason if reason in _END_REASONS else "other").inc()
            self._publish("ended", reason=reason, duration_ms=self.leg.now_ms())
            self.live.close()
            self.ended.set()
            log.info("webrtc call ended: %s", reason)
            if self._on_ended is not None:
                self._on_ended(self)

    async def close(self, reason: str = CallEndReason.SHUTDOWN) -> None:
        """Hang up and wait until everything is released (bounded)."""
        self.hangup(reason)
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._watcher), 5.0)
        elif not self.ended.is_set():
            await self._finish(reason)

    # --- leg callbacks -----------------------------------------------------------------------

    def _on_leg_state(self, state: str) -> None:
        if state == "connected" and self.state is CallState.RINGING:
            self.state = CallState.ACTIVE
            self._connected.set()
            self._publish("timing", name="connected_ms", ms=self.leg.now_ms())
        if not state.startswith("ice.") or state in ("ice.checking", "ice.completed", "ice.failed"):
            self._publish("state", state=state)

    def _on_frame(self, pcm: bytes, timestamp_ms: int) -> None:
        if not self._first_in:
            self._first_in = True
            self._publish("timing", name="first_audio_in_ms", ms=timestamp_ms)
        super()._on_frame(pcm, timestamp_ms)

    def _on_dtmf(self, digit: DtmfDigit) -> None:
        self._publish("dtmf", digit=digit.digit, duration_ms=digit.duration_ms)
        super()._on_dtmf(digit)

    def _on_playback(self, report: PlaybackReport) -> None:
        if not report.finished and not self._first_out:
            self._first_out = True
            self._publish("timing", name="first_audio_out_ms", ms=report.timestamp_ms)
        self._publish("playback", utterance_id=report.utterance_id, finished=report.finished,
                      played_ms=report.played_ms, total_ms=report.total_ms, interrupted=report.interrupted)
        super()._on_playback(report)

    # --- what a browser does differently -----------------------------------------------------

    def _on_notice(self, notice: common_pb2.CallNotice) -> None:
        self._publish("notice", notice=notice.kind[:64], text=notice.text[:2000])

    def _dialog_hangup(self, reason: str) -> None:
        self._publish("hangup", reason=reason)
        self.hangup(CallEndReason.DIALOG_HANGUP)

    def transfer(self, target_uri: str) -> None:
        """A browser cannot be handed to another number: the dialog hears a failed transfer and goes on."""
        self._publish("notice", notice="transfer", text=f"transfer to {target_uri} is not possible from a browser")
        if self.link is not None:
            self.link.send(transfer_result=common_pb2.TransferResult(
                target_uri=target_uri, sip_status=0, ok=False, reason="transfer is not supported on WebRTC calls"))

    def _publish(self, kind: str, **data: object) -> None:
        self.live.publish(kind, self.leg.now_ms(), **data)
