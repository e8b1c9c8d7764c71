"""Endpointing: per-frame VAD decisions in, speech start/pause/resume/end events out.

The hysteresis is the one of py-webrtcvad's ``vad_collector``: speech starts when
``start_ratio`` of the last ``start_window_ms`` frames are voiced (the window is the
pre-roll, so the word onset is kept); it ends after ``stop_ms`` of continuous
silence. ``speculative_ms`` of silence (less than ``stop_ms``) emits SilenceBegan so
the adapter can start decoding before the endpoint fires; SpeechResumed says that
decode is stale. Time is an argument: every frame comes with its call time.
"""

from __future__ import annotations

import collections
import dataclasses

from dialtone.speech_gateway.core.events import (
    SegmenterEvent,
    SilenceBegan,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)


@dataclasses.dataclass(frozen=True)
class SegmenterSettings:
    frame_ms: int = 20
    start_window_ms: int = 200
    start_ratio: float = 0.6
    stop_ms: int = 600
    speculative_ms: int = 240
    max_utterance_ms: int = 15000

    def __post_init__(self) -> None:
        if self.frame_ms <= 0:
            raise ValueError("frame_ms must be positive")
        if self.start_window_ms < self.frame_ms:
            raise ValueError("start_window_ms must be at least one frame")
        if not 0.0 < self.start_ratio <= 1.0:
            raise ValueError("start_ratio must be in (0, 1]")
        if self.stop_ms < self.frame_ms:
            raise ValueError("stop_ms must be at least one frame")
        if not 0 < self.speculative_ms <= self.stop_ms:
            raise ValueError("speculative_ms must be positive and not above stop_ms")
        if self.max_utterance_ms <= self.start_window_ms:
            raise ValueError("max_utterance_ms must exceed start_window_ms")


class Segmenter:
    """One per call. ``feed(is_speech, now_ms)`` once per frame; ``now_ms`` is the frame's start."""

    def __init__(self, settings: SegmenterSettings | None = None) -> None:
        self.settings = settings or SegmenterSettings()
        s = self.settings
        self._window: collections.deque[tuple[int, bool]] = collections.deque(
            maxlen=max(1, s.start_window_ms // s.frame_ms))
        self._start_voiced = max(1, round(self._window.maxlen * s.start_ratio))  # type: ignore[operator]
        self._stop_frames = max(1, s.stop_ms // s.frame_ms)
        self._speculative_frames = max(1, s.speculative_ms // s.frame_ms)
        self.in_speech = False
        self._start_ms = 0
        self._silent_frames = 0
        self._silence_start_ms = 0
        self._paused = False

    @property
    def speech_start_ms(self) -> int | None:
        return self._start_ms if self.in_speech else None

    def feed(self, is_speech: bool, now_ms: int) -> list[SegmenterEvent]:
        s = self.settings
        if not self.in_speech:
            self._window.append((now_ms, is_speech))
            voiced = sum(1 for _, v in self._window if v)
            if voiced >= self._start_voiced:
                first_voiced = next(t for t, v in self._window if v)
                self.in_speech = True
                self._start_ms = first_voiced
                self._silent_frames = 0
                self._paused = False
                self._window.clear()
                return [SpeechStarted(start_ms=first_voiced, decided_ms=now_ms)]
            return []
        events: list[SegmenterEvent] = []
        if is_speech:
            if self._paused:
                events.append(SpeechResumed(at_ms=now_ms))
                self._paused = False
            self._silent_frames = 0
        else:
            if self._silent_frames == 0:
                self._silence_start_ms = now_ms
            self._silent_frames += 1
            if self._silent_frames == self._speculative_frames and not self._paused:
                self._paused = True
                events.append(SilenceBegan(at_ms=self._silence_start_ms))
            if self._silent_frames >= self._stop_frames:
                events.append(self._end(self._silence_start_ms, forced=False))
                return events
        if now_ms + s.frame_ms - self._start_ms >= s.max_utterance_ms:
            events.append(self._end(now_ms + s.frame_ms, forced=True))
        return events

    def flush(self, now_ms: int) -> list[SegmenterEvent]:
        """The stream ended: close an utterance in progress."""
        if not self.in_speech:
            return []
        end = self._silence_start_ms if self._silent_frames else now_ms
        return [self._end(end, forced=True)]

    def _end(self, end_ms: int, forced: bool) -> SpeechEnded:
        event = SpeechEnded(start_ms=self._start_ms, end_ms=max(end_ms, self._start_ms), forced=forced)
        self.in_speech = False
        self._silent_frames = 0
        self._paused = False
        self._window.clear()
        return event
