"""Eager replies (sans-I/O): the runtime's reply to a pause's speculative transcript is rendered while
the caller's turn is still ending, and spoken only if the turn ends with the same words.

The speech gateway sends the pause's transcript as provisional; the runtime answers with the texts its
dialog would say (PrepareReply) and changes nothing. Rendering them ahead puts them in the prompt cache,
so when the turn ends with the same words the dialog's own Say of the same text starts from there
(committed). If the caller talks on, or the turn ends with other words, the rendering is dropped
(cancelled): the caller is never answered for words they did not finish, since only the dialog's real
transition ever says anything.

Events in: ``provisional`` (a transcript sent, its event seq), ``prepared`` (the runtime's answer),
``talked_on`` (the pause was not the end), ``turn_ended`` (the final words), ``said`` (a Say). Commands
out: ``RenderAhead`` and ``DropAhead``.
"""

from __future__ import annotations

import dataclasses
import enum


class EagerOutcome(enum.Enum):
    PREPARED = "prepared"
    COMMITTED = "committed"
    CANCELLED = "cancelled"
    UNUSED = "unused"


@dataclasses.dataclass(frozen=True)
class RenderAhead:
    texts: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DropAhead:
    texts: tuple[str, ...]
    outcome: EagerOutcome   # CANCELLED or UNUSED


EagerCommand = RenderAhead | DropAhead


@dataclasses.dataclass
class _Prepared:
    words: str                  # the provisional transcript it answers
    texts: list[str]            # what the dialog would say, not said yet
    turn_ended: bool = False    # the turn ended with these words: a Say of one of the texts commits it


class EagerReplies:
    """One per call."""

    def __init__(self) -> None:
        self._asked: tuple[int, str] | None = None   # (event seq, words) of the provisional transcript sent
        self._ended_with: str | None = None           # the turn's final words, when they came before the answer
        self._prepared: _Prepared | None = None

    @property
    def rendering(self) -> tuple[str, ...]:
        return tuple(self._prepared.texts) if self._prepared is not None else ()

    def provisional(self, seq: int, words: str) -> list[EagerCommand]:
        """A pause's speculative transcript went to the runtime as event ``seq``."""
        out = self._drop(EagerOutcome.CANCELLED)
        self._asked, self._ended_with = (seq, words), None
        return out

    def prepared(self, for_seq: int, texts: list[str]) -> list[EagerCommand]:
        """The runtime's answer to event ``for_seq``: what the dialog would say."""
        if self._asked is None or self._asked[0] != for_seq or not texts:
            return []   # an answer to a pause the caller has since talked through
        words = self._asked[1]
        self._asked = None
        if self._ended_with is not None and self._ended_with != words:
            self._ended_with = None
            return []   # the turn already ended with other words
        self._prepared = _Prepared(words, list(texts), turn_ended=self._ended_with is not None)
        self._ended_with = None
        return [RenderAhead(tuple(texts))]

    def talked_on(self) -> list[EagerCommand]:
        """The caller went on talking (the pause was not the end), or began a new turn."""
        self._asked, self._ended_with = None, None
        return self._drop(EagerOutcome.CANCELLED)

    def turn_ended(self, words: str) -> list[EagerCommand]:
        """The turn ended; ``words`` is its final transcript."""
        if self._asked is not None:
            if self._asked[1] == words:
                self._ended_with = words   # the runtime's answer is still on its way
            else:
                self._asked = None
        if self._prepared is None:
            return []
        if self._prepared.words != words:
            return self._drop(EagerOutcome.CANCELLED)
        self._prepared.turn_ended = True
        return []

    def said(self, text: str) -> tuple[EagerOutcome | None, list[EagerCommand]]:
        """The dialog says ``text``: COMMITTED when it was rendered ahead for the words the turn ended
        with; UNUSED (and the rest dropped) when the dialog said something else after such a turn."""
        prepared = self._prepared
        if prepared is None or not prepared.turn_ended:
            return None, []
        if text in prepared.texts:
            prepared.texts.remove(text)
            if not prepared.texts:
                self._prepared = None
            return EagerOutcome.COMMITTED, []
        return None, self._drop(EagerOutcome.UNUSED)

    def _drop(self, outcome: EagerOutcome) -> list[EagerCommand]:
        prepared, self._prepared = self._prepared, None
        if prepared is None or not prepared.texts:
            return []
        return [DropAhead(tuple(prepared.texts), outcome)]
