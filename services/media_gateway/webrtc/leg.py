"""``WebRtcLeg``: one browser's audio over aiortc, with the same shape as the RTP ``MediaSession``.

Callbacks: ``on_frame(pcm16k_640_bytes, timestamp_ms)``, ``on_dtmf(DtmfDigit)``,
``on_playback(PlaybackReport)``, and ``on_state(state)`` for the leg's own lifecycle
("ice.checking", "connected", "failed", "closed", ...). Methods: ``play``,
``stop_playback``, ``close``. The call pipeline treats this leg and an RTP session alike.

Inbound: aiortc decodes Opus (48 kHz) or G.711 (8 kHz); we keep the first channel, resample
with soxr to 16 kHz and cut 20 ms frames. Outbound: ``PlayoutTrack`` paces the call's
``PlaybackQueue`` (the RTP session's too) at 20 ms and aiortc encodes it. DTMF: the page's
``dtmf`` data channel (aiortc does not decode RFC 4733 telephone-events).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
from dialtone.common.audio import FRAME_MS, SAMPLE_RATE, StreamResampler
from dialtone.common.logging import session_context
from dialtone.common.metrics import counter
from dialtone.media_gateway.media.playback import PlaybackQueue
from dialtone.media_gateway.media_types import DtmfDigit, DtmfMode, PlaybackReport
from dialtone.media_gateway.webrtc.config import IceServerConfig
from dialtone.media_gateway.webrtc.core.keypad import parse_key_message
from dialtone.media_gateway.webrtc.core.offer import check_offer
from dialtone.media_gateway.webrtc.core.uplink import FrameChunker
from dialtone.media_gateway.webrtc.errors import BadOffer
from dialtone.media_gateway.webrtc.tracks import PlayoutTrack

log = logging.getLogger(__name__)

OFFERS = counter("webrtc_offers_total", "SDP offers from browsers, by outcome", ["outcome"])
BAD_KEY_MESSAGES = counter("webrtc_bad_key_messages_total", "Keypad data-channel messages that were not a key press")
DTMF_CHANNEL_LABEL = "dtmf"
# Utterances being resampled at once (each holds a soxr stream); older ones are dropped beyond this.
MAX_RESAMPLING_UTTERANCES = 8

FrameCallback = Callable[[bytes, int], None]
DtmfCallback = Callable[[DtmfDigit], None]
PlaybackCallback = Callable[[PlaybackReport], None]
StateCallback = Callable[[str], None]


def ice_configuration(servers: Sequence[IceServerConfig]) -> RTCConfiguration:
    """An explicit (possibly empty) server list: aiortc's default would ask Google's STUN server."""
    return RTCConfiguration(iceServers=[
        RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
        for s in servers if s.urls])


def _call_owner(callback: Callable[..., None], *args: object) -> bool:
    """Run one of the owner's callbacks from inside aiortc (its track loop, its event emitter):
    a failing callback is logged (False), and must not stop the media flowing."""
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - one bad callback must not end the call's media
        log.exception("webrtc leg callback %s failed", getattr(callback, "__qualname__", callback))
        return False
    return True


def answered_codec(answer_sdp: str) -> str | None:
    """The first audio codec of our answer: the one both sides send."""
    for media in SessionDescription.parse(answer_sdp).media:
        if media.kind == "audio" and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType.split("/", 1)[1]
    return None


class WebRtcLeg:
    def __init__(self, session_id: str, *, on_frame: FrameCallback, on_dtmf: DtmfCallback,
                 on_playback: PlaybackCallback, on_state: StateCallback | None = None,
                 ice_servers: Sequence[IceServerConfig] = ()) -> None:
        self.session_id = session_id
        self._on_frame = on_frame
        self._on_dtmf = on_dtmf
        self._on_playback = on_playback
        self._on_state = on_state
        self._ice_servers = tuple(ice_servers)
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._playout = PlaybackQueue()
        self._track = PlayoutTrack(self._playout, self.now_ms, self._deliver_reports)
        self._chunker = FrameChunker()
        self._inbound_resampler: StreamResampler | None = None
        self._play_resamplers: dict[str, StreamResampler] = {}
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended = asyncio.Event()   # the peer is gone (ICE/DTLS failed, or closed): the owner closes us
        self._closed = False
        self.codec: str | None = None
        self.frames_received = 0
        self._dtmf_count = 0
        self._callback_errors = 0

    # --- lifecycle -----------------------------------------------------------------

    def now_ms(self) -> int:
        """Call-relative milliseconds (the leg's clock for frames, DTMF and reports)."""
        return int((self._loop.time() - self._t0) * 1000)

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "new"

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_ended(self) -> None:
        """Return once the browser is gone (connection failed or closed) or ``close()`` ran."""
        await self._ended.wait()

    async def accept(self, offer_sdp: object) -> str:
        """Answer the browser's offer (ICE candidates included); ``BadOffer`` leaves nothing open."""
        try:
            summary = check_offer(offer_sdp)
        except BadOffer:
            OFFERS.labels("refused").inc()
            raise
        assert isinstance(offer_sdp, str)  # check_offer refused anything else
        pc = RTCPeerConnection(ice_configuration(self._ice_servers))
        self._pc = pc
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("iceconnectionstatechange", lambda: self._emit_state("ice." + pc.iceConnectionState))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            audio = next((t for t in pc.getTransceivers() if t.kind == "audio"), None)
            if audio is None:
                raise BadOffer("offer: no audio m-line that aiortc could use")
            capabilities = RTCRtpReceiver.getCapabilities("audio").codecs
            preferred = [c for name in summary.codecs for c in capabilities
                         if c.mimeType.split("/", 1)[1].lower() == name.lower()]
            audio.setCodecPreferences(preferred)
            pc.addTrack(self._track)
            await pc.setLocalDescription(await pc.createAnswer())
        except BadOffer:
            OFFERS.labels("refused").inc()
            await self.close()
            raise
        except (ValueError, KeyError, TypeError) as exc:  # aiortc's complaints about an offer it parsed
            OFFERS.labels("refused").inc()
            await self.close()
            raise BadOffer(f"offer: could not be answered ({type(exc).__name__}: {exc})") from exc
        except BaseException:
            await self.close()  # no half-open peer connection, whatever went wrong (sockets, cancellation)
            raise
        OFFERS.labels("answered").inc()
        self.codec = answered_codec(pc.localDescription.sdp) or summary.codecs[0]
        with session_context(self.session_id):
            log.info("webrtc offer answered: codec %s, keypad channel %s", self.codec, summary.has_data_channel)
        return pc.localDescription.sdp

    async def close(self) -> None:
        """Stop media, report queued utterances as interrupted, close the peer connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ended.set()
        self.stop_playback()
        self._track.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass  # we just cancelled it
        if self._pc is not None:
            await self._close_pc(self._pc)
        self._emit_state("closed")

    # --- what the pipeline calls ---------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Counters in the shape of ``MediaSession.stats()`` where they mean the same."""
        return {
            "frames_delivered": float(self.frames_received),
            "frames_out": float(self._track.frames_sent),
            "audio_frames_out": float(self._track.audio_frames_sent),
            "queued_ms": float(self._playout.queued_frames * FRAME_MS),
            "dropped_playout_ms": float(self._playout.dropped_frames * FRAME_MS),
            "dtmf_digits": float(self._dtmf_count),
            "callback_errors": float(self._callback_errors),
        }

    @property
    def playback_pending(self) -> bool:
        """Audio is queued or playing; a dialog's transfer or hangup waits for it."""
        return self._playout.pending

    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None:
        """Queue audio to send (mono s16le at ``sample_rate``; 0 means 16000); ValueError on bad input,
        as ``MediaSession.play`` (both feed the one ``PlaybackQueue``)."""
        if self._closed:
            return
        if not utterance_id:
            raise ValueError("utterance_id must not be empty")
        rate = sample_rate or SAMPLE_RATE
        if not 8000 <= rate <= 48000:
            raise ValueError(f"sample_rate {rate} is outside 8000..48000 Hz")
        if len(pcm) % 2:
            raise ValueError(f"PCM must be whole s16 samples, got {len(pcm)} bytes")
        if rate != SAMPLE_RATE:
            resampler = self._play_resamplers.get(utterance_id)
            if resampler is None or resampler.from_rate != rate:
                if len(self._play_resamplers) >= MAX_RESAMPLING_UTTERANCES:
                    self._play_resamplers.pop(next(iter(self._play_resamplers)))
                resampler = self._play_resamplers[utterance_id] = StreamResampler(rate, SAMPLE_RATE)
            pcm = resampler.process(pcm, last=last)
            if last:
                self._play_resamplers.pop(utterance_id, None)
        if not self._playout.enqueue(utterance_id, pcm, last) and self._playout.dropped_frames:
            log.debug("playout queue full or utterance stopped; chunk of %s dropped", utterance_id)

    def stop_playback(self, utterance_id: str | None = None) -> None:
        """Drop queued audio now; the next frame on the wire is silence."""
        if utterance_id is None:
            self._play_resamplers.clear()
        else:
            self._play_resamplers.pop(utterance_id, None)
        self._deliver_reports(self._playout.stop(utterance_id or None, self.now_ms()))

    def hold_playback(self, max_ms: int = 0) -> None:
        """Send silence, keeping queued audio in place, until resume_playback or stop_playback (barge-in)."""
        self._playout.hold(self.now_ms(), max_ms)

    def resume_playback(self) -> None:
        self._playout.resume()

    # --- aiortc callbacks (each wrapped: an exception must not escape into aiortc) ---

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        task = asyncio.create_task(self._consume(track), name=f"webrtc-inbound-{self.session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _consume(self, track: MediaStreamTrack) -> None:
        with session_context(self.session_id):
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                assert isinstance(frame, av.AudioFrame)
                self._inbound(frame)

    def _inbound(self, frame: av.AudioFrame) -> None:
        samples = frame.to_ndarray()
        channels = len(frame.layout.channels)
        # Packed s16: one row of interleaved samples. Browsers send mono content (in Opus'
        # stereo framing too), so the first channel is the caller's voice.
        mono = samples.reshape(-1)[::channels] if channels > 1 else samples.reshape(-1)
        if self._inbound_resampler is None or self._inbound_resampler.from_rate != frame.sample_rate:
            self._inbound_resampler = StreamResampler(frame.sample_rate, SAMPLE_RATE)
        pcm = self._inbound_resampler.process(np.ascontiguousarray(mono, dtype="<i2").tobytes())
        for chunk, timestamp_ms in self._chunker.push(pcm, self.now_ms()):
            self.frames_received += 1
            self._guarded(self._on_frame, chunk, timestamp_ms)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != DTMF_CHANNEL_LABEL:
            log.debug("ignoring data channel %r", channel.label)
            return
        channel.on("message", self._on_key_message)

    def _on_key_message(self, message: str | bytes) -> None:
        with session_context(self.session_id):
            try:
                press = parse_key_message(message)
            except ValueError as exc:
                BAD_KEY_MESSAGES.inc()
                log.debug("bad keypad message: %s", exc)
                return
            self._dtmf_count += 1
            self._guarded(self._on_dtmf, DtmfDigit(press.digit, press.duration_ms, DtmfMode.WEBRTC, self.now_ms()))

    def _on_connection_state(self) -> None:
        pc = self._pc
        if pc is None:
            return
        state = pc.connectionState
        self._emit_state(state)
        if state in ("failed", "closed"):
            self._ended.set()  # the browser went away (or ICE/DTLS failed); the owner closes the leg

    def _deliver_reports(self, reports: list[PlaybackReport]) -> None:
        for report in reports:
            self._guarded(self._on_playback, report)

    def _guarded(self, callback: Callable[..., None], *args: object) -> None:
        if not _call_owner(callback, *args):
            self._callback_errors += 1

    def _emit_state(self, state: str) -> None:
        if self._on_state is not None:
            self._guarded(self._on_state, state)

    async def _close_pc(self, pc: RTCPeerConnection) -> None:
        try:
            await pc.close()
        # aiortc 1.16 can fail inside close() on a half-built connection (its SCTP
        # transport without a DTLS transport); the sockets are released either way.
        except AttributeError as exc:
            log.debug("aiortc close: %s", exc)
