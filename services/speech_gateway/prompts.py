"""Rendering prompts: TTS through the worker pool, streamed sentence by sentence, with
a bounded cache of rendered prompts (engine + voice + text -> audio chunks)."""

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
        return self.cache.get(self.voice, speakable(text, self._read_digits_from))

    async def render(self, text: str) -> AsyncIterator[bytes]:
        text = speakable(text, self._read_digits_from)
        hit = self.cache.get(self.voice, text)
        if hit is not None:
            for chunk in hit:
                yield chunk
            return
        chunks: list[bytes] = []
        complete = False
        try:
            async for chunk in self._pool.stream(lambda engine: engine.synthesize(text)):
                chunks.append(chunk)
                yield chunk
            complete = True
        finally:
            if complete:  # an interrupted render is not a whole prompt
                self.cache.put(self.voice, text, chunks)

    async def prerender(self, texts: list[str]) -> None:
        for text in texts:
            async for _ in self.render(text):
                pass
        if texts:
            log.info("prerendered %d prompts", len(texts))
