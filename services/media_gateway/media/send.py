"""One outbound stream: a 16 kHz frame (or silence) per 20 ms tick -> one encoded RTP payload (sans-I/O).

Silence goes out too, not nothing: SIP peers and NATs expect a continuous stream (many PBXs hang
up on RTP timeout). RTP time follows the tick count, so ticks missed during a stall leave a
timestamp gap the receiver conceals, instead of a burst of late packets.
"""

from __future__ import annotations

from aiortp.utils import random32
from dialtone.media_gateway.media.codecs import SEND_PTIME_MS, ToCodecRate, make_codec
from dialtone.media_gateway.media_types import NegotiatedMedia


class SendStream:
    def __init__(self, media: NegotiatedMedia, rtp_timestamp: int | None = None) -> None:
        encoder = make_codec(media.codec, SEND_PTIME_MS)     # ValueError for a codec we cannot send
        self.payload_type = media.payload_type
        self.clock_rate = media.clock_rate
        self._encoder = encoder
        self._encode = encoder.encode
        self._to_codec = ToCodecRate(encoder)
        self._silence_pcm = bytes(encoder.samples_per_frame * 2)
        # G.711 silence encodes to a constant; Opus keeps encoder state, so it is encoded per tick
        self._silence_payload = encoder.encode(self._silence_pcm) if encoder.sample_rate == 8000 else None
        self._increment = media.clock_rate * SEND_PTIME_MS // 1000
        self.rtp_timestamp = random32() if rtp_timestamp is None else rtp_timestamp
        self._marker_next = True

    def advance(self, ticks: int) -> int:
        """The RTP timestamp for this tick; the clock moves on by every tick that passed."""
        timestamp = self.rtp_timestamp
        self.rtp_timestamp = (timestamp + self._increment * ticks) & 0xFFFFFFFF
        return timestamp

    def encode(self, frame16k: bytes | None) -> bytes:
        """The payload for a 640-byte 16 kHz frame, or for silence when there is none."""
        if frame16k is not None:
            return self._encode(self._to_codec.convert(frame16k))
        if self._silence_payload is not None:
            return self._silence_payload
        return self._encode(self._silence_pcm)

    def drop_audio(self) -> None:
        """Forget audio inside the resampler (barge-in): the next utterance starts clean."""
        self._to_codec = ToCodecRate(self._encoder)

    def talkspurt(self) -> None:
        """The next packet starts a talkspurt (stream start, resume from hold): RTP marker bit."""
        self._marker_next = True

    def take_marker(self) -> int:
        marker = 1 if self._marker_next else 0
        self._marker_next = False
        return marker
