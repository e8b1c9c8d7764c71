"""Rendering prompts: TTS through the worker pool, streamed part by part, with a bounded cache of
rendered parts (voice + text -> audio chunks): a prompt's fixed first part ("One moment while I look
up order") is rendered once, and later prompts that start with it begin from the cache while their new
part ("8392.") is synthesized.

Parts may also be rendered ahead (``ahead``): an eager reply while the caller's turn is still ending,
and the dialog's fixed prompt openings when a call starts (``openings``, only while the pool is idle). A
prompt whose part is being rendered ahead waits for that rendering instead of starting another.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import re
from collections.abc import AsyncIterator

from dialtone.speech_gateway.engines.base import TtsEngine
from dialtone.speech_gateway.engines.pool import EnginePool, PoolBusy

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


def opening_part(opening: str, read_digits_from: int) -> str | None:
    """The part a prompt that starts with the fixed ``opening`` and goes on with a number is split at
    first ("Got it, your order" -> "Got it,"; "One moment while I look up order" -> itself), or None when
    such a prompt would not be split after it."""
    parts = speech_parts(speakable(f"{opening.strip()} 4 0 0 0.", read_digits_from))
    return parts[0] if len(parts) > 1 else None


@dataclasses.dataclass
class _Ahead:
    task: asyncio.Task[list[bytes] | None]
    waiting: int = 0      # prompts waiting for it; it is not cancelled under them


_OPENINGS_IDLE_POLL_S = 0.05
_OPENINGS_IDLE_FOR_S = 0.5    # the pool idle this long before an opening is rendered
_OPENINGS_MAX_WAIT_S = 30.0   # an opening still not rendered after this (the pool never idle) is left


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
        self._ahead: dict[str, _Ahead] = {}
        self._openings: collections.deque[str] = collections.deque(maxlen=256)
        self._openings_seen: set[str] = set()
        self._openings_task: asyncio.Task[None] | None = None

    def cached(self, text: str) -> list[bytes] | None:
        """The cached audio of ``text``'s first part (its first audio comes from the cache), or None."""
        return self.cache.get(self.voice, self.parts(text)[0])

    def first_audio_from(self, text: str) -> str:
        """Where ``text``'s first audio will come from: "hit" (the cache), "ahead" (a rendering ahead
        already on its way) or "miss"."""
        first = self.parts(text)[0]
        if self.cache.get(self.voice, first) is not None:
            return "hit"
        return "ahead" if self._live_ahead(first) is not None else "miss"

    def parts(self, text: str) -> list[str]:
        return speech_parts(speakable(text, self._read_digits_from))

    async def render(self, text: str) -> AsyncIterator[bytes]:
        for part in self.parts(text):
            hit = self.cache.get(self.voice, part) or await self._wait_ahead(part)
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

    # ---- rendering ahead ----------------------------------------------------------------------

    def ahead(self, texts: list[str]) -> list[str]:
        """Start rendering ``texts`` (each part not cached or already on its way) into the cache; returns
        the parts started, for ``drop``."""
        started = []
        for text in texts:
            for part in self.parts(text):
                if self._live_ahead(part) is not None or self.cache.get(self.voice, part) is not None:
                    continue
                task = asyncio.ensure_future(self._render_part(part))
                self._ahead[part] = _Ahead(task)
                task.add_done_callback(lambda done, part=part: self._ahead_done(part, done))
                started.append(part)
        return started

    def _ahead_done(self, part: str, task: asyncio.Task[list[bytes] | None]) -> None:
        entry = self._ahead.get(part)
        if entry is not None and entry.task is task:
            del self._ahead[part]
        if not task.cancelled() and task.exception() is not None:
            log.warning("rendering ahead failed: %s", task.exception())

    def drop(self, parts: list[str]) -> None:
        """Stop rendering these parts ahead, unless a prompt already waits for one."""
        for part in parts:
            ahead = self._ahead.get(part)
            if ahead is not None and not ahead.waiting:
                ahead.task.cancel()

    async def _render_part(self, part: str) -> list[bytes] | None:
        chunks: list[bytes] = []
        try:
            async for chunk in self._pool.stream(lambda engine: engine.synthesize(part)):
                chunks.append(chunk)
        except (PoolBusy, ValueError, RuntimeError) as exc:
            log.info("not rendered ahead: %s", exc)
            return None
        self.cache.put(self.voice, part, chunks)
        return chunks

    def _live_ahead(self, part: str) -> _Ahead | None:
        """The rendering ahead of ``part`` on this event loop (one left by a loop that has ended, as a
        test's, is forgotten)."""
        ahead = self._ahead.get(part)
        if ahead is not None and ahead.task.get_loop() is not asyncio.get_running_loop():
            del self._ahead[part]
            return None
        return ahead

    async def _wait_ahead(self, part: str) -> list[bytes] | None:
        ahead = self._live_ahead(part)
        if ahead is None:
            return None
        ahead.waiting += 1
        try:
            await asyncio.wait({ahead.task})
        finally:
            ahead.waiting -= 1
        return None if ahead.task.cancelled() or ahead.task.exception() else ahead.task.result()

    def openings(self, openings: list[str]) -> None:
        """The dialog's fixed prompt openings: render each once, in the background, while the pool is
        idle (never ahead of a call's own prompts)."""
        for opening in openings:
            part = opening_part(opening, self._read_digits_from)
            if part is None or part in self._openings_seen or len(self._openings_seen) >= 4096:
                continue
            self._openings_seen.add(part)
            self._openings.append(part)
        task = self._openings_task
        if self._openings and (task is None or task.done() or task.get_loop() is not asyncio.get_running_loop()):
            self._openings_task = asyncio.ensure_future(self._render_openings())

    async def _render_openings(self) -> None:
        loop = asyncio.get_running_loop()
        while self._openings:
            part = self._openings.popleft()
            if self.cache.get(self.voice, part) is not None or self._live_ahead(part) is not None:
                continue
            # idle for a while, not just now: the call's greeting comes right after its openings
            give_up, idle_since = loop.time() + _OPENINGS_MAX_WAIT_S, loop.time()
            while loop.time() < give_up and loop.time() - idle_since < _OPENINGS_IDLE_FOR_S:
                await asyncio.sleep(_OPENINGS_IDLE_POLL_S)
                if not self._pool.idle:
                    idle_since = loop.time()
            if self._pool.idle:
                self.ahead([part])
                await self._wait_ahead(part)

    def close(self) -> None:
        if self._openings_task is not None:
            self._openings_task.cancel()
        for ahead in list(self._ahead.values()):
            ahead.task.cancel()

    async def prerender(self, texts: list[str]) -> None:
        for text in texts:
            async for _ in self.render(text):
                pass
        if texts:
            log.info("prerendered %d prompts", len(texts))
