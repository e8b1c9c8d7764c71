"""One browser call: a ``WebRtcLeg``, the call's ``SpeechLink`` and its ``LiveChannel``.

The wiring is the SIP call's (``dialtone.media_gateway.calls.Call``): frames, DTMF and
playback reports go up the speech stream; PlayAudio, StopPlayback and Hangup come down.
The differences: CallStart says ``CHANNEL_WEBRTC``; a Transfer can't be done from a browser
and is answered with a failed ``TransferResult``; and every ``CallNotice`` (transcripts,
what the dialog said, its state) plus the leg's own events go to the page's live panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from dialtone.common.logging import session_context
from dialtone.common.metrics import counter, gauge
from dialtone.media_gateway.media_types import DtmfDigit, PlaybackReport
from dialtone.media_gateway.webrtc.config import IceServerConfig
from dialtone.media_gateway.webrtc.leg import WebRtcLeg
from dialtone.media_gateway.webrtc.live import LiveChannel
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as mpb
from dialtone.v1 import speech_gateway_pb2 as spb

log = logging.getLogger(__name__)

ACTIVE_WEBRTC_CALLS = gauge("webrtc_active_calls", "browser calls in progress")
WEBRTC_CALL_ENDS = counter("webrtc_call_ends_total", "browser calls ended, by reason", ["reason"])
_END_REASONS = frozenset({"caller_hangup", "dialog_hangup", "media_failed", "connect_timeout", "speech_unavailable",
                          "shutdown", "operator_hangup"})


class Link(Protocol):
    """What a call needs from ``dialtone.media_gateway.speech_link.SpeechLink``."""

    def start(self) -> None: ...
    def send_audio(self, pcm: bytes, timestamp_ms: int) -> None: ...
    def send(self, **payload: object) -> None: ...
    async def close(self, reason: str, timeout: float = 2.0) -> None: ...


class LinkFactory(Protocol):
    """Opens a call's link (``wiring.SpeechLinks``); ``close()`` releases what the links share."""

    def __call__(self, session_id: str, call_info: common_pb2.CallInfo,
                 on_downlink: Callable[[spb.MediaDownlink], None]) -> Link: ...
    async def close(self) -> None: ...


