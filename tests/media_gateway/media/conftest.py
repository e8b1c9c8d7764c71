from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from dialtone.media_gateway.media import MediaSession, PortAllocator

from tests.helpers import free_port
from tests.media_gateway.media.helpers import RawPeer


class Recorder:
    """What a session handed to its callbacks."""

    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int]] = []
        self.digits: list[Any] = []
        self.reports: list[Any] = []

    def on_frame(self, frame: bytes, timestamp_ms: int) -> None:
        self.frames.append((frame, timestamp_ms))


@pytest.fixture
def allocator() -> PortAllocator:
    base = min(free_port(), 64000) & ~1
    return PortAllocator(base, base + 400)


@pytest.fixture
async def open_session(allocator: PortAllocator) -> AsyncIterator[Callable[..., Any]]:
    sessions: list[MediaSession] = []

    async def open_(host: str = "127.0.0.1", name: str = "s",
                    on_frame: Callable[[bytes, int], None] | None = None) -> tuple[MediaSession, Recorder]:
        rec = Recorder()
        session = await MediaSession.open(session_id=name, bind_host=host, port_allocator=allocator,
                                          on_frame=on_frame or rec.on_frame, on_dtmf=rec.digits.append,
                                          on_playback=rec.reports.append)
        sessions.append(session)
        return session, rec

    yield open_
    for session in sessions:
        await session.close()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    raw = await RawPeer.open()
    yield raw
    raw.close()
