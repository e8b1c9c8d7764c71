"""Barge-in: may the caller's speech (or a key press) interrupt the prompt now playing?

Each prompt carries its policy (from its Say/Play). Speech over a prompt that
allows it interrupts once it has lasted ``backchannel_max_ms`` (decided on the frame
that crosses it) or, when it ends sooner, once its transcript shows words that are
not a backchannel ("mm-hmm", "okay"). ``after_words`` waits for ``min_words`` words
in the partial or final transcript. ``dtmf_only`` is interrupted by a key press
only; ``off`` by nothing. The adapter holds the runtime events of speech under
judgement and forwards them on Interrupt, drops them on Backchannel.

With ``hold_on_speech`` an ``on`` prompt is silenced (held in place) the moment speech
starts over it, before the verdict: the caller hears the prompt stop within the VAD's
onset window instead of after ``backchannel_max_ms``, and a backchannel resumes it where
it stopped, as LiveKit's and Pipecat's "false interruption" handling does. ``OnsetHold``
holds it earlier still, on the first ``hold_after_ms`` of voiced frames, before the segmenter
has decided there is speech (it needs ``start_ratio`` of its start window: 120 ms of 200), and
lets it go on when the window empties without speech starting.
"""

from __future__ import annotations

import dataclasses
import re

from dialtone.speech_gateway.core.events import (
    Backchannel,
    BargeInMode,
    BargeInPolicy,
    BargeInVerdict,
    Interrupt,
)

DEFAULT_BACKCHANNEL_WORDS = frozenset({
    "mm", "mmm", "hmm", "mhm", "mm-hmm", "mmhmm", "uh-huh", "uhhuh", "uh", "um", "ah", "oh",
    "okay", "ok", "yeah", "yep", "right", "alright", "sure", "i see",
})

_WORD_RE = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def words_of(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class BargeInSettings:
    """No defaults: the service's are in its config (``BargeInConfig.settings()`` builds these)."""

    enabled: bool
    backchannel_max_ms: int
    backchannel_max_words: int
    backchannel_words: frozenset[str]   # lower case
    hold_on_speech: bool

    def is_backchannel(self, text: str) -> bool:
        words = words_of(text)
        return (not words) or (len(words) <= self.backchannel_max_words
                               and all(w in self.backchannel_words for w in words))


class BargeIn:
    """One per call. Tracks the prompt now playing and judges speech over it."""

    def __init__(self, settings: BargeInSettings) -> None:
        self.settings = settings
        self._playing: tuple[str, BargeInPolicy] | None = None
        self._judging = False  # speech over the current prompt, verdict not given yet

    @property
    def playing(self) -> str | None:
        return self._playing[0] if self._playing else None

    @property
    def judging(self) -> bool:
        return self._judging

    def prompt_started(self, utterance_id: str, policy: BargeInPolicy) -> None:
        self._playing = (utterance_id, policy)
        self._judging = False

    def prompt_finished(self, utterance_id: str) -> bool:
        """The prompt ended on its own or was stopped. Returns True when speech was under
        judgement: it no longer overlaps a prompt, so the adapter forwards what it held."""
        if self._playing is None or self._playing[0] != utterance_id:
            return False
        self._playing = None
        was_judging, self._judging = self._judging, False
        return was_judging

    def speech_started(self) -> BargeInVerdict | None:
        if self._playing is None:
            return None
        utterance_id, policy = self._playing
        if not self.settings.enabled or policy.mode is BargeInMode.OFF:
            return self._decide(Backchannel(utterance_id, "policy_off"))
        if policy.mode is BargeInMode.DTMF_ONLY:
            return self._decide(Backchannel(utterance_id, "dtmf_only"))
        self._judging = True
        if policy.mode is BargeInMode.ON and self.settings.backchannel_max_ms <= 0:
            return self._decide(Interrupt(utterance_id, "speech"))
        return None

    @property
    def needs_partials(self) -> bool:
        """Speech over an ``after_words`` prompt is being judged: its verdict waits on partial transcripts."""
        return self._judging and self._playing is not None and self._playing[1].mode is BargeInMode.AFTER_WORDS

    def holdable(self) -> str | None:
        """The prompt speech starting now would hold (None: none plays, or it would play on)."""
        if self._judging or self._playing is None or not (self.settings.enabled and self.settings.hold_on_speech):
            return None
        utterance_id, policy = self._playing
        return utterance_id if policy.mode is BargeInMode.ON else None

    def prompt_to_hold(self) -> str | None:
        """The prompt to silence while speech over it is judged (None: let it play on)."""
        if not (self._judging and self._playing and self.settings.hold_on_speech):
            return None
        utterance_id, policy = self._playing
        return utterance_id if policy.mode is BargeInMode.ON else None

    def speech_progress(self, duration_ms: int) -> BargeInVerdict | None:
        """Called on every voiced-state frame with the speech's length so far."""
        if not self._judging or self._playing is None:
            return None
        utterance_id, policy = self._playing
        if policy.mode is BargeInMode.ON and duration_ms >= self.settings.backchannel_max_ms:
            return self._decide(Interrupt(utterance_id, "speech"))
        return None

    def transcript(self, text: str, final: bool) -> BargeInVerdict | None:
        if not self._judging or self._playing is None:
            return None
        utterance_id, policy = self._playing
        words = words_of(text)
        if policy.mode is BargeInMode.AFTER_WORDS:
            needed = max(1, policy.min_words)
            if len(words) >= needed and not self.settings.is_backchannel(text):
                return self._decide(Interrupt(utterance_id, "words"))
            if final:
                return self._decide(Backchannel(utterance_id, "too_few_words"))
            return None
        if not final:
            return None
        if self.settings.is_backchannel(text):
            return self._decide(Backchannel(utterance_id, "backchannel_words" if words else "short"))
        return self._decide(Interrupt(utterance_id, "words"))

    def dtmf(self) -> BargeInVerdict | None:
        if self._playing is None:
            return None
        utterance_id, policy = self._playing
        if not self.settings.enabled or policy.mode is BargeInMode.OFF:
            return None
        return self._decide(Interrupt(utterance_id, "dtmf"))

    def _decide(self, verdict: BargeInVerdict) -> BargeInVerdict:
        self._judging = False
        if isinstance(verdict, Interrupt):
            self._playing = None
        return verdict


class OnsetHold:
    """Hold a prompt on a likely onset (``hold_after_ms`` of voiced frames in the segmenter's start
    window), before speech is decided; release it when the window has no voiced frame left and speech
    never started. Once speech starts the barge-in verdict owns the hold. ``hold_after_ms`` 0: off (the
    hold comes with the start of speech)."""

    def __init__(self, hold_after_ms: int) -> None:
        self.hold_after_ms = hold_after_ms
        self._tentative = False

    def frame(self, onset_voiced_ms: int, in_speech: bool, holdable: bool) -> str | None:
        """One frame: "hold", "release" or None."""
        if in_speech:
            self._tentative = False
            return None
        if not self._tentative:
            if holdable and self.hold_after_ms and onset_voiced_ms >= self.hold_after_ms:
                self._tentative = True
                return "hold"
            return None
        if onset_voiced_ms == 0:
            self._tentative = False
            return "release"
        return None