class WebRtcCall:
    def __init__(self, session_id: str, dialog: str, *, link_factory: LinkFactory,
                 ice_servers: Sequence[IceServerConfig] = (), connect_timeout_s: float = 20.0,
                 user_agent: str = "", on_ended: Callable[[WebRtcCall], None] | None = None) -> None:
        self.session_id = session_id
        self.dialog = dialog
        self.user_agent = user_agent[:200]
        self.live = LiveChannel()
        self.state = "connecting"
        self.end_reason = ""
        self.ended = asyncio.Event()
        self.started_unix_ms = int(time.time() * 1000)
        self._link_factory = link_factory
        self._connect_timeout_s = connect_timeout_s
        self._on_ended = on_ended
        self._link: Link | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._first_in = self._first_out = False
        self._finishing = False
        self._connected = asyncio.Event()
        self.leg = WebRtcLeg(session_id, on_frame=self._on_frame, on_dtmf=self._on_dtmf,
                             on_playback=self._on_playback, on_state=self._on_leg_state, ice_servers=ice_servers)

    # --- setup and teardown ------------------------------------------------------------------

    def call_info(self) -> common_pb2.CallInfo:
        headers = [common_pb2.SipHeader(name="User-Agent", value=self.user_agent)] if self.user_agent else []
        return common_pb2.CallInfo(caller="webrtc", callee=self.dialog, dialog=self.dialog, call_id=self.session_id,
                                   channel=common_pb2.CHANNEL_WEBRTC, direction=common_pb2.DIRECTION_INBOUND,
                                   headers=headers)

    def summary(self) -> mpb.CallSummary:
        """What the control API's ListCalls shows of this call."""
        state = {"connecting": "ringing", "connected": "active", "ended": "ending"}.get(self.state, self.state)
        return mpb.CallSummary(session_id=self.session_id, call_id=self.session_id, call=self.call_info(),
                               state=state, codec=self.leg.codec or "", started_unix_ms=self.started_unix_ms,
                               duration_ms=self.leg.now_ms())

    async def start(self, offer_sdp: object) -> str:
        """Answer the offer and open the speech stream; ``BadOffer`` propagates with nothing left open."""
        with session_context(self.session_id):
            received = self.leg.now_ms()
            answer = await self.leg.accept(offer_sdp)
            self._publish("timing", name="answer_ms", ms=self.leg.now_ms() - received)
            self._publish("state", state="connecting", codec=self.leg.codec)
            try:
                self._link = self._link_factory(self.session_id, self.call_info(), self._on_downlink)
                self._link.start()
            except BaseException:
                await self.leg.close()  # no browser call without its speech stream
                raise
            ACTIVE_WEBRTC_CALLS.inc()
            self._watcher = asyncio.create_task(self._watch(), name=f"webrtc-call-{self.session_id}")
            log.info("webrtc call started (dialog %r)", self.dialog)
            return answer

    def hangup(self, reason: str = "caller_hangup") -> None:
        """End the call soon (from the page's Hang up, the dialog, or the operator)."""
        if self._watcher is not None and not self._finishing:
            self.end_reason = self.end_reason or reason
            self._watcher.cancel()

    async def wait_ended(self) -> None:
        await self.ended.wait()

    async def _watch(self) -> None:
        """Own the call's lifetime: until the leg ends, connect times out, or hangup() cancels us."""
        reason = "caller_hangup"
        try:
            try:
                await asyncio.wait_for(self._wait_connected(), self._connect_timeout_s)
            except TimeoutError:
                reason = "connect_timeout"
            else:
                await self.leg.wait_ended()
                reason = "caller_hangup" if self.leg.connection_state == "closed" else "media_failed"
        except asyncio.CancelledError:
            reason = self.end_reason or "caller_hangup"
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
        with session_context(self.session_id):
            self.end_reason = reason
            self.state = "ended"
            await self.leg.close()
            if self._link is not None:
                await self._link.close(reason)
                ACTIVE_WEBRTC_CALLS.dec()
            WEBRTC_CALL_ENDS.labels(reason if reason in _END_REASONS else "other").inc()
            self._publish("ended", reason=reason, duration_ms=self.leg.now_ms())
            self.live.close()
            self.ended.set()
            log.info("webrtc call ended: %s", reason)
            if self._on_ended is not None:
                self._on_ended(self)

    async def close(self, reason: str = "shutdown") -> None:
        """Hang up and wait until everything is released (bounded)."""
        self.hangup(reason)
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._watcher), 5.0)
        elif not self.ended.is_set():
            await self._finish(reason)

    # --- leg callbacks -----------------------------------------------------------------------

    def _on_leg_state(self, state: str) -> None:
        if state == "connected" and self.state == "connecting":
            self.state = "connected"
            self._connected.set()
            self._publish("timing", name="connected_ms", ms=self.leg.now_ms())
        if not state.startswith("ice.") or state in ("ice.checking", "ice.completed", "ice.failed"):
            self._publish("state", state=state)

    def _on_frame(self, pcm: bytes, timestamp_ms: int) -> None:
        if not self._first_in:
            self._first_in = True
            self._publish("timing", name="first_audio_in_ms", ms=timestamp_ms)
        if self._link is not None:
            self._link.send_audio(pcm, timestamp_ms)

    def _on_dtmf(self, digit: DtmfDigit) -> None:
        self._publish("dtmf", digit=digit.digit, duration_ms=digit.duration_ms)
        if self._link is not None:
            self._link.send(dtmf=common_pb2.Dtmf(digit=digit.digit, duration_ms=digit.duration_ms,
                                                 source=common_pb2.DTMF_SOURCE_WEBRTC,
                                                 timestamp_ms=digit.timestamp_ms))

    def _on_playback(self, report: PlaybackReport) -> None:
        if not report.finished and not self._first_out:
            self._first_out = True
            self._publish("timing", name="first_audio_out_ms", ms=report.timestamp_ms)
        self._publish("playback", utterance_id=report.utterance_id, finished=report.finished,
                      played_ms=report.played_ms, total_ms=report.total_ms, interrupted=report.interrupted)
        if self._link is None:
            return
        if not report.finished:
            self._link.send(playback_started=common_pb2.PlaybackStarted(
                utterance_id=report.utterance_id, timestamp_ms=report.timestamp_ms))
        else:
            self._link.send(playback_finished=common_pb2.PlaybackFinished(
                utterance_id=report.utterance_id, played_ms=report.played_ms, total_ms=report.total_ms,
                interrupted=report.interrupted, timestamp_ms=report.timestamp_ms))

    # --- speech stream downlink --------------------------------------------------------------

    def _on_downlink(self, down: spb.MediaDownlink) -> None:
        kind = down.WhichOneof("payload")
        if kind == "play_audio":
            play = down.play_audio
            self.leg.play(play.utterance_id, play.pcm, play.sample_rate or 16000, play.last)
        elif kind == "stop_playback":
            self.leg.stop_playback(down.stop_playback.utterance_id or None)
        elif kind == "hold_playback":
            self.leg.hold_playback(down.hold_playback.max_ms)
        elif kind == "resume_playback":
            self.leg.resume_playback()
        elif kind == "notice":
            self._publish("notice", notice=down.notice.kind[:64], text=down.notice.text[:2000])
        elif kind == "hangup":
            self._publish("hangup", reason=down.hangup.reason or "dialog_hangup")
            self.hangup("dialog_hangup")
        elif kind == "transfer" and self._link is not None:
            target = down.transfer.target_uri
            self._publish("notice", notice="transfer", text=f"transfer to {target} is not possible from a browser")
            self._link.send(transfer_result=common_pb2.TransferResult(
                target_uri=target, sip_status=0, ok=False, reason="transfer is not supported on WebRTC calls"))

    def _publish(self, kind: str, **data: object) -> None:
        self.live.publish(kind, self.leg.now_ms(), **data)
