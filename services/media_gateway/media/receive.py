"""One inbound RTP stream: packets in, steady 16 kHz 20 ms frames and DTMF digits out (sans-I/O).

The jitter buffer is aiortp's ``AdaptivePlayout``: frames keyed by RTP timestamp (so reordering
is undone), served one per ptime tick, missing ones concealed (libopus PLC for Opus, aiortp's
fading repeat for G.711), frames older than the playout head dropped as late, and its depth
following the measured jitter. This wrapper adds what a gateway needs around it: duplicate and
SSRC handling, G.711 peers that send a ptime other than negotiated, RFC 4733 and in-band DTMF,
resampling to 16 kHz, and counters. Time comes in as arguments (``now`` for the playout,
``now_ms`` for reports), so tests drive it without a clock or socket.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from aiortp.packet import RtcpReceiverInfo, RtpPacket
from aiortp.playout import AdaptivePlayout
from aiortp.stats import StreamStatistics
from dialtone.media_gateway.media.codecs import ToSixteenK, is_g711, make_codec, opus_packet_ms
from dialtone.media_gateway.media.inband_dtmf import InbandDtmfDetector
from dialtone.media_gateway.media.rfc4733 import Rfc4733Receiver
from dialtone.media_gateway.media.rtcp import receiver_block
from dialtone.media_gateway.media_types import DtmfDigit, NegotiatedMedia

MAX_PLAYOUT_DELAY_MS = 200
_DUPLICATE_WINDOW = 64
# Packet durations we follow when a peer ignores the negotiated ptime
_G711_FRAME_SIZES = frozenset(range(80, 481, 80))          # 10..60 ms at 8 kHz
_OPUS_PTIMES = frozenset((10, 20, 40, 60))


class ReceiveStream:
    """Feed ``on_packet`` every packet of the negotiated stream; call ``tick`` every ``ptime_s``."""

    def __init__(self, media: NegotiatedMedia, now: Callable[[], float]) -> None:
        self._media = media
        self._now = now
        self._g711 = is_g711(media.codec)
        self._earlier_late = 0        # playout counters of a playout replaced after a ptime change
        self._earlier_concealed = 0
        try:
            self._build_playout(media.ptime_ms or 20)
        except ValueError:
            # An odd ptime in the SDP (opus with ptime:30, ...): start at 20 ms; the first packets
            # tell the real duration and the playout follows them.
            self._build_playout(20)
        self._to16k = ToSixteenK(self._codec.sample_rate)
        self._rfc4733 = Rfc4733Receiver(media.clock_rate) if media.telephone_event_pt is not None else None
        self._inband = InbandDtmfDetector() if media.telephone_event_pt is None and self._g711 else None
        self._ssrc: int | None = None
        self._stats: StreamStatistics | None = None
        self._lost_before = 0        # loss counted under an earlier SSRC
        self._recent: collections.deque[int] = collections.deque(maxlen=_DUPLICATE_WINDOW)
        self._recent_set: set[int] = set()
        self.packets = 0
        self.duplicates = 0
        self.bad_events = 0
        self.bad_payloads = 0
        self.ptime_changes = 0
        self.ssrc_changes = 0

    def _build_playout(self, ptime_ms: int) -> None:
        self._ptime_ms = ptime_ms
        self._codec = make_codec(self._media.codec, ptime_ms)
        self._playout = AdaptivePlayout(self._codec, max_delay_ms=MAX_PLAYOUT_DELAY_MS, now=self._now,
                                        clock_rate=self._media.clock_rate)
        self._silence = bytes(self._codec.samples_per_frame * 2)

    @property
    def ptime_s(self) -> float:
        """How often ``tick`` must run: the peer's packet interval."""
        return self._ptime_ms / 1000.0

    def on_packet(self, packet: RtpPacket, now_ms: int) -> list[DtmfDigit]:
        """Take one parsed packet of this stream's payload type or telephone-event; digits it finished."""
        is_event = packet.payload_type == self._media.telephone_event_pt
        if is_event and self._ssrc is not None and packet.ssrc != self._ssrc:
            # Events on an SSRC of their own (some gateways do that): not a new audio source, and
            # their own sequence space; the RFC 4733 core dedups their retransmissions itself.
            return self._event(packet, now_ms)
        if packet.ssrc != self._ssrc:
            self._new_source(packet.ssrc)
        seq = packet.sequence_number
        if seq in self._recent_set:
            self.duplicates += 1
            return []
        if len(self._recent) == _DUPLICATE_WINDOW:
            self._recent_set.discard(self._recent[0])
        self._recent.append(seq)
        self._recent_set.add(seq)
        self.packets += 1
        assert self._stats is not None
        self._stats.add(packet)
        if is_event:
            # The sender replaces audio with events while a key is down: not loss (aiortp does the same)
            self._playout.suppress()
            return self._event(packet, now_ms)
        payload = packet.payload
        if not payload or (not self._g711 and not opus_packet_ms(payload)):
            self.bad_payloads += 1   # empty, or an Opus packet libopus would refuse: never reaches the decoder
            return []
        ptime = self._packet_ptime(payload)
        if ptime is not None and ptime != self._ptime_ms:
            self.ptime_changes += 1
            self._earlier_late += self._playout.late_dropped
            self._earlier_concealed += self._playout.concealed_frames
            self._build_playout(ptime)
        self._playout.put(packet.timestamp, payload)
        return []

    def _event(self, packet: RtpPacket, now_ms: int) -> list[DtmfDigit]:
        if self._rfc4733 is None:
            return []
        try:
            return self._rfc4733.handle(packet.timestamp, packet.payload, now_ms)
        except ValueError:
            self.bad_events += 1
            return []

    def _packet_ptime(self, payload: bytes) -> int | None:
        """The packet's duration in ms when it is one we can follow, else None (keep the current one)."""
        if self._g711:
            return len(payload) // 8 if len(payload) in _G711_FRAME_SIZES else None
        duration = opus_packet_ms(payload)
        return int(duration) if duration is not None and duration in _OPUS_PTIMES else None

    def _new_source(self, ssrc: int) -> None:
        if self._ssrc is not None:
            self.ssrc_changes += 1
            self._playout.reset()
            self._recent.clear()
            self._recent_set.clear()
        if self._stats is not None and self._stats.max_seq is not None:
            self._lost_before += self._stats.packets_lost
        self._ssrc = ssrc
        self._stats = StreamStatistics(clockrate=self._media.clock_rate)

    def tick(self, now_ms: int) -> tuple[list[bytes], list[DtmfDigit]]:
        """One ptime of playout: the 16 kHz frames it yields (silence while nothing plays) and digits."""
        out = self._playout.tick()
        digits: list[DtmfDigit] = []
        if out is None:
            pcm = self._silence
        else:
            pcm = out[0]
            if self._inband is not None:
                digits.extend(self._inband.process(pcm, now_ms))
        if self._rfc4733 is not None:
            digits.extend(self._rfc4733.poll(now_ms))
        return self._to16k.convert(pcm), digits

    def receiver_report(self) -> RtcpReceiverInfo | None:
        """The RTCP report block for this stream, or None before the first packet."""
        if self._ssrc is None or self._stats is None or self._stats.max_seq is None:
            return None
        return receiver_block(self._ssrc, self._stats)

    def stats(self) -> dict[str, float]:
        playout = self._playout.stats()
        lost = self._lost_before
        jitter_ms = 0.0
        if self._stats is not None and self._stats.max_seq is not None:
            lost += self._stats.packets_lost
            jitter_ms = self._stats.jitter * 1000.0 / self._media.clock_rate
        return {
            "packets_in": float(self.packets),
            "packets_lost": float(max(0, lost)),
            "duplicates": float(self.duplicates),
            "jitter_ms": round(jitter_ms, 2),
            "late_packets": float(playout["late_dropped"] + self._earlier_late),
            "concealed_frames": float(playout["concealed_frames"] + self._earlier_concealed),
            "playout_delay_ms": float(playout["playout_delay_ms"]),
            "bad_dtmf_events": float(self.bad_events),
            "bad_payloads": float(self.bad_payloads),
            "ptime_changes": float(self.ptime_changes),
            "receive_ptime_ms": float(self._ptime_ms),
        }
