"""Endpointing: per-frame VAD decisions in, speech start/pause/resume/end events out.

The hysteresis is the one of py-webrtcvad's ``vad_collector``: speech starts when
``start_ratio`` of the last ``start_window_ms`` frames are voiced (the window is the
pre-roll, so the word onset is kept); it ends after ``stop_ms`` of continuous
silence. ``speculative_ms`` of silence (less than ``stop_ms``) emits SilenceBegan so
the adapter can start decoding before the endpoint fires; SpeechResumed says that
decode is stale. Time is an argument: every frame comes with its call time.

A pause may end the utterance after another silence than ``stop_ms``: ``end_after(ms)`` sets it for
the pause in progress (the turn core, core/turn.py, chooses it from the pause's speculative transcript:
shorter when it holds the expected answer, longer when it is unfinished); speech that resumes restores
``stop_ms``. ``mark_complete`` is ``end_after(early_stop_ms)``: a transcript that reads as a finished
sentence (``looks_complete``: a full stop, a question mark or an exclamation mark, not a trailing "..."
or comma), as LiveKit's turn detector and Deepgram's ``endpointing`` use the transcript.
"""

from __future__ import annotations

import collections
import dataclasses
import re

from dialtone.speech_gateway.core.events import (
    SegmenterEvent,
    SilenceBegan,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)


@dataclasses.dataclass(frozen=True)
class SegmenterSettings:
    """The timings as the segmenter counts them (from the VAD's report of silence). No defaults: the
    service's are in its config (``VadConfig``), turned into these by ``call.segmenter_settings``."""

    frame_ms: int
    start_window_ms: int
    start_ratio: float
    stop_ms: int
    speculative_ms: int
    max_utterance_ms: int
    early_stop_ms: int

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
        if self.early_stop_ms and self.early_stop_ms < self.speculative_ms:
            # above stop_ms it is allowed and has no effect (a lowered stop_ms needs no second edit)
            raise ValueError("early_stop_ms must be 0 (off) or at least speculative_ms")
        if self.max_utterance_ms <= self.start_window_ms:
            raise ValueError("max_utterance_ms must exceed start_window_ms")


_COMPLETE_RE = re.compile(r"\w[\"')\]]*[.?!][\"')\]]*$")


def looks_complete(text: str) -> bool:
    """A transcript that ends a sentence: "1, 2, 3, 4, 5." yes; "My order number is..." no."""
    return bool(_COMPLETE_RE.search(text.strip()))


class Segmenter:
    """One per call. ``feed(is_speech, now_ms)`` once per frame; ``now_ms`` is the frame's start."""

    def __init__(self, settings: SegmenterSettings) -> None:
        self.settings = settings
        s = self.settings
        self._window: collections.deque[tuple[int, bool]] = collections.deque(
            maxlen=max(1, s.start_window_ms // s.frame_ms))
        self._start_voiced = max(1, round(self._window.maxlen * s.start_ratio))  # type: ignore[operator]
        self._stop_frames = max(1, s.stop_ms // s.frame_ms)
        self._early_frames = max(1, s.early_stop_ms // s.frame_ms) if s.early_stop_ms else 0
        self._end_frames = self._stop_frames   # silence that ends this pause's turn (end_after sets it)
        self._early = False                    # ... and it ends early (the transcript was judged complete)
        self._speculative_frames = max(1, s.speculative_ms // s.frame_ms)
        self.in_speech = False
        self._start_ms = 0
        self._silent_frames = 0
        self._silence_start_ms = 0
        self._paused = False
        self._onset_voiced = 0   # voiced frames in the start window, before speech has started

    @property
    def onset_voiced_ms(self) -> int:
        """Voiced audio in the start window while no speech has started yet (0 in speech): a likely onset
        before the segmenter decides on it."""
        return self._onset_voiced * self.settings.frame_ms

    @property
    def paused(self) -> bool:
        """In speech, and its silence has lasted speculative_ms (a pause is being judged)."""
        return self.in_speech and self._paused

    @property
    def speech_start_ms(self) -> int | None:
        return self._start_ms if self.in_speech else None

    def feed(self, is_speech: bool, now_ms: int) -> list[SegmenterEvent]:
        s = self.settings
        if not self.in_speech:
            self._window.append((now_ms, is_speech))
            voiced = sum(1 for _, v in self._window if v)
            self._onset_voiced = voiced
            if voiced >= self._start_voiced:
                first_voiced = next(t for t, v in self._window if v)
                self.in_speech = True
                self._start_ms = first_voiced
                self._silent_frames = 0
                self._paused = False
                self._reset_end()
                self._window.clear()
                self._onset_voiced = 0
                return [SpeechStarted(start_ms=first_voiced, decided_ms=now_ms)]
            return []
        events: list[SegmenterEvent] = []
        if is_speech:
            if self._paused:
                events.append(SpeechResumed(at_ms=now_ms))
                self._paused = False
            self._silent_frames = 0
            self._reset_end()
        else:
            if self._silent_frames == 0:
                self._silence_start_ms = now_ms
            self._silent_frames += 1
            if self._silent_frames == self._speculative_frames and not self._paused:
                self._paused = True
                events.append(SilenceBegan(at_ms=self._silence_start_ms))
            if self._silent_frames >= self._end_frames:
                events.append(self._end(self._silence_start_ms, forced=False, early=self._early))
                return events
        if now_ms + s.frame_ms - self._start_ms >= s.max_utterance_ms:
            events.append(self._end(now_ms + s.frame_ms, forced=True))
        return events

    def mark_complete(self) -> list[SegmenterEvent]:
        """The speculative transcript of the current pause reads as finished: end at ``early_stop_ms``
        of silence, or now if the pause is that long already. Ignored when early end is off or the
        caller is talking again."""
        if not self._early_frames or self._early_frames >= self._stop_frames:
            return []
        return self.end_after(self.settings.early_stop_ms, early=True)

    def end_after(self, silence_ms: int, early: bool = False) -> list[SegmenterEvent]:
        """This pause ends the utterance after ``silence_ms`` of silence instead of ``stop_ms`` (longer or
        shorter), now if it has lasted that long; speech that resumes restores ``stop_ms``. Ignored while
        the caller is talking."""
        if not (self.in_speech and self._paused):
            return []
        self._end_frames = max(1, silence_ms // self.settings.frame_ms)
        self._early = early
        if self._silent_frames >= self._end_frames:
            return [self._end(self._silence_start_ms, forced=False, early=early)]
        return []

    def _reset_end(self) -> None:
        self._end_frames = self._stop_frames
        self._early = False

    def flush(self, now_ms: int) -> list[SegmenterEvent]:
        """The stream ended: close an utterance in progress."""
        if not self.in_speech:
            return []
        end = self._silence_start_ms if self._silent_frames else now_ms
        return [self._end(end, forced=True)]

    def _end(self, end_ms: int, forced: bool, early: bool = False) -> SpeechEnded:
        event = SpeechEnded(start_ms=self._start_ms, end_ms=max(end_ms, self._start_ms), forced=forced, early=early)
        self.in_speech = False
        self._silent_frames = 0
        self._paused = False
        self._reset_end()
        self._window.clear()
        return event
