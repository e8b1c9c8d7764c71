"""The turn core: end of turn from the silence, the pause's speculative transcript and the state's
expectation, on synthetic timelines in milliseconds (no sockets, no models)."""

from __future__ import annotations

import dataclasses

import pytest
from dialtone.speech_gateway.core.events import SilenceBegan, SpeechEnded, SpeechResumed, SpeechStarted
from dialtone.speech_gateway.core.segmenter import SegmenterSettings
from dialtone.speech_gateway.core.turn import Completeness, EndOfTurn, Expectation, TurnCore, TurnSettings, judge

C, INC, OTH = Completeness.COMPLETE, Completeness.INCOMPLETE, Completeness.OTHER
DIGITS4 = Expectation("digits", {"min_length": 4})

# 20 ms frames; the VAD reports silence 100 ms late, so the segmenter counts 100 ms less of each silence:
# the speculative decode starts at 60 ms of reported silence, the turn ends by verdict after 200 ms
# (complete), 600 ms (other) or 1200 ms (incomplete) of silence after the speech.
SETTINGS = TurnSettings(
    SegmenterSettings(frame_ms=20, start_window_ms=100, start_ratio=0.6, stop_ms=500, speculative_ms=60,
                      max_utterance_ms=15000, early_stop_ms=0),
    EndOfTurn(complete_ms=200, other_ms=600, incomplete_ms=1200), hangover_ms=100, early_end=True, quiet_ms=0)


# a frame per character: the VAD's decision and the frame's level (dBFS)
FRAMES = {"1": (True, -20.0),     # speech
          "0": (False, -90.0),    # silence
          "h": (True, -90.0),     # silence the VAD still calls speech (its hangover)
          "n": (False, -40.0)}    # line noise the VAD calls silence


def play(core: TurnCore, script: list[tuple]) -> list[tuple[int, object]]:
    """Run a timeline: ("frames", "1110...") one 20 ms frame per character from the current time,
    ("verdict", completeness) for the pause in progress, ("expect", expectation), ("busy", bool) whether the
    ASR workers are busy (no pause by level then). Returns (time, event)."""
    now, pause, out, busy = 0, None, [], False
    for step in script:
        if step[0] == "busy":
            busy = step[1]
        elif step[0] == "frames":
            for ch in step[1]:
                voiced, level = FRAMES[ch]
                for event in core.frame(voiced, now, level, may_pause_early=not busy):
                    out.append((now, event))
                    if isinstance(event, SilenceBegan):
                        pause = event.at_ms
                now += 20
        elif step[0] == "verdict":
            out += [(now, event) for event in core.verdict(step[2] if len(step) > 2 else pause, step[1])]
        elif step[0] == "expect":
            core.expect(step[1])
    return out


def ends(events: list[tuple[int, object]]) -> list[tuple[int, SpeechEnded]]:
    return [(t, e) for t, e in events if isinstance(e, SpeechEnded)]


SPEECH = "1" * 50                     # 1 s of speech from 0 ms; its silence is reported from 1000 ms


@pytest.mark.parametrize("name, script, expected_end", [
    # the expected 4 digits are in the transcript of the pause: the turn ends when that verdict comes
    # (here after 280 ms of reported silence, the decode's time), not at stop
    ("complete entity ends early", [("expect", DIGITS4), ("frames", SPEECH + "0" * 14), ("verdict", C),
                                    ("frames", "0" * 40)], (1280, SpeechEnded(0, 1000, early=True))),
    # a verdict that comes before complete_ms waits for it: 100 ms of reported silence
    ("complete before complete_ms", [("expect", DIGITS4), ("frames", SPEECH + "0" * 4), ("verdict", C),
                                     ("frames", "0" * 40)], (1080, SpeechEnded(0, 1000, early=True))),
    # "7 8" of 4 digits: the pause may last 1100 ms of reported silence before the turn ends
    ("incomplete waits longer", [("expect", DIGITS4), ("frames", SPEECH + "0" * 14), ("verdict", INC),
                                 ("frames", "0" * 60)], (2080, SpeechEnded(0, 1000))),
    # with an expectation and no verdict yet, other_ms does not end the turn: incomplete_ms does
    ("no verdict with an expectation", [("expect", DIGITS4), ("frames", SPEECH + "0" * 60)],
     (2080, SpeechEnded(0, 1000))),
    # with none, the ordinary stop does (600 ms after the speech, 500 reported)
    ("no verdict, no expectation", [("frames", SPEECH + "0" * 40)], (1480, SpeechEnded(0, 1000))),
    ("other verdict", [("frames", SPEECH + "0" * 10), ("verdict", OTH), ("frames", "0" * 40)],
     (1480, SpeechEnded(0, 1000))),
    # a late "other" verdict after an expectation held the turn past stop ends it at once
    ("late other verdict", [("expect", DIGITS4), ("frames", SPEECH + "0" * 30), ("verdict", OTH)],
     (1600, SpeechEnded(0, 1000))),
    # no expectation: a finished sentence ends the turn early too
    ("complete sentence", [("frames", SPEECH + "0" * 12), ("verdict", C), ("frames", "0" * 40)],
     (1240, SpeechEnded(0, 1000, early=True))),
])
def test_when_the_turn_ends(name, script, expected_end):
    assert ends(play(TurnCore(SETTINGS), script))[0] == expected_end


