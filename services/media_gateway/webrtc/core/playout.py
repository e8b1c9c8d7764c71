"""The outbound audio queue of a WebRTC leg (pure: takes calls and ``now_ms``, returns frames and reports).

Utterances play in arrival order, 20 ms at a time. ``stop`` drops audio at once, so
the next frame is silence (barge-in within one frame). Every utterance gets exactly one
finished report; the started report comes with its first frame on the wire.
"""

from __future__ import annotations

import collections
import dataclasses

from dialtone.common.audio import FRAME_BYTES, SAMPLE_RATE
from dialtone.media_gateway.media_types import PlaybackReport
from dialtone.media_gateway.playback_hold import PlaybackHold

BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 32
# Cap on audio waiting to be played (a runaway TTS can't fill memory): 5 minutes.
MAX_QUEUED_BYTES = 5 * 60 * 1000 * BYTES_PER_MS
# Ids of stopped utterances remembered, so chunks still in flight after a StopPlayback are dropped.
STOPPED_MEMORY = 64


@dataclasses.dataclass
class _Utterance:
    utterance_id: str
    pending: bytearray = dataclasses.field(default_factory=bytearray)
    received_bytes: int = 0
    played_bytes: int = 0
    complete: bool = False
    started: bool = False


class Playout:
    def __init__(self) -> None:
        self._queue: collections.deque[_Utterance] = collections.deque()
        self._stopped: collections.deque[str] = collections.deque(maxlen=STOPPED_MEMORY)
        self._queued_bytes = 0
        self.dropped_bytes = 0
        self._hold = PlaybackHold()

    @property
    def held(self) -> bool:
        return self._hold.active

    def hold(self, now_ms: int, max_ms: int = 0) -> None:
        """Send silence from the next frame on, keeping every utterance where it is (barge-in under judgement)."""
        self._hold.start(now_ms, max_ms)

    def resume(self) -> None:
        self._hold.end()

    @property
    def queued_ms(self) -> int:
        return self._queued_bytes // BYTES_PER_MS

    @property
    def active_utterance(self) -> str | None:
        return self._queue[0].utterance_id if self._queue else None

    def enqueue(self, utterance_id: str, pcm16k: bytes, last: bool) -> bool:
        """Queue a chunk of 16 kHz mono s16le; False when it was dropped (stopped utterance or full queue)."""
        if utterance_id in self._stopped:
            return False
        utterance = next((u for u in self._queue if u.utterance_id == utterance_id), None)
        if utterance is None:
            utterance = _Utterance(utterance_id)
            self._queue.append(utterance)
        if utterance.complete:
            return False
        accepted = True
        if self._queued_bytes + len(pcm16k) > MAX_QUEUED_BYTES:
            self.dropped_bytes += len(pcm16k)
            accepted = False
        else:
            usable = len(pcm16k) - len(pcm16k) % 2
            utterance.pending += pcm16k[:usable]
            utterance.received_bytes += usable
            self._queued_bytes += usable
        utterance.complete = last
        return accepted

    def stop(self, utterance_id: str | None, now_ms: int) -> list[PlaybackReport]:
        """Drop one utterance (or all when ``utterance_id`` is None); report each as interrupted.
        Ends a hold: the barge-in it was waiting on is decided."""
        self._hold.end()
        reports = []
        kept: collections.deque[_Utterance] = collections.deque()
        for utterance in self._queue:
            if utterance_id is None or utterance.utterance_id == utterance_id:
                self._queued_bytes -= len(utterance.pending)
                self._stopped.append(utterance.utterance_id)
                reports.append(self._finished(utterance, now_ms, interrupted=True))
            else:
                kept.append(utterance)
        if utterance_id is not None and not reports:
            self._stopped.append(utterance_id)  # stopped before its first chunk arrived
        self._queue = kept
        return reports

    def next_frame(self, now_ms: int) -> tuple[bytes | None, list[PlaybackReport]]:
        """The next 20 ms to send (None: silence) and the reports it causes."""
        reports: list[PlaybackReport] = []
        if self._hold.silences(now_ms):
            return None, reports
        while self._queue:
            utterance = self._queue[0]
            if len(utterance.pending) >= FRAME_BYTES or (utterance.complete and utterance.pending):
                frame = bytes(utterance.pending[:FRAME_BYTES])
                del utterance.pending[:FRAME_BYTES]
                self._queued_bytes -= len(frame)
                if len(frame) < FRAME_BYTES:
                    frame += bytes(FRAME_BYTES - len(frame))
                if not utterance.started:
                    utterance.started = True
                    reports.append(self._started(utterance, now_ms))
                utterance.played_bytes += FRAME_BYTES
                if utterance.complete and not utterance.pending:
                    self._queue.popleft()
                    reports.append(self._finished(utterance, now_ms, interrupted=False))
                return frame, reports
            if utterance.complete:  # finished with no audio left (or none at all)
                self._queue.popleft()
                if not utterance.started:
                    reports.append(self._started(utterance, now_ms))
                reports.append(self._finished(utterance, now_ms, interrupted=False))
                continue
            return None, reports  # underrun: more audio of this utterance is on its way
        return None, reports

    @staticmethod
    def _started(utterance: _Utterance, now_ms: int) -> PlaybackReport:
        return PlaybackReport(utterance.utterance_id, finished=False, played_ms=0,
                              total_ms=utterance.received_bytes // BYTES_PER_MS, interrupted=False,
                              timestamp_ms=now_ms)

    @staticmethod
    def _finished(utterance: _Utterance, now_ms: int, interrupted: bool) -> PlaybackReport:
        played = min(utterance.played_bytes, utterance.received_bytes)
        return PlaybackReport(utterance.utterance_id, finished=True, played_ms=played // BYTES_PER_MS,
                              total_ms=utterance.received_bytes // BYTES_PER_MS, interrupted=interrupted,
                              timestamp_ms=now_ms)
