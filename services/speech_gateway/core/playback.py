"""Which Say/Play actions were already played, by idempotency key.

A resumed runtime stream may re-send actions; a prompt whose key was played (or
is playing) must not be played twice. Bounded: the oldest keys are forgotten first.
"""

from __future__ import annotations

import collections


class PlaybackLedger:
    def __init__(self, capacity: int = 1024) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._keys: collections.OrderedDict[str, bool] = collections.OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def claim(self, key: str) -> bool:
        """True when ``key`` is new (play it); False when it was already played.
        An empty key (no idempotency asked for) is always played."""
        if not key:
            return True
        if key in self._keys:
            return False
        self._keys[key] = False
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True

    def finished(self, key: str) -> None:
        if key in self._keys:
            self._keys[key] = True

    def was_finished(self, key: str) -> bool:
        return self._keys.get(key, False)
