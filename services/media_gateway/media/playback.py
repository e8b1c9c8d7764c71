"""What to send next: utterances of 16 kHz PCM, cut into 20 ms frames, reported as they play (sans-I/O).

The one playout queue of every call, whatever its transport: the RTP ``MediaSession`` and the
browser's ``WebRtcLeg`` both pace it. It knows nothing of codecs or sockets. The transport asks
it for one frame per send tick; ``None`` means "send silence" (nothing queued, or the current
utterance is waiting for more audio). Reports: one when an utterance's first frame goes out,
one when its last frame went out or it was stopped, with how much of it was played.
"""

from __future__ import annotations

import collections
import dataclasses

from dialtone.common.audio import FRAME_BYTES, FRAME_MS
from dialtone.media_gateway.media_types import PlaybackReport
from dialtone.media_gateway.playback_hold import PlaybackHold

_ENDED_REMEMBERED = 64
# Cap on audio waiting to be played, so a runaway TTS cannot fill memory: 5 minutes.
MAX_QUEUED_FRAMES = 5 * 60 * 1000 // FRAME_MS


@dataclasses.dataclass
class _Utterance:
    utterance_id: str
    frames: collections.deque[bytes] = dataclasses.field(default_factory=collections.deque)
    tail: bytearray = dataclasses.field(default_factory=bytearray)   # less than a frame, waiting for more
    queued_frames: int = 0
    played_frames: int = 0
    last: bool = False
    started: bool = False

    def report(self, finished: bool, interrupted: bool, now_ms: int) -> PlaybackReport:
        return PlaybackReport(
            utterance_id=self.utterance_id,
            finished=finished,
            played_ms=self.played_frames * FRAME_MS,
            total_ms=self.queued_frames * FRAME_MS,
            interrupted=interrupted,
            timestamp_ms=now_ms,
        )


class PlaybackQueue:
    """Utterances in arrival order; audio for an utterance already queued is appended to it."""

    def __init__(self) -> None:
        self._utterances: collections.deque[_Utterance] = collections.deque()
        self._by_id: dict[str, _Utterance] = {}
        # Recently ended utterances: audio still streaming in for a stopped one (TTS after barge-in)
        # is dropped, audio for a finished one is an error.
        self._ended: collections.OrderedDict[str, bool] = collections.OrderedDict()   # id -> interrupted
        self.underruns = 0   # ticks where a started prompt had no audio yet (TTS behind the wire)
        self.dropped_frames = 0   # audio refused because MAX_QUEUED_FRAMES were waiting
        self._queued = 0
        self._hold = PlaybackHold()

    @property
    def held(self) -> bool:
        return self._hold.active

    def hold(self, now_ms: int, max_ms: int = 0) -> None:
        """Send silence from the next tick on, keeping every utterance where it is (barge-in under judgement)."""
        self._hold.start(now_ms, max_ms)

    def resume(self) -> None:
        self._hold.end()

    @property
    def pending(self) -> bool:
        """An utterance is queued or still playing (its last frame has not gone out)."""
        return bool(self._utterances)

    @property
    def queued_frames(self) -> int:
        return self._queued

    def enqueue(self, utterance_id: str, pcm16k: bytes, last: bool) -> bool:
        """Queue 16 kHz s16le audio; False when the utterance was stopped or MAX_QUEUED_FRAMES are
        waiting (the audio is dropped).

        ValueError when the PCM is not whole samples or the utterance already had its last chunk.
        """
        if len(pcm16k) % 2:
            raise ValueError(f"PCM must be whole s16 samples, got {len(pcm16k)} bytes")
        utterance = self._by_id.get(utterance_id)
        if utterance is None:
            interrupted = self._ended.get(utterance_id)
            if interrupted is not None:
                if interrupted:
                    return False
                raise ValueError(f"utterance {utterance_id!r} already finished")
            utterance = self._by_id[utterance_id] = _Utterance(utterance_id)
            self._utterances.append(utterance)
        elif utterance.last:
            raise ValueError(f"utterance {utterance_id!r} already received its last chunk")
        frames_before = len(utterance.frames)
        tail = utterance.tail
        accepted = self._queued + (len(tail) + len(pcm16k)) // FRAME_BYTES <= MAX_QUEUED_FRAMES
        if not accepted:
            self.dropped_frames += len(pcm16k) // FRAME_BYTES or 1
            pcm16k = b""   # the utterance still ends (on ``last``) so it gets its finished report
        tail += pcm16k
        whole = len(tail) - len(tail) % FRAME_BYTES
        for offset in range(0, whole, FRAME_BYTES):
            utterance.frames.append(bytes(tail[offset:offset + FRAME_BYTES]))
        del tail[:whole]
        if last:
            utterance.last = True
            if tail:   # the last partial frame is padded with silence
                utterance.frames.append(bytes(tail) + bytes(FRAME_BYTES - len(tail)))
                tail.clear()
        added = len(utterance.frames) - frames_before
        utterance.queued_frames += added
        self._queued += added
        return accepted

    def next_frame(self, now_ms: int) -> tuple[bytes | None, list[PlaybackReport]]:
        """The frame for this tick (None: silence) and the reports it caused."""
        reports: list[PlaybackReport] = []
        if self._hold.silences(now_ms):
            return None, reports
        if not self._utterances:
            return None, reports
        utterance = self._utterances[0]
        frame = None
        if utterance.frames:
            frame = utterance.frames.popleft()
            self._queued -= 1
            utterance.played_frames += 1
            if not utterance.started:
                utterance.started = True
                reports.append(utterance.report(finished=False, interrupted=False, now_ms=now_ms))
        elif utterance.started and not utterance.last:
            self.underruns += 1
        if utterance.last and not utterance.frames:
            if not utterance.started:   # an empty utterance still starts and finishes
                utterance.started = True
                reports.append(utterance.report(finished=False, interrupted=False, now_ms=now_ms))
            reports.append(utterance.report(finished=True, interrupted=False, now_ms=now_ms))
            self._remove(utterance, interrupted=False)
        return frame, reports

    def stop(self, utterance_id: str | None, now_ms: int) -> list[PlaybackReport]:
        """Drop ``utterance_id`` (None: everything) at once; one interrupted report per utterance dropped.
        Ends a hold: the barge-in it was waiting on is decided."""
        self._hold.end()
        if utterance_id is None:
            victims = list(self._utterances)
        else:
            found = self._by_id.get(utterance_id)
            victims = [found] if found is not None else []
            if found is None and utterance_id not in self._ended:
                # Stopped before its first chunk arrived (barge-in racing TTS): drop it when it comes
                self._remember(utterance_id, interrupted=True)
        reports = []
        for utterance in victims:
            reports.append(utterance.report(finished=True, interrupted=True, now_ms=now_ms))
            self._remove(utterance, interrupted=True)
        return reports

    def _remove(self, utterance: _Utterance, interrupted: bool) -> None:
        self._queued -= len(utterance.frames)
        self._utterances.remove(utterance)
        del self._by_id[utterance.utterance_id]
        self._remember(utterance.utterance_id, interrupted)

    def _remember(self, utterance_id: str, interrupted: bool) -> None:
        self._ended[utterance_id] = interrupted
        while len(self._ended) > _ENDED_REMEMBERED:
            self._ended.popitem(last=False)
