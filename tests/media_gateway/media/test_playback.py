"""The playback queue: utterances to 20 ms frames, start/finish reports, stop within one frame."""

from __future__ import annotations

import pytest
from dialtone.common.audio import FRAME_BYTES
from dialtone.media_gateway.media.playback import PlaybackQueue


def frame(value: int) -> bytes:
    return bytes([value]) * FRAME_BYTES


def drain(queue: PlaybackQueue, ticks: int, start_ms: int = 0):
    frames, reports = [], []
    for i in range(ticks):
        f, r = queue.next_frame(start_ms + 20 * i)
        frames.append(f)
        reports += r
    return frames, reports


def test_frames_in_order_then_silence_with_start_and_finish_reports() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u1", frame(1) + frame(2) + frame(3), last=True)
    frames, reports = drain(queue, 5)
    assert frames == [frame(1), frame(2), frame(3), None, None]
    assert [(r.finished, r.played_ms, r.total_ms, r.interrupted, r.timestamp_ms) for r in reports] == [
        (False, 20, 60, False, 0), (True, 60, 60, False, 40)]


def test_chunks_split_across_frame_boundaries_and_last_tail_padded() -> None:
    """Chunks of odd sizes are re-cut into whole frames; the tail of the last chunk is padded with silence."""
    queue = PlaybackQueue()
    audio = bytes(range(256)) * 6   # 1536 bytes: 2 frames + 256 bytes
    queue.enqueue("u", audio[:100], last=False)
    queue.enqueue("u", audio[100:1000], last=False)
    queue.enqueue("u", audio[1000:], last=True)
    frames, reports = drain(queue, 3)
    assert b"".join(frames) == audio + bytes(3 * FRAME_BYTES - len(audio))
    assert reports[-1].total_ms == 60 and reports[-1].finished


def test_waiting_for_more_audio_sends_silence_without_finishing() -> None:
    """An utterance still streaming (last not seen) holds its place; silence meanwhile; no finish report."""
    queue = PlaybackQueue()
    queue.enqueue("u", frame(1), last=False)
    queue.enqueue("v", frame(9), last=True)
    frames, reports = drain(queue, 3)
    assert frames == [frame(1), None, None]
    assert [r.finished for r in reports] == [False]
    queue.enqueue("u", frame(2), last=True)
    frames, reports = drain(queue, 3)
    assert frames == [frame(2), frame(9), None]
    assert [(r.utterance_id, r.finished) for r in reports] == [("u", True), ("v", False), ("v", True)]


def test_stop_all_drops_everything_at_once_and_reports_played_and_total() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u", b"".join(frame(i) for i in range(50)), last=True)
    queue.enqueue("v", frame(7), last=True)
    drain(queue, 10)
    reports = queue.stop(None, now_ms=200)
    assert [(r.utterance_id, r.finished, r.interrupted, r.played_ms, r.total_ms) for r in reports] == [
        ("u", True, True, 200, 1000), ("v", True, True, 0, 20)]
    assert queue.next_frame(220) == (None, [])
    assert queue.queued_frames == 0


def test_stop_one_utterance_keeps_the_others() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u", frame(1) * 1, last=True)
    queue.enqueue("v", frame(2), last=True)
    assert [r.utterance_id for r in queue.stop("u", 0)] == ["u"]
    assert queue.next_frame(20)[0] == frame(2)
    assert queue.stop("nope", 40) == []


def test_stop_before_the_first_chunk_drops_the_utterance_when_it_arrives() -> None:
    """StopPlayback racing the TTS stream: the stopped utterance's audio never plays, others still do."""
    queue = PlaybackQueue()
    assert queue.stop("early", 0) == []
    assert queue.enqueue("early", frame(1), last=True) is False
    assert queue.enqueue("next", frame(2), last=True) is True
    assert queue.next_frame(20)[0] == frame(2)


def test_audio_still_streaming_in_for_a_stopped_utterance_is_dropped() -> None:
    """After barge-in the TTS stream may still deliver chunks of the stopped utterance: they never play."""
    queue = PlaybackQueue()
    queue.enqueue("u", frame(1), last=False)
    queue.stop("u", 0)
    assert queue.enqueue("u", frame(2), last=True) is False
    assert queue.next_frame(20) == (None, [])


def test_audio_after_last_is_an_error() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u", frame(1), last=True)
    with pytest.raises(ValueError, match="last chunk"):
        queue.enqueue("u", frame(1), last=False)
    drain(queue, 2)
    with pytest.raises(ValueError, match="already finished"):
        queue.enqueue("u", frame(1), last=True)
    with pytest.raises(ValueError, match="whole s16"):
        queue.enqueue("w", b"\x00", last=True)


def test_empty_last_utterance_starts_and_finishes() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u", b"", last=True)
    frames, reports = drain(queue, 1)
    assert frames == [None]
    assert [(r.finished, r.played_ms, r.total_ms) for r in reports] == [(False, 0, 0), (True, 0, 0)]


def test_hold_silences_at_the_next_tick_and_resume_continues_where_it_stopped() -> None:
    """Barge-in under judgement: the prompt goes silent at once and, if it was a backchannel, resumes
    with the frame that was due, nothing skipped and no report in between."""
    queue = PlaybackQueue()
    queue.enqueue("u1", frame(1) + frame(2) + frame(3), last=True)
    first, _ = drain(queue, 1)
    queue.hold(20)
    held, held_reports = drain(queue, 3, start_ms=20)
    assert held == [None, None, None] and held_reports == [] and queue.held
    queue.resume()
    rest, reports = drain(queue, 3, start_ms=80)
    assert first + rest == [frame(1), frame(2), frame(3), None]
    assert [(r.finished, r.played_ms, r.interrupted) for r in reports] == [(True, 60, False)]


def test_stop_ends_a_hold_and_the_next_prompt_plays() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u1", frame(1) * 5, last=True)
    queue.hold(0)
    [report] = queue.stop("u1", 20)
    assert report.interrupted and report.played_ms == 0 and not queue.held
    queue.enqueue("u2", frame(7), last=True)
    frames, _ = drain(queue, 1, start_ms=40)
    assert frames == [frame(7)]


def test_a_hold_nobody_resumes_ends_by_itself() -> None:
    queue = PlaybackQueue()
    queue.enqueue("u1", frame(1) + frame(2), last=True)
    queue.hold(0, max_ms=100)
    frames, _ = drain(queue, 7)
    assert frames == [None] * 5 + [frame(1), frame(2)]


def test_queue_is_capped_and_the_capped_utterance_still_finishes() -> None:
    """A runaway TTS cannot fill memory: past MAX_QUEUED_FRAMES audio is dropped (counted), and the
    utterance still gets its finished report when its last chunk comes."""
    from dialtone.media_gateway.media.playback import MAX_QUEUED_FRAMES

    queue = PlaybackQueue()
    frame = b"\x01\x00" * (FRAME_BYTES // 2)
    assert queue.enqueue("long", frame * MAX_QUEUED_FRAMES, last=False)
    assert not queue.enqueue("long", frame * 10, last=False)
    assert queue.dropped_frames == 10 and queue.queued_frames == MAX_QUEUED_FRAMES
    assert not queue.enqueue("long", frame, last=True)
    reports = queue.stop(None, 0)
    assert [(r.utterance_id, r.interrupted, r.total_ms) for r in reports] == [("long", True, MAX_QUEUED_FRAMES * 20)]
    assert queue.queued_frames == 0
