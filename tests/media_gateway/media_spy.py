"""The real ``MediaSession`` with a record of what signalling asked of it (a spy, not a fake).

Every call goes through to the media half's session (real RTP sockets, codecs, jitter
buffer, RFC 4733); the spy only remembers the NegotiatedMedia each start/update carried and
whether the call closed it, so SIP tests can assert on signalling decisions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dialtone.media_gateway.media.ports import PortAllocator
from dialtone.media_gateway.media.session import MediaSession
from dialtone.media_gateway.media_types import NegotiatedMedia


class MediaSpy:
    opened: list[MediaSpy] = []

    def __init__(self, inner: MediaSession) -> None:
        self.inner = inner
        self.started: list[NegotiatedMedia] = []
        self.updates: list[NegotiatedMedia] = []
        self.played: list[tuple[str, int, bool]] = []
        self.stopped: list[str | None] = []
        self.holds: list[int] = []
        self.resumes = 0
        self.closed = False

    @classmethod
    def factory(cls, allocator: PortAllocator) -> Callable[..., Awaitable[MediaSpy]]:
        async def open_session(**kwargs: Any) -> MediaSpy:
            spy = cls(await MediaSession.open(port_allocator=allocator, **kwargs))
            cls.opened.append(spy)
            return spy

        return open_session

    @property
    def local_port(self) -> int:
        return self.inner.local_port

    @property
    def playback_pending(self) -> bool:
        return self.inner.playback_pending

    def start(self, media: NegotiatedMedia) -> None:
        self.started.append(media)
        self.inner.start(media)

    def update(self, media: NegotiatedMedia) -> None:
        self.updates.append(media)
        self.inner.update(media)

    def play(self, utterance_id: str, pcm: bytes, sample_rate: int, last: bool) -> None:
        self.played.append((utterance_id, len(pcm), last))
        self.inner.play(utterance_id, pcm, sample_rate, last)

    def stop_playback(self, utterance_id: str | None = None) -> None:
        self.stopped.append(utterance_id)
        self.inner.stop_playback(utterance_id)

    def hold_playback(self, max_ms: int = 0) -> None:
        self.holds.append(max_ms)
        self.inner.hold_playback(max_ms)

    def resume_playback(self) -> None:
        self.resumes += 1
        self.inner.resume_playback()

    def stats(self) -> dict[str, float]:
        return self.inner.stats()

    async def close(self) -> None:
        self.closed = True
        await self.inner.close()
