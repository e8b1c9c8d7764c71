"""The endpointing core: hysteresis, speculative trigger, forced end (no sockets, no models)."""

from __future__ import annotations

import dataclasses

import pytest
from dialtone.speech_gateway.core.events import SilenceBegan, SpeechEnded, SpeechResumed, SpeechStarted
from dialtone.speech_gateway.core.segmenter import Segmenter, SegmenterSettings, looks_complete

SETTINGS = SegmenterSettings(frame_ms=20, start_window_ms=100, start_ratio=0.6, stop_ms=200,
                             speculative_ms=80, max_utterance_ms=2000, early_stop_ms=0)


def run(pattern: str, seg: Segmenter | None = None, t0: int = 0) -> list[tuple[int, object]]:
    """Feed one frame per character ('1' voiced, '0' silent); return (frame time, event)."""
    seg = seg or Segmenter(SETTINGS)
    out = []
    for i, ch in enumerate(pattern):
        now = t0 + i * 20
        for ev in seg.feed(ch == "1", now):
            out.append((now, ev))
    return out


def test_isolated_voiced_frames_do_not_start_speech():
    """Two voiced frames in a five-frame window stay below the 60 % start ratio."""
    assert run("0000100100001000") == []


def test_start_keeps_the_preroll_and_reports_when_decided():
    """Speech starts at the first voiced frame of the window, decided on the third voiced one."""
    events = run("00011100")
    assert events[0] == (100, SpeechStarted(start_ms=60, decided_ms=100))


def test_end_after_stop_ms_of_silence_with_speculative_trigger_first():
    """Silence emits SilenceBegan after 80 ms and SpeechEnded after 200 ms, ending at the first silent frame."""
    pattern = "111" + "1" * 10 + "0" * 12
    events = [ev for _, ev in run(pattern)]
    assert events == [SpeechStarted(0, 40), SilenceBegan(at_ms=260), SpeechEnded(0, 260)]


def test_speech_resuming_after_speculative_trigger_is_reported_and_continues():
    """A pause shorter than stop_ms yields SilenceBegan then SpeechResumed and one utterance."""
    pattern = "11111" + "00000" + "11111" + "0" * 10
    events = [ev for _, ev in run(pattern)]
    assert events == [SpeechStarted(0, 40), SilenceBegan(100), SpeechResumed(200),
                      SilenceBegan(300), SpeechEnded(0, 300)]


def test_max_utterance_forces_an_end_and_speech_can_start_again():
    """Continuous speech is cut at max_utterance_ms and a new utterance starts after the window."""
    events = [ev for _, ev in run("1" * 120)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert ends[0] == SpeechEnded(0, 2000, forced=True)
    assert isinstance(events[2], SpeechStarted) and events[2].start_ms == 2000


def test_flush_closes_an_open_utterance():
    seg = Segmenter(SETTINGS)
    run("11111", seg)
    assert seg.flush(100) == [SpeechEnded(0, 100, forced=True)]
    assert seg.flush(120) == []


EARLY = dataclasses.replace(SETTINGS, early_stop_ms=120)


def test_a_finished_sentence_ends_the_turn_at_early_stop_ms():
    """The transcript of the pause reads as finished (marked after 100 ms of silence): the turn
    ends on the frame that completes 120 ms of silence, not at stop_ms (200 ms)."""
    seg = Segmenter(EARLY)
    run("1" * 10 + "0" * 5, seg)                  # silence from 200 ms; SilenceBegan at 80 ms of it
    assert seg.mark_complete() == []              # 100 ms of silence so far
    assert run("0", seg, t0=300) == [(300, SpeechEnded(0, 200, early=True))]


def test_a_mark_that_comes_late_ends_the_turn_at_once_and_speech_clears_it():
    seg = Segmenter(EARLY)
    run("1" * 10 + "0" * 7, seg)                  # 140 ms of silence when the decode returns
    assert seg.mark_complete() == [SpeechEnded(0, 200, early=True)]
    seg = Segmenter(EARLY)
    run("1" * 10 + "0" * 5, seg)
    seg.mark_complete()
    events = [ev for _, ev in run("11" + "0" * 10, seg, t0=300)]   # the caller went on talking
    assert events == [SpeechResumed(300), SilenceBegan(340), SpeechEnded(0, 340)]   # at stop_ms again


def test_early_end_off_or_while_talking_ignores_the_mark():
    seg = Segmenter(SETTINGS)                     # early_stop_ms 0
    run("1" * 10 + "0" * 8, seg)
    assert seg.mark_complete() == []
    assert [ev for _, ev in run("000", seg, t0=360)] == [SpeechEnded(0, 200)]
    seg = Segmenter(EARLY)
    run("1" * 10, seg)
    assert seg.mark_complete() == []              # no pause: nothing to end


@pytest.mark.parametrize("text, complete", [
    ("1, 2, 3, 4, 5.", True), ("Is it shipped?", True), ("Agent!", True), ('He said "yes."', True),
    ("My order number is...", False), ("I want to…", False), ("one two,", False),
    ("my order number is", False), ("", False), (" . ", False),
])
def test_which_transcripts_read_as_finished(text, complete):
    assert looks_complete(text) is complete


@pytest.mark.parametrize("kwargs, message", [
    ({"early_stop_ms": 60}, "early_stop_ms must be 0 (off) or at least speculative_ms"),
    ({"frame_ms": 0}, "frame_ms must be positive"),
    ({"start_ratio": 0.0}, "start_ratio must be in (0, 1]"),
    ({"speculative_ms": 900, "stop_ms": 600}, "speculative_ms must be positive and not above stop_ms"),
])
def test_bad_settings_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError) as err:
        dataclasses.replace(SETTINGS, **kwargs)
    assert str(err.value) == message


def test_early_stop_above_stop_ms_changes_nothing():
    """A stop_ms lowered below the early stop ends turns at stop_ms, marked or not."""
    seg = Segmenter(dataclasses.replace(SETTINGS, early_stop_ms=300))
    run("1" * 10 + "0" * 5, seg)
    assert seg.mark_complete() == []
    assert [ev for _, ev in run("00000", seg, t0=300)] == [SpeechEnded(0, 200)]
