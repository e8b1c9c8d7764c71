"""Events the cores emit. Frozen dataclasses, independent of protobuf."""

from __future__ import annotations

import dataclasses
import enum


@dataclasses.dataclass(frozen=True)
class SpeechStarted:
    """Speech began at ``start_ms`` (the first voiced frame of the pre-roll)."""

    start_ms: int
    decided_ms: int  # when the VAD decision was made (the frame that tipped the hysteresis)


@dataclasses.dataclass(frozen=True)
class SilenceBegan:
    """Speech paused long enough to start a speculative decode of the audio so far."""

    at_ms: int  # call time of the first silent frame


@dataclasses.dataclass(frozen=True)
class SpeechResumed:
    """Speech came back after a SilenceBegan: a speculative decode is stale."""

    at_ms: int


@dataclasses.dataclass(frozen=True)
class SpeechEnded:
    """The endpoint fired: speech ran from ``start_ms`` to ``end_ms``."""

    start_ms: int
    end_ms: int
    forced: bool = False  # cut at the maximum utterance length, not by silence
    early: bool = False   # ended at early_stop_ms: the transcript read as a finished sentence

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


SegmenterEvent = SpeechStarted | SilenceBegan | SpeechResumed | SpeechEnded


class BargeInMode(enum.Enum):
    ON = "on"
    OFF = "off"
    DTMF_ONLY = "dtmf_only"
    AFTER_WORDS = "after_words"


@dataclasses.dataclass(frozen=True)
class BargeInPolicy:
    mode: BargeInMode = BargeInMode.ON
    min_words: int = 0


@dataclasses.dataclass(frozen=True)
class Interrupt:
    """Stop the prompt ``utterance_id`` now; ``reason`` is "speech", "words" or "dtmf"."""

    utterance_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Backchannel:
    """Speech over the prompt was judged a backchannel (or not allowed): it does not interrupt."""

    utterance_id: str
    reason: str  # "short", "backchannel_words", "policy_off", "dtmf_only", "too_few_words"


BargeInVerdict = Interrupt | Backchannel
