"""End of turn: has the caller finished? Decided from the silence so far, the speculative transcript of
the pause, and what the dialog's state expects (sans-I/O).

The segmenter counts silence; this core chooses, per pause, how much silence ends the turn:

- the pause's speculative transcript holds what the state expects (4 of 4 digits, a clear yes or no, a
  listed option; with no expectation: a finished sentence that does not end in a number) -> ``complete``:
  the turn ends as soon as that verdict is in (``complete_ms``);
- it is unfinished (fewer digits than expected, a trailing "and", "is", "um", "...") -> ``incomplete``:
  the turn waits ``incomplete_ms`` for the caller to go on ("my order number is ... 4 5 ... 6 7"); more
  digits than the state's ``max_length`` are not unfinished (no more digits can make them fit);
- neither -> ``other_ms`` (``vad.stop_ms``).

While a state expects something (or an end-of-turn model judges every pause) and the pause's verdict is
not in yet, the turn does not end before ``incomplete_ms``: ending at ``other_ms`` without a transcript
is what cut callers off mid-number.

Times are milliseconds of silence after the caller's speech; the VAD reports silence ``hangover_ms``
late, so the segmenter is given each less the hangover. Events in: frames (VAD decision, call time),
verdicts (pause, completeness), the expectation; events out: the segmenter's (speech started, start a
speculative decode, drop it, the turn ended).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from collections.abc import Mapping
from typing import Any

from dialtone.common.errors import quote_prefix
from dialtone.common.limits import loads_json
from dialtone.language.registry import ENTITY_TYPES, extract, validate_constraints
from dialtone.speech_gateway.core.barge_in import words_of
from dialtone.speech_gateway.core.events import (
    SegmenterEvent,
    SilenceBegan,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)
from dialtone.speech_gateway.core.segmenter import Segmenter, SegmenterSettings, looks_complete


class Completeness(enum.Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    OTHER = "other"


# The last word of someone who has not finished: conjunctions, prepositions, articles, possessives,
# fillers, a copula ("my number is"), and words that announce a number ("number", "code", "double").
CONTINUING_WORDS = frozenset({
    "and", "or", "but", "so", "because", "then", "plus", "is", "are", "was", "were", "the", "a", "an", "my",
    "your", "our", "its", "it's", "to", "of", "for", "with", "at", "in", "on", "from", "by", "as", "than",
    "that", "which", "if", "when", "um", "uh", "er", "erm", "hmm", "like", "number", "code", "double",
    "triple", "dash", "hyphen", "point", "minus",
})
_TRAILING_MARKS = ("...", "\u2026", ",", "-", ":", ";")
_DIGIT_WORDS = frozenset({"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                          "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
                          "eighty", "ninety", "hundred", "thousand"})
# A number that is not (yet) the expected one, at the end of these, may go on: "4 5 ... 6 7".
NUMERIC_ENTITIES = frozenset({"digits", "number", "phone_number", "amount", "alphanumeric"})
# Dates and times are extracted relative to a clock; whether one is there does not depend on which.
_REFERENCE_NOW = datetime.datetime(2024, 1, 1, 12, 0)
_HAS_FIGURE = re.compile(r"\d")
MAX_CONSTRAINTS_CHARS = 4096


@dataclasses.dataclass(frozen=True)
class EndOfTurn:
    """Silence after the caller's speech (ms) that ends the turn, by the pause's verdict. The service's
    defaults are its config's (``VadConfig``: early_stop_ms, stop_ms, incomplete_stop_ms)."""

    complete_ms: int
    other_ms: int
    incomplete_ms: int

    def __post_init__(self) -> None:
        if min(self.complete_ms, self.other_ms, self.incomplete_ms) < 0:
            raise ValueError("end-of-turn silences must not be negative")
        if not self.complete_ms <= self.other_ms <= self.incomplete_ms:
            raise ValueError("end-of-turn silences must be complete_ms <= other_ms <= incomplete_ms")

    def merged(self, complete_ms: int = 0, other_ms: int = 0, incomplete_ms: int = 0) -> EndOfTurn:
        """These settings with the non-zero ones given instead (a state's tuning over the defaults)."""
        return EndOfTurn(complete_ms or self.complete_ms, other_ms or self.other_ms,
                         incomplete_ms or self.incomplete_ms)


@dataclasses.dataclass(frozen=True)
class Expectation:
    """What the listening state expects: an entity type of dialtone.language and its constraints."""

    entity: str
    constraints: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    # the state's end-of-turn silences; 0 = the gateway's
    complete_ms: int = 0
    other_ms: int = 0
    incomplete_ms: int = 0

    @classmethod
    def parse(cls, entity: str, constraints_json: str = "", complete_ms: int = 0, other_ms: int = 0,
              incomplete_ms: int = 0) -> Expectation:
        """From the contract's fields; ValueError with a short reason when the type or constraints are wrong."""
        if entity not in ENTITY_TYPES:
            raise ValueError(f"unknown entity type {quote_prefix(entity)}")
        constraints: Any = {}
        if constraints_json:
            if len(constraints_json) > MAX_CONSTRAINTS_CHARS:
                raise ValueError(f"constraints of {entity} are {len(constraints_json)} characters; "
                                 f"the limit is {MAX_CONSTRAINTS_CHARS}")
            try:
                constraints = loads_json(constraints_json)
            except ValueError as exc:
                raise ValueError(f"constraints of {entity} are not JSON: {exc}") from None
            if not isinstance(constraints, dict):
                raise ValueError(f"constraints of {entity} must be a JSON object")
        problems = validate_constraints(entity, constraints)
        if problems:
            raise ValueError(problems[0])
        return cls(entity, constraints, complete_ms, other_ms, incomplete_ms)

    def holds(self, text: str) -> bool:
        """The transcript already holds a value of the expected type that fits the constraints."""
        return extract(self.entity, text, constraints=self.constraints, now=_REFERENCE_NOW) is not None


