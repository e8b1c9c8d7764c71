"""Rendering prompts: TTS through the worker pool, streamed part by part, with a bounded cache of
rendered parts (voice + text -> audio chunks): a prompt's fixed first part ("One moment while I look
up order") is rendered once, and later prompts that start with it begin from the cache while their new
part ("8392.") is synthesized."""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import AsyncIterator

from dialtone.speech_gateway.engines.base import TtsEngine
from dialtone.speech_gateway.engines.pool import EnginePool

log = logging.getLogger(__name__)


_LONG_NUMBER = re.compile(r"\b\d[\d-]*\d\b")


def speakable(text: str, read_digits_from: int) -> str:
    """Numbers of ``read_digits_from`` or more digits are read digit by digit, as callers say
    order and phone numbers ("12345" -> "1 2 3 4 5"); piper would otherwise read "twelve
    thousand ...", which is slower to follow on a phone and harder to recognise. 0 = off."""
    if read_digits_from <= 0:
        return text

    def spell(match: re.Match[str]) -> str:
        digits = match.group(0).replace("-", "")
        return " ".join(digits) if len(digits) >= read_digits_from and digits.isdigit() else match.group(0)

    return _LONG_NUMBER.sub(spell, text)


# The opening clause of a long first sentence ("Got it, | three two five.", "Sorry, | I did not get
# that."): a clause of 2-60 characters ending in , ; or : and followed by a space, with at least
# _MIN_REST characters of the sentence after it. A comma inside a number ("12,345") has no space.
_OPENING_CLAUSE = re.compile(r"^[^.?!,;:]{2,60}[,;:](?=\s)")
_MIN_REST = 3
_SENTENCE_END = re.compile(r"[.?!](\s|$)")
# The words of a first sentence before its first figure ("One moment while I look up order | 8392."):
# at least two words, no sentence end, at most 80 characters. What comes before a figure is usually a
# template's fixed text, so it is rendered (and cached) on its own and the figure renders while it plays.
_BEFORE_FIGURE = re.compile(r"^(?=(?:[^\s.?!\d]+\s+){2})[^.?!\d]{2,80}?(?=\s+\S*\d)")


def speech_parts(text: str) -> list[str]:
    """``text`` as the parts to synthesize one after the other, each cached on its own: its opening clause
    when the first sentence is long enough to be worth it ("Got it, | three two five."), else the words
    before the sentence's first figure ("One moment while I look up order | 8392."), else whole. The TTS
    renders a part before it yields any of it, so the first audio waits for the first part only (piper:
    "Got it," 52 ms, "Got it, three two five." 146 ms), and a fixed first part comes from the cache; the
    rest renders while the first part plays."""
    match = _OPENING_CLAUSE.match(text) or _BEFORE_FIGURE.match(text)
    if match is None:
        return [text]
    rest = text[match.end():].strip()
    sentence_end = _SENTENCE_END.search(rest)
    if len(rest if sentence_end is None else rest[:sentence_end.start()]) < _MIN_REST:
        return [text]
    return [match.group(0), rest]


class PromptCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = max(0, capacity)
        self._items: collections.OrderedDict[tuple[str, str], list[bytes]] = collections.OrderedDict()

    def get(self, voice: str, text: str) -> list[bytes] | None:
        key = (voice, text)
        chunks = self._items.get(key)
        if chunks is not None:
            self._items.move_to_end(key)
        return chunks

    def put(self, voice: str, text: str, chunks: list[bytes]) -> None:
        if self._capacity == 0:
            return
        self._items[(voice, text)] = chunks
        self._items.move_to_end((voice, text))
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class PromptRenderer:
    """``render(text)`` yields s16le chunks at ``sample_rate``; a repeated prompt comes from the cache."""

    def __init__(self, pool: EnginePool[TtsEngine], engine: TtsEngine, cache_entries: int,
                 read_digits_from: int = 0) -> None:
        self._pool = pool
        self._read_digits_from = read_digits_from
        self.engine_name = engine.name
        self.voice = engine.voice
        self.sample_rate = engine.sample_rate
        self.cache = PromptCache(cache_entries)

    def cached(self, text: str) -> list[bytes] | None:
        """The cached audio of ``text``'s first part (its first audio comes from the cache), or None."""
        return self.cache.get(self.voice, speech_parts(speakable(text, self._read_digits_from))[0])

    async def render(self, text: str) -> AsyncIterator[bytes]:
        for part in speech_parts(speakable(text, self._read_digits_from)):
            hit = self.cache.get(self.voice, part)
            if hit is not None:
                for chunk in hit:
                    yield chunk
                continue
            chunks: list[bytes] = []
            async for chunk in self._pool.stream(lambda engine, part=part: engine.synthesize(part)):
                chunks.append(chunk)
                yield chunk
            # only a part rendered whole is cached (leaving the loop early, on barge-in, skips this)
            self.cache.put(self.voice, part, chunks)

    async def prerender(self, texts: list[str]) -> None:
        for text in texts:
            async for _ in self.render(text):
                pass
        if texts:
            log.info("prerendered %d prompts", len(texts))
