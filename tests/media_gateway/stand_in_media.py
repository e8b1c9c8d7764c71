"""A small stand-in for ``media.session.MediaSession`` used by the signalling tests.

It satisfies the interface agreed with the media half (open/start/update/play/stop_playback/
stats/close, callbacks on the loop thread) with a real UDP socket: G.711 RTP in -> 16 kHz
640-byte frames, RFC 4733 end packets -> one DtmfDigit per key press, and it records what
the call asked of it (start/update/play) so the tests can assert on signalling decisions.
It sends no RTP. The real MediaSession replaces it once the media half lands.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from dialtone.common.audio import FRAME_BYTES, resample
from dialtone.media_gateway.media_types import DtmfDigit, DtmfMode, NegotiatedMedia, PlaybackReport


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 7, u & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -sample, sample).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = a & 0x80, (a >> 4) & 7, a & 0x0F
    sample = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, sample, -sample).astype(np.int16)


ULAW = _ulaw_table()
ALAW = _alaw_table()
EVENTS = "0123456789*#ABCD"


class StandInMedia(asyncio.DatagramProtocol):
    opened: list[StandInMedia] = []

    def __init__(self) -> None:
        self.local_port = 0
        self.started: list[NegotiatedMedia] = []
        self.updates: list[NegotiatedMedia] = []
        self.played: list[tuple[str, int, bool]] = []
        self.stopped: list[str | None] = []
        self.closed = False
        self.packets_in = 0
        self._buffer = bytearray()
        self._seen_events: set[int] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self.on_frame: Callable[[bytes, int], None] = lambda pcm, ts: None
        self.on_dtmf: Callable[[DtmfDigit], None] = lambda d: None
        self.on_playback: Callable[[PlaybackReport], None] = lambda r: None
        self._frames = 0

    @classmethod
    async def open(cls, *, session_id: str, bind_host: str, on_frame: Callable[[bytes, int], None],
                   on_dtmf: Callable[[DtmfDigit], None], on_playback: Callable[[PlaybackReport], None],
                   **_: Any) -> StandInMedia:
        loop = asyncio.get_running_loop()
        session = cls()
        session.on_frame, session.on_dtmf, session.on_playback = on_frame, on_dtmf, on_playback
        transport, _ = await loop.create_datagram_endpoint(lambda: session, local_addr=(bind_host, 0))
        session._transport = transport
        session.local_port = transport.get_extra_info("sockname")[1]
        cls.opened.append(session)
        return session

    @property
    def media(self) -> NegotiatedMedia | None:
        return (self.updates or self.started or [None])[-1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        media = self.media
        if media is None or len(data) < 12:
            return
        self.packets_in += 1
        pt = data[1] & 0x7F
        payload = data[12 + 4 * (data[0] & 0x0F):]
        if pt == media.telephone_event_pt and len(payload) >= 4:
            timestamp = struct.unpack(">I", data[4:8])[0]
            if payload[1] & 0x80 and timestamp not in self._seen_events and payload[0] < len(EVENTS):
                self._seen_events.add(timestamp)
                duration_ms = struct.unpack(">H", payload[2:4])[0] * 1000 // media.clock_rate
                self.on_dtmf(DtmfDigit(EVENTS[payload[0]], duration_ms, DtmfMode.RFC4733, self._frames * 20))
            return
        if pt != media.payload_type or media.codec not in ("PCMU", "PCMA"):
            return
        table = ULAW if media.codec == "PCMU" else ALAW
        pcm8 = table[np.frombuffer(payload, dtype=np.uint8)].tobytes()
        self._buffer += resample(pcm8, 8000, 16000)
        while len(self._buffer) >= FRAME_BYTES:
            frame = bytes(self._buffer[:FRAME_BYTES])
            del self._buffer[:FRAME_BYTES]
            self.on_frame(frame, self._frames * 20)
            self._frames += 1

    def start(self, media: NegotiatedMedia) -> None:
        self.started.append(media)

    def update(self, media: NegotiatedMedia) -> None:
        self.updates.append(media)

    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None:
        if not any(u == utterance_id for u, _, _ in self.played):
            self.on_playback(PlaybackReport(utterance_id, False, 0, 0, False, self._frames * 20))
        self.played.append((utterance_id, len(pcm), last))
        if last:
            total = sum(n for u, n, _ in self.played if u == utterance_id) * 1000 // (2 * sample_rate)
            self.on_playback(PlaybackReport(utterance_id, True, total, total, False, self._frames * 20))

    def stop_playback(self, utterance_id: str | None = None) -> None:
        self.stopped.append(utterance_id)

    def stats(self) -> dict[str, float]:
        return {"packets_in": float(self.packets_in)}

    async def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