def _too_many_digits(text: str, expectation: Expectation) -> bool:
    """A digit string already longer than the state's ``max_length``: what a recognizer's repetition
    ("1, 3, 2, 2, 2, 3, 2" for 1 3 2 2 2) looks like, or a caller giving something else."""
    max_length = expectation.constraints.get("max_length") if expectation.entity == "digits" else None
    if not isinstance(max_length, int):
        return False
    digits = extract("digits", text, constraints={})
    return digits is not None and len(str(digits)) > max_length


def _ends_in_number(words: list[str]) -> bool:
    return bool(words) and (bool(_HAS_FIGURE.search(words[-1])) or words[-1] in _DIGIT_WORDS)


def judge(text: str, expectation: Expectation | None) -> Completeness:
    """Has the caller finished, by the transcript of the pause? (A pure function of text; cheap for every
    type but dates, which the adapter runs off the event loop with the decode.)"""
    stripped = text.strip()
    words = words_of(stripped)
    if not words:
        return Completeness.OTHER
    if stripped.endswith(_TRAILING_MARKS) or words[-1] in CONTINUING_WORDS:
        return Completeness.INCOMPLETE
    if expectation is not None:
        if expectation.holds(stripped):
            return Completeness.COMPLETE
        if expectation.entity in NUMERIC_ENTITIES and _ends_in_number(words):
            if _too_many_digits(stripped, expectation):
                return Completeness.OTHER   # more digits cannot make it fit: waiting longer only delays the retry
            return Completeness.INCOMPLETE
        return Completeness.OTHER
    # no expectation: a finished sentence ends the turn early, but not a bare number ("4 5 6." may go on)
    if looks_complete(stripped) and not _ends_in_number(words):
        return Completeness.COMPLETE
    return Completeness.OTHER


def with_turn_model(text_verdict: Completeness, probability: float | None, threshold: float) -> Completeness:
    """The transcript's verdict, unless it settles nothing (OTHER): then the audio model's, which hears
    what words do not (a falling "...my order." against a level "...my order"). None: no model."""
    if text_verdict is not Completeness.OTHER or probability is None:
        return text_verdict
    return Completeness.COMPLETE if probability >= threshold else Completeness.INCOMPLETE


@dataclasses.dataclass(frozen=True)
class TurnSettings:
    """Built from the service's config by ``call.turn_settings``; what the config does not set has its
    default here."""

    segmenter: SegmenterSettings
    end_of_turn: EndOfTurn
    hangover_ms: int              # how late the VAD reports silence; taken off every end-of-turn silence
    early_end: bool               # a complete verdict may end the turn before other_ms
    # A pause begins (and its speculative decode starts) after quiet_ms of frames quieter than the
    # utterance's loudest by quiet_below_peak_db and below quiet_max_dbfs, when that comes before the VAD's
    # report (~110 ms late for webrtcvad); 0 = off. Noise above those levels leaves it to the VAD.
    quiet_ms: int
    quiet_below_peak_db: float = 30.0
    quiet_max_dbfs: float = -45.0
    # every pause has a verdict worth waiting for (an end-of-turn model judges what the words leave
    # open), as a pause under an expectation does: no end at other_ms before it is in
    await_verdict: bool = False


