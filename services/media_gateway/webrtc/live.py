"""Live events of one browser call, for the page's panel (server-sent events).

Each call has a ``LiveChannel``: the call publishes (state, notices from the speech
stream, DTMF, playback, timings), and each open event stream subscribes. A subscriber
first gets the history (the page connects after the answer, when the greeting may
already be under way), then new events. Everything is bounded: the history keeps the
last ``HISTORY`` events and a subscriber that can't keep up loses its oldest ones.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

HISTORY = 256
SUBSCRIBER_QUEUE = 256
MAX_SUBSCRIBERS = 8


@dataclasses.dataclass(frozen=True)
class LiveEvent:
    seq: int
    kind: str            # "state", "notice", "dtmf", "playback", "timing", "hangup", "ended", ...
    t_ms: int            # call-relative
    data: dict[str, Any]

    def to_sse(self) -> bytes:
        body = json.dumps({"seq": self.seq, "kind": self.kind, "t_ms": self.t_ms, **self.data})
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {body}\n\n".encode()


class LiveChannel:
    def __init__(self) -> None:
        self._history: collections.deque[LiveEvent] = collections.deque(maxlen=HISTORY)
        self._subscribers: list[asyncio.Queue[LiveEvent | None]] = []
        self._seq = 0
        self.closed = False

    @property
    def history(self) -> list[LiveEvent]:
        return list(self._history)

    def publish(self, kind: str, t_ms: int, **data: Any) -> None:
        if self.closed:
            return
        self._seq += 1
        event = LiveEvent(self._seq, kind, t_ms, data)
        self._history.append(event)
        for queue in self._subscribers:
            _put_dropping_oldest(queue, event)

    def close(self) -> None:
        """End every subscription (after the events already queued)."""
        if self.closed:
            return
        self.closed = True
        for queue in self._subscribers:
            _put_dropping_oldest(queue, None)

    def subscribe(self) -> AsyncIterator[LiveEvent]:
        """History first, then live events, until the call ends. OverflowError past MAX_SUBSCRIBERS.

        The subscription is registered now (not at the first ``anext``), so no event is missed.
        """
        if len(self._subscribers) >= MAX_SUBSCRIBERS:
            raise OverflowError(f"at most {MAX_SUBSCRIBERS} event streams per call")
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        for event in self._history:
            _put_dropping_oldest(queue, event)
        if self.closed:
            _put_dropping_oldest(queue, None)
        self._subscribers.append(queue)
        return self._iterate(queue)

    async def _iterate(self, queue: asyncio.Queue[LiveEvent | None]) -> AsyncIterator[LiveEvent]:
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.remove(queue)


def _put_dropping_oldest(queue: asyncio.Queue[LiveEvent | None], item: LiveEvent | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
