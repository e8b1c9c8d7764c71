"""The playout queue: frames in order, reports, stop (barge-in), bounds. Pure, no sockets."""

from __future__ import annotations

from dialtone.common.audio import FRAME_BYTES
from dialtone.media_gateway.webrtc.core.playout import MAX_QUEUED_BYTES, Playout

TONE = bytes(range(256)) * 10  # 2560 bytes = 80 ms, not silence


def drain(playout: Playout, frames: int, now_ms: int = 0):
    out, reports = [], []
    for i in range(frames):
        frame, new = playout.next_frame(now_ms + 20 * i)
        out.append(frame)
        reports += new
    return out, reports


def test_idle_queue_gives_silence():
    """Nothing queued: next_frame says silence and reports nothing."""
    assert Playout().next_frame(0) == (None, [])


def test_utterance_plays_in_20ms_frames_with_start_and_finish():
    """An 80 ms utterance is four frames; started comes with the first, finished with the last."""
    playout = Playout()
    playout.enqueue("u1", TONE, last=True)
    frames, reports = drain(playout, 5)
    assert frames[:4] == [TONE[i:i + FRAME_BYTES] for i in range(0, len(TONE), FRAME_BYTES)]
    assert frames[4] is None
    assert [(r.finished, r.played_ms, r.total_ms, r.interrupted, r.timestamp_ms) for r in reports] == [
        (False, 0, 80, False, 0), (True, 80, 80, False, 60)]


def test_short_tail_is_padded_with_silence():
    """A tail shorter than a frame goes out padded to 640 bytes."""
    playout = Playout()
    playout.enqueue("u1", b"\x01\x02" * 100, last=True)
    frame, reports = playout.next_frame(0)
    assert frame == b"\x01\x02" * 100 + bytes(FRAME_BYTES - 200)
    assert [r.finished for r in reports] == [False, True]


def test_underrun_waits_for_more_audio_of_the_same_utterance():
    """A streaming utterance that runs dry gives silence, not a finish, until its last chunk."""
    playout = Playout()
    playout.enqueue("u1", TONE[:FRAME_BYTES], last=False)
    assert playout.next_frame(0)[0] == TONE[:FRAME_BYTES]
    assert playout.next_frame(20) == (None, [])
    playout.enqueue("u1", b"", last=True)
    frame, reports = playout.next_frame(40)
    assert frame is None and [(r.finished, r.played_ms) for r in reports] == [(True, 20)]


def test_utterances_play_in_order():
    """A second utterance starts only after the first one finished."""
    playout = Playout()
    playout.enqueue("a", TONE[:FRAME_BYTES], last=True)
    playout.enqueue("b", TONE[:FRAME_BYTES], last=True)
    _, reports = drain(playout, 2)
    assert [(r.utterance_id, r.finished) for r in reports] == [("a", False), ("a", True), ("b", False), ("b", True)]


def test_stop_all_reports_interrupted_and_flushes_at_once():
    """stop(None) drops everything; each utterance is finished as interrupted with what was played."""
    playout = Playout()
    playout.enqueue("a", TONE, last=False)
    playout.enqueue("b", TONE, last=True)
    playout.next_frame(0)
    reports = playout.stop(None, 25)
    assert [(r.utterance_id, r.finished, r.interrupted, r.played_ms, r.total_ms) for r in reports] == [
        ("a", True, True, 20, 80), ("b", True, True, 0, 80)]
    assert playout.next_frame(40) == (None, [])
    assert playout.queued_ms == 0


def test_chunks_after_stop_are_dropped():
    """Audio of a stopped utterance still in flight is not played."""
    playout = Playout()
    playout.enqueue("a", TONE, last=False)
    playout.stop("a", 0)
    assert playout.enqueue("a", TONE, last=True) is False
    assert playout.next_frame(0) == (None, [])


def test_stop_one_utterance_keeps_the_others():
    """stop(id) leaves other queued utterances alone."""
    playout = Playout()
    playout.enqueue("a", TONE, last=True)
    playout.enqueue("b", TONE, last=True)
    assert [r.utterance_id for r in playout.stop("a", 0)] == ["a"]
    assert playout.active_utterance == "b"


def test_queue_is_bounded():
    """Audio beyond the cap is refused and counted, not stored."""
    playout = Playout()
    assert playout.enqueue("a", bytes(MAX_QUEUED_BYTES), last=False) is True
    assert playout.enqueue("a", bytes(640), last=False) is False
    assert playout.dropped_bytes == 640


def test_empty_utterance_is_still_reported():
    """An utterance with no audio at all gets started and finished reports with 0 ms."""
    playout = Playout()
    playout.enqueue("empty", b"", last=True)
    frame, reports = playout.next_frame(0)
    assert frame is None
    assert [(r.finished, r.played_ms, r.total_ms) for r in reports] == [(False, 0, 0), (True, 0, 0)]


def test_hold_silences_at_once_and_resume_continues_where_it_stopped():
    """Barge-in under judgement: silence from the next frame, then the rest of the prompt, nothing lost."""
    playout = Playout()
    playout.enqueue("u1", TONE, last=True)
    first, _ = drain(playout, 1)
    playout.hold(20)
    held, held_reports = drain(playout, 3, now_ms=20)
    assert held == [None] * 3 and held_reports == [] and playout.held
    playout.resume()
    rest, reports = drain(playout, 4, now_ms=80)
    assert b"".join(first + rest[:3]) == TONE and rest[3] is None
    assert [(r.finished, r.played_ms, r.interrupted) for r in reports] == [(True, 80, False)]


def test_stop_ends_a_hold_and_an_unresumed_hold_expires():
    playout = Playout()
    playout.enqueue("u1", TONE, last=True)
    playout.hold(0)
    [report] = playout.stop("u1", 20)
    assert report.interrupted and not playout.held
    playout.enqueue("u2", TONE, last=True)
    playout.hold(40, max_ms=60)
    frames, _ = drain(playout, 4, now_ms=40)
    assert frames[:3] == [None] * 3 and frames[3] == TONE[:FRAME_BYTES]