def test_with_an_end_of_turn_model_every_pause_waits_for_its_verdict():
    """await_verdict (vad.turn_model on): with no expectation, no verdict yet means no end at other_ms; the
    model's "unfinished" (INCOMPLETE) then holds to incomplete_ms, its "finished" (COMPLETE) ends early."""
    core = TurnCore(dataclasses.replace(SETTINGS, await_verdict=True))
    assert ends(play(core, [("frames", SPEECH + "0" * 60)]))[0] == (2080, SpeechEnded(0, 1000))
    core = TurnCore(dataclasses.replace(SETTINGS, await_verdict=True))
    assert ends(play(core, [("frames", SPEECH + "0" * 14), ("verdict", INC), ("frames", "0" * 60)]))[0] == (
        2080, SpeechEnded(0, 1000))
    core = TurnCore(dataclasses.replace(SETTINGS, await_verdict=True))
    assert ends(play(core, [("frames", SPEECH + "0" * 12), ("verdict", C), ("frames", "0" * 40)]))[0] == (
        1240, SpeechEnded(0, 1000, early=True))


def test_a_long_pause_mid_number_is_not_cut_off_and_the_whole_number_ends_early():
    """ "7 8 ... 3 9": the 900 ms pause after "7 8" (incomplete) does not end the turn; after "3 9" the
    complete verdict ends it."""
    core = TurnCore(SETTINGS)
    events = play(core, [("expect", DIGITS4), ("frames", SPEECH + "0" * 14), ("verdict", INC), ("frames", "0" * 31),
                         ("frames", "1" * 30 + "0" * 14), ("verdict", C), ("frames", "0" * 10)])
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SilenceBegan, SpeechResumed, SilenceBegan, SpeechEnded]
    assert ends(events) == [(2780, SpeechEnded(0, 2500, early=True))]


def test_a_verdict_for_a_pause_the_caller_talked_through_is_ignored():
    core = TurnCore(SETTINGS)
    events = play(core, [("expect", DIGITS4), ("frames", SPEECH + "0" * 5 + "1" * 10 + "0" * 5),
                         ("verdict", C, 1000)])    # the verdict of the first pause comes late
    assert ends(events) == []
    assert ends(play(core, [("verdict", C, 1300)])) == [(0, SpeechEnded(0, 1300, early=True))]


def test_the_states_tuning_overrides_the_defaults_and_bad_tuning_is_refused():
    core = TurnCore(SETTINGS)
    patient = Expectation("digits", {"min_length": 7}, incomplete_ms=2000)
    events = play(core, [("expect", patient), ("frames", SPEECH + "0" * 14), ("verdict", INC), ("frames", "0" * 100)])
    assert ends(events)[0] == (2880, SpeechEnded(0, 1000))      # 2000 ms after the speech, 1900 reported
    with pytest.raises(ValueError, match="complete_ms <= other_ms <= incomplete_ms"):
        core.expect(Expectation("digits", {}, complete_ms=900))   # above other_ms 600
    assert core.expectation is patient


def test_early_end_off_treats_complete_as_other():
    core = TurnCore(dataclasses.replace(SETTINGS, early_end=False))
    events = play(core, [("frames", SPEECH + "0" * 10), ("verdict", C), ("frames", "0" * 40)])
    assert ends(events)[0] == (1480, SpeechEnded(0, 1000))


YES_NO = Expectation("yes_no")
SIZES = Expectation("choice", {"options": ["small", "large"]})
PHONE7 = Expectation("digits", {"min_length": 7, "max_length": 7})


