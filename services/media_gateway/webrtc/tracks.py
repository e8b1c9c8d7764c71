"""The outbound audio track: 20 ms frames from the playout queue, paced on absolute deadlines."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from dialtone.common.audio import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, SILENCE_FRAME
from dialtone.media_gateway.media.playback import PlaybackQueue
from dialtone.media_gateway.media_types import PlaybackReport

_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


class PlayoutTrack(MediaStreamTrack):
    """aiortc pulls ``recv()`` once per frame; we hand it the queue's next 20 ms (or silence).

    Deadlines are ``start + pts / rate`` (not "sleep 20 ms"), so pacing does not drift
    with scheduling delays. aiortc's Opus encoder resamples our 16 kHz mono to 48 kHz.
    """

    kind = "audio"

    def __init__(self, playout: PlaybackQueue, clock_ms: Callable[[], int],
                 on_reports: Callable[[list[PlaybackReport]], None]) -> None:
        super().__init__()
        self._playout = playout
        self._clock_ms = clock_ms
        self._on_reports = on_reports
        self._start: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError  # aiortc's sender stops on this, as with its own tracks
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += FRAME_SAMPLES
            delay = self._start + self._pts / SAMPLE_RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -10 * FRAME_MS / 1000:
                # Far behind (the loop stalled): skip ahead instead of bursting frames.
                self._start = loop.time() - self._pts / SAMPLE_RATE
        pcm, reports = self._playout.next_frame(self._clock_ms())
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm if pcm is not None else SILENCE_FRAME)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self.frames_sent += 1
        if pcm is not None:
            self.audio_frames_sent += 1
        if reports:
            self._on_reports(reports)
        return frame
