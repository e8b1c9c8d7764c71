"""A playout's hold (sans-I/O), shared by the RTP and WebRTC playout queues.

While the speech gateway judges speech over a prompt (barge-in or backchannel?) the playout sends
silence and keeps every utterance where it is. StopPlayback or ResumePlayback ends the hold; a hold
nobody ends expires after ``max_ms`` so a lost resume cannot mute a call.
"""

from __future__ import annotations

DEFAULT_HOLD_MS = 20_000   # longer than the longest utterance plus its decode


class PlaybackHold:
    __slots__ = ("_until_ms",)

    def __init__(self) -> None:
        self._until_ms: int | None = None

    @property
    def active(self) -> bool:
        return self._until_ms is not None

    def start(self, now_ms: int, max_ms: int = 0) -> None:
        self._until_ms = now_ms + (max_ms or DEFAULT_HOLD_MS)

    def end(self) -> None:
        self._until_ms = None

    def silences(self, now_ms: int) -> bool:
        """True while the hold lasts at ``now_ms``; an expired hold ends here."""
        if self._until_ms is None:
            return False
        if now_ms < self._until_ms:
            return True
        self._until_ms = None
        return False
