"""Test helpers for the WebRTC tests; the aiortc peer itself ships as dialtone.media_gateway.webrtc.testing."""

from __future__ import annotations

import asyncio

from dialtone.media_gateway.webrtc.testing import BrowserLikePeer, ToneTrack, tone_pcm

__all__ = ["BrowserLikePeer", "ToneTrack", "tone_pcm", "wait_until"]


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` every 20 ms up to ``timeout`` seconds (a bounded loop)."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