@pytest.mark.parametrize("text, expectation, verdict", [
    ("7614.", DIGITS4, C), ("Seven six one four", DIGITS4, C), ("7, 6, 1, 4.", DIGITS4, C),
    ("78.", DIGITS4, INC), ("Number is 69.", DIGITS4, INC), ("My number is", DIGITS4, INC), ("45 and", DIGITS4, INC),
    ("My order number is...", DIGITS4, INC), ("I don't know it.", DIGITS4, OTH), ("", DIGITS4, OTH),
    ("555 1234.", PHONE7, C), ("555.", PHONE7, INC),
    # past max_length no digit can make it fit: the turn ends at other_ms and the dialog asks again
    ("555 12345", PHONE7, OTH), ("1, 3, 2, 2, 2, 3, 2", Expectation("digits", {"min_length": 4, "max_length": 6}), OTH),
    ("Yes.", YES_NO, C), ("Yeah, that's right.", YES_NO, C), ("No.", YES_NO, C), ("Um", YES_NO, INC),
    ("Well, let me think.", YES_NO, OTH), ("The large one, please.", SIZES, C), ("The", SIZES, INC),
    # no expectation: a finished sentence, but not a bare number that may go on
    ("I want to pay my bill.", None, C), ("4 5 6.", None, OTH), ("I want to", None, INC), ("Hello", None, OTH),
])
def test_judging_a_transcript(text, expectation, verdict):
    assert judge(text, expectation) is verdict


@pytest.mark.parametrize("entity, constraints, message", [
    ("colour", "", "unknown entity type 'colour'"),
    ("digits", "{", "constraints of digits are not JSON"),
    ("digits", "[4]", "constraints of digits must be a JSON object"),
    ("digits", '{"min_length": "four"}', "digits: min_length must be a whole number"),
    ("digits", '{"length": 4}', "digits: unknown constraint 'length'"),
    ("choice", "", "choice: 'options' is required"),
    ("digits", " " * 5000, "constraints of digits are 5000 characters; the limit is 4096"),
])
def test_a_malformed_expectation_is_refused_with_a_short_reason(entity, constraints, message):
    with pytest.raises(ValueError) as err:
        Expectation.parse(entity, constraints)
    assert str(err.value).startswith(message)


def test_an_expectation_from_its_contract_fields():
    parsed = Expectation.parse("digits", '{"min_length": 4, "max_length": 6}', incomplete_ms=1500)
    assert parsed == Expectation("digits", {"min_length": 4, "max_length": 6}, incomplete_ms=1500)
    assert parsed.holds("order 1234") and not parsed.holds("order 12")


QUIET = dataclasses.replace(SETTINGS, quiet_ms=40)


def test_a_quiet_stretch_begins_the_pause_before_the_vad_reports_it():
    """The speech ends at 1000 ms; the VAD calls 100 ms more speech. After 40 ms of quiet the pause begins
    (its decode starts) at 1000, not at the VAD's 1100 + 60; the VAD's own SilenceBegan is not repeated; a
    complete verdict that comes before the VAD's report waits for it, and the speech ends at 1000."""
    core = TurnCore(QUIET)
    events = play(core, [("expect", DIGITS4), ("frames", SPEECH + "hhh"), ("verdict", C), ("frames", "hh" + "0" * 10)])
    assert [(t, e) for t, e in events if not isinstance(e, SpeechStarted)] == [
        (1020, SilenceBegan(at_ms=1000)), (1180, SpeechEnded(0, 1000, early=True))]


def test_speech_after_a_quiet_stretch_makes_its_decode_stale():
    core = TurnCore(QUIET)
    events = play(core, [("expect", DIGITS4), ("frames", SPEECH + "hhh" + "1" * 10), ("verdict", C, 1000),
                         ("frames", "0" * 10)])
    assert [e for _, e in events][1:3] == [SilenceBegan(at_ms=1000), SpeechResumed(at_ms=1060)]
    assert ends(events) == []     # the verdict of the stretch the caller talked through did not end the turn


@pytest.mark.parametrize("script, began", [
    # the ASR workers are busy: no early decode; the VAD reports silence from 1100, the pause at 1140
    ([("busy", True), ("frames", SPEECH + "hhhhh" + "0" * 5)], (1140, SilenceBegan(at_ms=1100))),
    # noise above -45 dBFS is not quiet: the VAD's silence (from 1000) begins the pause
    ([("frames", SPEECH + "nnnnn" + "0" * 5)], (1040, SilenceBegan(at_ms=1000))),
])
def test_the_vad_begins_the_pause_when_the_level_cannot(script, began):
    events = play(TurnCore(QUIET), script)
    assert [(t, e) for t, e in events if isinstance(e, SilenceBegan)] == [began]
