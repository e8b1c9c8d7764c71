"""Cut the caller's resampled 16 kHz audio into the 20 ms frames the speech gateway expects (pure)."""

from __future__ import annotations

from dialtone.common.audio import FRAME_BYTES, FRAME_MS


class FrameChunker:
    """Collects PCM of any length and hands out whole 640-byte frames with call-relative timestamps.

    The first frame's timestamp is when the first audio arrived (``start_ms``); later
    frames follow at exactly 20 ms steps, so timestamps track the audio, not arrival jitter.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._next_ms: int | None = None

    def push(self, pcm16k: bytes, now_ms: int) -> list[tuple[bytes, int]]:
        if self._next_ms is None:
            self._next_ms = now_ms
        self._buffer += pcm16k
        frames = []
        while len(self._buffer) >= FRAME_BYTES:
            frames.append((bytes(self._buffer[:FRAME_BYTES]), self._next_ms))
            del self._buffer[:FRAME_BYTES]
            self._next_ms += FRAME_MS
        return frames
