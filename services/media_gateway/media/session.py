"""``MediaSession``: one call's RTP on asyncio UDP, over aiortp's packet, sender and playout parts.

Receive: datagram -> (guards) -> ``ReceiveStream`` (aiortp adaptive playout, decode, 16 kHz) ->
``on_frame`` every 20 ms and ``on_dtmf``. Send: ``play`` queues 16 kHz PCM in ``PlaybackQueue``;
each tick of a ``PacingClock`` (absolute deadlines, armed with ``loop.call_at``) encodes ONE
frame in the negotiated codec, or silence, and sends it. Every callback we make or receive is
guarded: a raising callback or a bad datagram is counted and logged at most every few seconds,
never raised into the loop.
"""

from __future__ import annotations

import array
import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from typing import Any

from aiortp.packet import RtpPacket
from aiortp.sender import RtpSender
from dialtone.common.audio import FRAME_MS, SAMPLE_RATE, StreamResampler
from dialtone.media_gateway.media import metrics
from dialtone.media_gateway.media.codecs import SEND_PTIME_MS
from dialtone.media_gateway.media.pacing import PacingClock
from dialtone.media_gateway.media.playback import PlaybackQueue
from dialtone.media_gateway.media.ports import PortAllocator
from dialtone.media_gateway.media.receive import ReceiveStream
from dialtone.media_gateway.media.rtcp import build_bye, build_report
from dialtone.media_gateway.media.send import SendStream
from dialtone.media_gateway.media.srtp import SrtpContext
from dialtone.media_gateway.media.udp import GuardedTransport, RateLimitedLog, quiet_library_loggers
from dialtone.media_gateway.media_types import DtmfDigit, NegotiatedMedia, PlaybackReport

logger = logging.getLogger(__name__)
quiet_library_loggers()   # aiortp warns per packet on some bad input; keep one line per 10 s

MAX_DATAGRAM = 1500          # larger is not audio RTP at 20 ms
RELATCH_AFTER_S = 2.0        # another source may take over once the latched one is this quiet
MAX_RECEIVE_CATCHUP = 5      # playout ticks run at once after a stall
LATE_AFTER_S = SEND_PTIME_MS / 2000.0
METRICS_EVERY_TICKS = 50     # flush counters to Prometheus once a second
LOG_EVERY_S = 10.0
LATENESS_SAMPLES = 3000      # last minute of send-tick lateness, for benchmarks (24 KB per call)


