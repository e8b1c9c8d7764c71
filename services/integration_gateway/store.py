"""Where breaker, rate-limit and idempotency state lives, behind one interface.

A store applies a pure update ``fn(current) -> (new, result)`` to one key
atomically: in this process (``MemoryStore``, one machine) or in Redis with
WATCH/MULTI (``RedisStore``, shared by every replica of a cluster). The cores in
``core/`` are those update functions, so both stores run the same logic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class Delete:
    """Returned as ``new`` by an update to remove the key."""


DELETE = Delete()

# new value (None = leave as is, DELETE = remove), result for the caller
Update = Callable[[dict | None], tuple[dict | Delete | None, T]]


class StateStore(Protocol):
    async def transact(self, key: str, fn: Update[T], ttl_s: float) -> T:
        """Apply ``fn`` to the value at ``key`` atomically; a written value expires after ``ttl_s``."""

    async def get(self, key: str) -> dict | None:
        ...

    async def close(self) -> None:
        ...


class MemoryStore:
    """State of one process. Atomic because updates are synchronous on the event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 200_000) -> None:
        self._values: dict[str, tuple[dict, float]] = {}
        self._clock = clock
        self._max_entries = max_entries
        self._next_purge = 0.0

    def _current(self, key: str) -> dict | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._values[key]
            return None
        return entry[0]

    async def transact(self, key: str, fn: Update[T], ttl_s: float) -> T:
        new, result = fn(self._current(key))
        if isinstance(new, Delete):
            self._values.pop(key, None)
        elif new is not None:
            self._values[key] = (new, self._clock() + ttl_s)
        if len(self._values) > self._max_entries:
            self._bound()
        return result

    async def get(self, key: str) -> dict | None:
        return self._current(key)

    def _bound(self) -> None:
        """Drop expired entries (at most once a second: it is a full scan), then, if still too many,
        the oldest idempotency records: a bounded memory beats replaying a day-old key."""
        now = self._clock()
        if now >= self._next_purge:
            self._next_purge = now + 1.0
            for key in [k for k, (_, expires) in self._values.items() if expires <= now]:
                del self._values[key]
        excess = len(self._values) - self._max_entries
        if excess > 0:
            oldest = [k for k in self._values if k.startswith("idem:")][: excess + self._max_entries // 10]
            for key in oldest:
                del self._values[key]
            log.warning("memory store full: dropped %d oldest idempotency records", len(oldest))

    async def close(self) -> None:
        self._values.clear()