class TurnCore:
    """One per call: frames (VAD decision, level, call time), verdicts and the expectation in; segmenter
    events out (a pause may begin by level before the VAD reports it: then the VAD's SilenceBegan for it is
    not repeated, and SpeechEnded ends the speech where the quiet began)."""

    def __init__(self, settings: TurnSettings) -> None:
        self.settings = settings
        self._segmenter = Segmenter(settings.segmenter)
        self._expectation: Expectation | None = None
        self._pause_ms: int | None = None    # call time of the silence now being judged
        self._quiet_frames = max(1, settings.quiet_ms // settings.segmenter.frame_ms) if settings.quiet_ms else 0
        self._peak_dbfs = float("-inf")      # the utterance's loudest frame so far
        self._quiet_run = 0
        self._quiet_start = 0
        self._by_level = False               # the pause in progress began by level, before the VAD's report
        self._pending: Completeness | None = None   # its verdict, when it came before the VAD's report

    @property
    def in_speech(self) -> bool:
        return self._segmenter.in_speech

    @property
    def onset_voiced_ms(self) -> int:
        return self._segmenter.onset_voiced_ms

    @property
    def pause_ms(self) -> int | None:
        """Call time of the pause now being judged (None: the caller is talking, or no speech)."""
        return self._pause_ms

    @property
    def expectation(self) -> Expectation | None:
        return self._expectation

    def expect(self, expectation: Expectation | None) -> None:
        """The state now listening expects this (None: nothing in particular); applies from the next pause.
        ValueError (and no change) when its end-of-turn silences do not fit with the defaults."""
        if expectation is not None:
            self._merged(expectation)
        self._expectation = expectation

    def _merged(self, e: Expectation) -> EndOfTurn:
        return self.settings.end_of_turn.merged(e.complete_ms, e.other_ms, e.incomplete_ms)

    def end_of_turn(self) -> EndOfTurn:
        return self.settings.end_of_turn if self._expectation is None else self._merged(self._expectation)

    def _silence_ms(self, after_speech_ms: int) -> int:
        """Silence after the speech -> as the segmenter counts it (from the VAD's late report)."""
        return max(self.settings.segmenter.frame_ms, after_speech_ms - self.settings.hangover_ms)

    def frame(self, is_speech: bool, now_ms: int, level_dbfs: float | None = None,
              may_pause_early: bool = True) -> list[SegmenterEvent]:
        """One frame: the VAD's decision, its level in dBFS (None: not measured), and whether a pause may
        begin by level now (the adapter says no while its ASR workers are busy: a decode would only queue)."""
        out: list[SegmenterEvent] = []
        for event in self._segmenter.feed(is_speech, now_ms):
            if isinstance(event, SpeechStarted):
                self._peak_dbfs, self._quiet_run = float("-inf"), 0
                out.append(event)
            elif isinstance(event, SilenceBegan):
                if not self._by_level:
                    self._pause_ms = event.at_ms
                    out.append(event)
                if self._expectation is not None or self.settings.await_verdict:   # no end before the verdict
                    self._segmenter.end_after(self._silence_ms(self.end_of_turn().incomplete_ms))
                if self._pending is not None:
                    out += self._apply(self._pending)
            elif isinstance(event, SpeechEnded):
                out.append(self._ended(event))
            else:   # SpeechResumed
                self._pause_ms, self._by_level, self._pending = None, False, None
                out.append(event)
        if self._quiet_frames and level_dbfs is not None and self._segmenter.in_speech:
            out += self._level(level_dbfs, now_ms, may_pause_early)
        return out

    def _level(self, level_dbfs: float, now_ms: int, may_pause_early: bool) -> list[SegmenterEvent]:
        s = self.settings
        if level_dbfs >= min(s.quiet_max_dbfs, self._peak_dbfs - s.quiet_below_peak_db):
            self._peak_dbfs = max(self._peak_dbfs, level_dbfs)
            self._quiet_run = 0
            if self._by_level and not self._segmenter.paused:   # talking again before the VAD said otherwise
                self._pause_ms, self._by_level, self._pending = None, False, None
                return [SpeechResumed(at_ms=now_ms)]
            return []
        self._quiet_run += 1
        if self._quiet_run == 1:
            self._quiet_start = now_ms
        if self._quiet_run >= self._quiet_frames and self._pause_ms is None and may_pause_early:
            self._pause_ms, self._by_level = self._quiet_start, True
            return [SilenceBegan(at_ms=self._quiet_start)]
        return []

    def _ended(self, event: SpeechEnded) -> SpeechEnded:
        if self._by_level and not event.forced:
            event = dataclasses.replace(event, end_ms=self._pause_ms)   # the speech ended where the quiet began
        self._pause_ms, self._by_level, self._pending = None, False, None
        return event

    def verdict(self, pause_ms: int, completeness: Completeness) -> list[SegmenterEvent]:
        """The speculative transcript of the pause that began at ``pause_ms`` was judged. A verdict for a
        pause the caller has since talked through is stale and ignored; one that comes before the VAD has
        reported the pause waits for that report."""
        if pause_ms != self._pause_ms or not self._segmenter.in_speech:
            return []
        if not self._segmenter.paused:
            self._pending = completeness
            return []
        return self._apply(completeness)

    def _apply(self, completeness: Completeness) -> list[SegmenterEvent]:
        self._pending = None
        eot = self.end_of_turn()
        if completeness is Completeness.COMPLETE and self.settings.early_end:
            wait = max(self._silence_ms(eot.complete_ms), self.settings.segmenter.speculative_ms)
            events = self._segmenter.end_after(wait, early=True)
        elif completeness is Completeness.INCOMPLETE:
            events = self._segmenter.end_after(self._silence_ms(eot.incomplete_ms))
        else:
            events = self._segmenter.end_after(self._silence_ms(eot.other_ms))
        return [self._ended(e) if isinstance(e, SpeechEnded) else e for e in events]

    def flush(self, now_ms: int) -> list[SegmenterEvent]:
        events = [self._ended(e) if isinstance(e, SpeechEnded) else e for e in self._segmenter.flush(now_ms)]
        self._pause_ms, self._by_level, self._pending = None, False, None
        return events