class MediaSession:
    """One call's RTP: decoded caller audio -> 16 kHz 20 ms frames; 16 kHz PCM to play -> paced RTP.

    From ``start`` on, ``on_frame`` gets one 640-byte frame per 20 ms of call time, silence when
    nothing arrives (so VAD downstream sees pauses), and a packet goes out every 20 ms while the
    direction lets us send (silence when nothing is queued). Callbacks run on the loop thread and
    must return quickly: they run inside the media clock's tick.
    Errors: ``open`` raises PortsExhausted; ``start``/``update``/``play`` raise ValueError on input
    they cannot use (nothing changes then) and RuntimeError after ``close``.
    """

    local_port: int
    rtcp_interval_s: float = 5.0     # RFC 3550's minimum; randomised 0.5..1.5x per report
    # A server behind NAT answers where RTP comes from; a dialling client (the caller tool) takes RTP
    # only from the address the answer named, so a stale stream aimed at a reused port is not heard.
    symmetric_latching: bool = True

    def __init__(self, *, session_id: str, loop: asyncio.AbstractEventLoop, port: int,
                 port_allocator: PortAllocator, on_frame: Callable[[bytes, int], None],
                 on_dtmf: Callable[[DtmfDigit], None],
                 on_playback: Callable[[PlaybackReport], None]) -> None:
        self.session_id = session_id
        self.local_port = port
        self._loop = loop
        self._allocator = port_allocator
        self._on_frame = on_frame
        self._on_dtmf = on_dtmf
        self._on_playback = on_playback
        self._rtp: GuardedTransport | None = None
        self._rtcp: GuardedTransport | None = None
        self._sender: RtpSender | None = None
        self._media: NegotiatedMedia | None = None
        self._receive: ReceiveStream | None = None
        self._send: SendStream | None = None
        self._remote: tuple[str, int] | None = None
        self._latched: tuple[str, int] | None = None
        self._rtcp_latched: tuple[str, int] | None = None
        self._next_rtcp = 0.0
        self._rtcp_in = 0
        self._rtcp_out = 0
        self._last_from_latched = 0.0
        self._playback = PlaybackQueue()
        self._play_resampler: tuple[str, StreamResampler] | None = None
        self._started_at = 0.0
        self._send_clock: PacingClock | None = None
        self._recv_clock: PacingClock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ssrc = 0
        self._frames_delivered = 0
        self._closed = False
        # counters
        self._packets_out = 0
        self._late_frames = 0
        self._ticks = 0
        self._dropped = dict.fromkeys(metrics.DROP_REASONS, 0)
        self._callback_errors = 0
        self._socket_errors = 0
        self._dtmf_count = 0
        self._metrics = metrics.SessionMetrics()
        self._log = RateLimitedLog(logger, LOG_EVERY_S)
        self._lateness = array.array("d", bytes(8 * LATENESS_SAMPLES))
        self._lateness_n = 0

    # ── lifecycle ─────────────────────────────────────────────

    @classmethod
    async def open(cls, *, session_id: str, bind_host: str, port_allocator: PortAllocator,
                   on_frame: Callable[[bytes, int], None], on_dtmf: Callable[[DtmfDigit], None],
                   on_playback: Callable[[PlaybackReport], None]) -> MediaSession:
        """Bind an RTP/RTCP port pair from ``port_allocator``; PortsExhausted when the range is full."""
        loop = asyncio.get_running_loop()
        port, rtp_sock, rtcp_sock = port_allocator.allocate(bind_host)
        session = cls(session_id=session_id, loop=loop, port=port, port_allocator=port_allocator,
                      on_frame=on_frame, on_dtmf=on_dtmf, on_playback=on_playback)
        try:
            await session._bind(rtp_sock, rtcp_sock)
        except BaseException:
            rtp_sock.close()
            rtcp_sock.close()
            port_allocator.release(port)
            raise
        metrics.SESSIONS_ACTIVE.inc()
        return session

    async def _bind(self, rtp_sock: socket.socket, rtcp_sock: socket.socket) -> None:
        rtp = GuardedTransport(self._on_rtp_datagram, self._on_rtcp_datagram, self._on_socket_error,
                               self._on_srtp_drop)
        await self._loop.create_datagram_endpoint(lambda: rtp, sock=rtp_sock)
        self._rtp = rtp
        rtcp = GuardedTransport(self._on_rtcp_datagram, self._on_rtcp_datagram, self._on_socket_error,
                                self._on_srtp_drop)
        await self._loop.create_datagram_endpoint(lambda: rtcp, sock=rtcp_sock)
        self._rtcp = rtcp
        self._sender = RtpSender(transport=rtp, payload_type=0, enable_history=False)
        self._ssrc = self._sender.ssrc

    def start(self, media: NegotiatedMedia) -> None:
        """Begin sending/receiving the negotiated stream; ValueError for a codec we cannot run."""
        if self._closed:
            raise RuntimeError("media session is closed")
        if self._media is not None:
            self.update(media)
            return
        self._apply(media)
        now = self._loop.time()
        self._started_at = now
        self._next_rtcp = now + self.rtcp_interval_s * random.uniform(0.5, 1.5)  # noqa: S311 - RFC 3550 spread
        self._send_clock = PacingClock(now, SEND_PTIME_MS / 1000.0)
        assert self._receive is not None
        self._recv_clock = PacingClock(now, self._receive.ptime_s)
        self._arm()
        logger.info("media started: %s/%d pt %d to %s:%d port %d %s", media.codec, media.clock_rate,
                    media.payload_type, media.remote_host, media.remote_port, self.local_port,
                    media.direction.value, extra={"session_id": self.session_id})

    def update(self, media: NegotiatedMedia) -> None:
        """A re-INVITE changed codec, remote address or direction (not sending while on hold)."""
        if self._closed:
            raise RuntimeError("media session is closed")
        if self._media is None:
            self.start(media)
            return
        previous = self._media
        self._apply(media, previous)
        if previous.direction.we_send != media.direction.we_send and self._send is not None:
            self._send.talkspurt()
        logger.info("media updated: %s pt %d to %s:%d %s", media.codec, media.payload_type,
                    media.remote_host, media.remote_port, media.direction.value,
                    extra={"session_id": self.session_id})

    def _apply(self, media: NegotiatedMedia, previous: NegotiatedMedia | None = None) -> None:
        if not 0 <= media.remote_port <= 65535:
            raise ValueError(f"remote RTP port {media.remote_port} is out of range")
        try:
            remote_ip = ipaddress.ip_address(media.remote_host)
        except ValueError:
            raise ValueError(f"remote_host must be an IP address (resolve names in signalling), "
                             f"got {media.remote_host[:80]!r}") from None
        stream_changed = previous is None or (previous.codec, previous.payload_type, previous.clock_rate,
                                              previous.ptime_ms, previous.telephone_event_pt) != (
            media.codec, media.payload_type, media.clock_rate, media.ptime_ms, media.telephone_event_pt)
        if stream_changed:
            old = self._send
            # Both raise ValueError before anything changes for a codec we cannot run
            send = SendStream(media, old.rtp_timestamp if old and old.clock_rate == media.clock_rate else None)
            self._receive = ReceiveStream(media, now=self._loop.time)
            self._send = send
        if previous is None or (previous.remote_host, previous.remote_port) != (media.remote_host,
                                                                                 media.remote_port):
            # Port 0 or c=0.0.0.0 (RFC 2543 hold): nowhere to send until the peer's RTP shows up
            self._remote = None if not media.remote_port or remote_ip.is_unspecified else (
                media.remote_host, media.remote_port)
            self._latched = None   # latch again onto whoever sends first from the new offer
            self._rtcp_latched = None
        if previous is None or previous.srtp != media.srtp:
            # ValueError (an unknown suite) before anything is sent in the clear or with the old keys
            context = SrtpContext(media.srtp) if media.srtp is not None else None
            for transport in (self._rtp, self._rtcp):
                if transport is not None:
                    transport.srtp = context
        self._media = media

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._media is not None:
            self._send_rtcp(build_bye(self._ssrc))
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        await asyncio.sleep(0)   # let the transports finish closing their sockets
        self._allocator.release(self.local_port)
        self._flush_metrics(final=True)
        metrics.SESSIONS_ACTIVE.dec()
        stats = self.stats()
        logger.info("media closed: in %d out %d lost %d jitter %.1f ms late frames %d",
                    stats["packets_in"], stats["packets_out"], stats["packets_lost"], stats["jitter_ms"],
                    stats["late_frames"], extra={"session_id": self.session_id})

    # ── playback ──────────────────────────────────────────────

    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None:
        """Queue PCM (s16le mono at ``sample_rate``) for ``utterance_id``; ValueError on bad input."""
        if self._closed:
            raise RuntimeError("media session is closed")
        if not utterance_id:
            raise ValueError("utterance_id must not be empty")
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"sample_rate {sample_rate} is outside 8000..48000 Hz")
        if len(pcm) % 2:
            raise ValueError(f"PCM must be whole s16 samples, got {len(pcm)} bytes")
        if sample_rate != SAMPLE_RATE:
            current = self._play_resampler
            if current is None or current[0] != utterance_id or current[1].from_rate != sample_rate:
                current = self._play_resampler = (utterance_id,
                                                  StreamResampler(sample_rate, SAMPLE_RATE, low_latency=True))
            pcm = current[1].process(pcm, last=last)
            if last:
                self._play_resampler = None
        self._playback.enqueue(utterance_id, pcm, last)

    @property
    def playback_pending(self) -> bool:
        """Audio is queued or playing; a dialog's transfer or hangup waits for it."""
        return self._playback.pending

    def stop_playback(self, utterance_id: str | None = None) -> None:
        """Drop queued audio now (the next tick sends silence); report each dropped utterance."""
        if self._play_resampler is not None and utterance_id in (None, self._play_resampler[0]):
            self._play_resampler = None
        reports = self._playback.stop(utterance_id, self._now_ms(self._loop.time()))
        if any(r.played_ms for r in reports) and self._send is not None:
            self._send.drop_audio()   # the utterance on the wire was cut: its resampler tail goes too
        for report in reports:
            self._call(self._on_playback, report)

    def hold_playback(self, max_ms: int = 0) -> None:
        """Send silence, keeping queued audio in place, until resume_playback or stop_playback (barge-in)."""
        self._playback.hold(self._now_ms(self._loop.time()), max_ms)

    def resume_playback(self) -> None:
        self._playback.resume()

    # ── clock ─────────────────────────────────────────────────

    def _arm(self) -> None:
        assert self._send_clock is not None and self._recv_clock is not None
        deadline = min(self._send_clock.next_deadline(), self._recv_clock.next_deadline())
        self._timer = self._loop.call_at(deadline, self._tick)

    def _now_ms(self, now: float) -> int:
        return int((now - self._started_at) * 1000) if self._started_at else 0

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            now = self._loop.time()
            self._receive_tick(now)
            self._send_tick(now)
            if now >= self._next_rtcp:
                self._next_rtcp = now + self.rtcp_interval_s * random.uniform(0.5, 1.5)  # noqa: S311
                self._send_rtcp_report()
            self._ticks += 1
            if self._ticks % METRICS_EVERY_TICKS == 0:
                self._flush_metrics()
        except Exception:
            self._log_limited("tick", "media tick failed", exc_info=True)
        finally:
            if not self._closed:
                self._arm()

    def _receive_tick(self, now: float) -> None:
        assert self._recv_clock is not None and self._receive is not None
        if self._receive.ptime_s != self._recv_clock.interval:
            # The peer's packets are longer/shorter than negotiated: play out at their pace
            self._recv_clock = PacingClock(now, self._receive.ptime_s)
        due = self._recv_clock.take(now)
        now_ms = self._now_ms(now)
        for _ in range(min(due.ticks, MAX_RECEIVE_CATCHUP)):
            frames, digits = self._receive.tick(now_ms)
            for frame in frames:
                self._call(self._on_frame, frame, self._frames_delivered * FRAME_MS)
                self._frames_delivered += 1
            for digit in digits:
                self._deliver_digit(digit)

    def _send_tick(self, now: float) -> None:
        assert self._send_clock is not None and self._media is not None and self._send is not None
        due = self._send_clock.take(now)
        if not due.ticks:
            return
        self._lateness[self._lateness_n % LATENESS_SAMPLES] = due.lateness
        self._lateness_n += 1
        self._late_frames += due.ticks - 1 + (1 if due.lateness > LATE_AFTER_S else 0)
        timestamp = self._send.advance(due.ticks)
        target = self._latched or self._remote
        if not self._media.direction.we_send or target is None:
            return   # on hold: nothing goes out and queued playback waits
        frame, reports = self._playback.next_frame(self._now_ms(now))
        payload = self._send.encode(frame)
        assert self._sender is not None
        self._sender.send_raw(self._send.payload_type, payload, timestamp, marker=self._send.take_marker(),
                              addr=target)
        self._packets_out += 1
        for report in reports:
            self._call(self._on_playback, report)

    # ── datagrams ─────────────────────────────────────────────

    def _on_rtp_datagram(self, data: bytes, addr: Any) -> None:
        try:
            self._handle_rtp(data, addr)
        except Exception:
            self._dropped["malformed"] += 1
            self._log_limited("rtp", "RTP datagram handling failed", exc_info=True)

    def _handle_rtp(self, data: bytes, addr: Any) -> None:
        if len(data) > MAX_DATAGRAM:
            self._dropped["oversized"] += 1
            return
        media, receive = self._media, self._receive
        if media is None or receive is None or self._closed:
            self._dropped["not_started"] += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self._dropped["malformed"] += 1
            return
        if packet.payload_type not in (media.payload_type, media.telephone_event_pt):
            self._dropped["payload_type"] += 1
            return
        source = (addr[0], addr[1])
        now = self._loop.time()
        if not self.symmetric_latching and source != self._remote:
            self._dropped["foreign_source"] += 1
            return
        if source != self._latched:
            if self._latched is not None and now - self._last_from_latched < RELATCH_AFTER_S:
                self._dropped["foreign_source"] += 1
                return
            # Symmetric RTP (RFC 4961): answer where the caller's packets come from (NAT)
            self._latched = source
            logger.info("RTP latched to %s:%d", source[0], source[1], extra={"session_id": self.session_id})
        self._last_from_latched = now
        for digit in receive.on_packet(packet, self._now_ms(now)):
            self._deliver_digit(digit)

    def _on_rtcp_datagram(self, data: bytes, addr: Any) -> None:
        # The peer's reports are not used (our stats come from the RTP we receive); its address is:
        # RTCP goes back where RTCP comes from (symmetric, also for rtcp-mux on the RTP port).
        if self._media is None or self._closed or len(data) > MAX_DATAGRAM or len(data) < 8 \
                or not 192 <= data[1] <= 208 or data[0] >> 6 != 2:
            self._dropped["malformed"] += 1
            return
        self._rtcp_in += 1
        self._rtcp_latched = (addr[0], addr[1])

    def _rtcp_target(self) -> tuple[str, int] | None:
        if self._rtcp_latched is not None:
            return self._rtcp_latched
        rtp_target = self._latched or self._remote
        return None if rtp_target is None else (rtp_target[0], rtp_target[1] + 1)

    def _send_rtcp_report(self) -> None:
        assert self._sender is not None and self._receive is not None
        report = build_report(ssrc=self._ssrc, cname=f"dialtone-{self.local_port}",
                              packets_sent=self._sender.packets_sent, octets_sent=self._sender.octets_sent,
                              rtp_timestamp=self._send.rtp_timestamp if self._send else 0,
                              block=self._receive.receiver_report())
        self._send_rtcp(report)

    def _send_rtcp(self, data: bytes) -> None:
        target = self._rtcp_target()
        if target is None or self._rtcp is None:
            return
        self._rtcp.send(data, target)
        self._rtcp_out += 1

    def _on_srtp_drop(self) -> None:
        self._dropped["srtp_auth"] += 1

    def _on_socket_error(self, exc: Exception) -> None:
        self._socket_errors += 1
        self._log_limited("socket", "RTP socket error: %s", exc)

    # ── callbacks, stats, logs ────────────────────────────────

    def _deliver_digit(self, digit: DtmfDigit) -> None:
        self._dtmf_count += 1
        self._call(self._on_dtmf, digit)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            self._callback_errors += 1
            self._log_limited("callback", "media callback %s raised", getattr(callback, "__name__", callback),
                              exc_info=True)

    def _log_limited(self, key: str, msg: str, *args: Any, exc_info: bool = False) -> None:
        self._log.warning(key, msg, *args, exc_info=exc_info, extra={"session_id": self.session_id})

    def stats(self) -> dict[str, float]:
        """packets_in/out, packets_lost, jitter_ms, late_frames (send), late_packets (receive), drops."""
        result: dict[str, float] = {"packets_in": 0.0, "packets_lost": 0.0, "jitter_ms": 0.0,
                                    "late_packets": 0.0, "duplicates": 0.0, "concealed_frames": 0.0}
        if self._receive is not None:
            result.update(self._receive.stats())
        result.update({
            "packets_out": float(self._packets_out),
            "late_frames": float(self._late_frames),
            "frames_delivered": float(self._frames_delivered),
            "dtmf_digits": float(self._dtmf_count),
            "callback_errors": float(self._callback_errors),
            "socket_errors": float(self._socket_errors),
            "rtcp_in": float(self._rtcp_in),
            "rtcp_out": float(self._rtcp_out),
            "playback_queued_ms": float(self._playback.queued_frames * FRAME_MS),
            "playback_underruns": float(self._playback.underruns),
        })
        for reason, count in self._dropped.items():
            result[f"dropped_{reason}"] = float(count)
        return result

    def send_lateness(self) -> list[float]:
        """Seconds each recent send tick ran after its deadline (newest last), for benchmarks."""
        n = min(self._lateness_n, LATENESS_SAMPLES)
        start = self._lateness_n - n
        return [self._lateness[i % LATENESS_SAMPLES] for i in range(start, self._lateness_n)]

    def _flush_metrics(self, final: bool = False) -> None:
        if self._media is not None:
            self._metrics.flush(self._media.codec, self.stats(), final)
