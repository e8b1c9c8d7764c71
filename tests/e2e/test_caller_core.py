"""The caller's pure parts: script parsing and the level-gated hearing of the bot."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from dialtone.caller.cli import build_steps
from dialtone.caller.hearing import Hearing, SpeechOnset, Utterance
from dialtone.caller.script import ScriptError, Step, heard_contains, parse_script
from dialtone.caller.voices import TRIM_LEVEL
from dialtone.common.audio import trim_silence

RATE = 8000
SILENT = bytes(320)


def tone(level: float = 0.3) -> bytes:
    t = np.arange(160) / RATE
    return (np.sin(2 * math.pi * 440 * t) * level * 32767).astype("<i2").tobytes()


def test_yaml_script_steps_in_order() -> None:
    script = parse_script("""
call: sip:order_status@127.0.0.1:5060
timeout: 30
steps:
  - say: one two three four five
  - expect: shipped
  - say: {text: stop, interrupt: true, after_ms: 500}
  - dtmf: "0#"
  - wait: refer
  - silence: 2.5
  - hangup
""", "s.yaml")
    assert script.uri == "sip:order_status@127.0.0.1:5060" and script.timeout_s == 30.0
    assert [s.kind for s in script.steps] == ["say", "expect", "say", "dtmf", "wait", "silence", "hangup"]
    assert script.steps[2] == Step("say", "stop", interrupt=True, interrupt_after_ms=500)
    assert script.steps[3].value == "0#" and script.steps[5].seconds == 2.5


@pytest.mark.parametrize(("text", "message"), [
    ("steps: []", "non-empty list"),
    ("steps: [{shout: hi}]", "steps[0]: unknown step 'shout'"),
    ("steps: [{dtmf: '12x'}]", "steps[0]: dtmf digits must be 0-9 * # A-D, got 'X'"),
    ("steps: [{wait: lunch}]", "wait is for one of speech, refer, bye"),
    ("steps: [{silence: -1}]", "silence must be within"),
    ("steps: [{expect: {interrupt: true}}]", "expect needs a non-empty text"),
    ("steps: [{say: {text: hi, loud: true}}]", "unknown key(s) loud in say"),
    ("nope: 1\nsteps: [hangup]", "unknown key(s) nope"),
    ("steps: [say: 'a'", "not valid YAML"),
])
def test_bad_scripts_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(text, "bad.yaml")
    assert message in str(info.value) and "bad.yaml" in str(info.value)


def test_command_line_keeps_order_and_interrupt_marks_the_next_step() -> None:
    steps = build_steps([("say", "hello"), ("interrupt", []), ("say", "stop"), ("dtmf", "0"),
                         ("expect", "agent"), ("hangup", [])], 700)
    assert [(s.kind, s.value, s.interrupt) for s in steps] == [
        ("say", "hello", False), ("say", "stop", True), ("dtmf", "0", False), ("expect", "agent", False),
        ("hangup", "", False)]
    assert steps[1].interrupt_after_ms == 700
    with pytest.raises(ScriptError, match="--interrupt must be followed"):
        build_steps([("interrupt", []), ("expect", "x")], 700)


def test_transcript_matching_ignores_case_and_punctuation_but_needs_whole_words() -> None:
    assert heard_contains("Order 12345 is Shipped. It should arrive Tuesday.", "shipped")
    assert heard_contains("Transferring you to an agent.", "to an AGENT")
    assert not heard_contains("unshipped", "shipped")
    assert not heard_contains("anything", "")


def test_hearing_reports_onset_on_first_loud_packet_and_utterance_after_the_quiet() -> None:
    hearing = Hearing(RATE, end_silence_ms=200)
    now, events = 0.0, []
    for _ in range(10):
        events += hearing.packet(now, SILENT)
        now += 0.02
    onset_at = now
    for _ in range(25):
        events += hearing.packet(now, tone())
        now += 0.02
    last_loud = now - 0.02
    for _ in range(15):
        events += hearing.packet(now, SILENT)
        now += 0.02
    assert isinstance(events[0], SpeechOnset) and events[0].at == pytest.approx(onset_at)
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 1 and len(events) == 2
    assert utterances[0].onset == pytest.approx(onset_at) and utterances[0].last_voice == pytest.approx(last_loud)
    # 100 ms of preroll, 25 loud packets, and the silence up to the cut
    assert len(utterances[0].pcm) >= 25 * 320 + 1600
    assert not hearing.speaking


def test_hearing_bridges_short_pauses_and_flushes_at_the_end() -> None:
    hearing = Hearing(RATE, end_silence_ms=300)
    now, events = 0.0, []
    for chunk in (tone(),) * 5 + (SILENT,) * 10 + (tone(),) * 5:   # 200 ms pause < 300 ms
        events += hearing.packet(now, chunk)
        now += 0.02
    assert [type(e) for e in events] == [SpeechOnset]
    assert hearing.poll(now) is None                    # 20 ms after the last loud packet
    assert hearing.poll(now + 0.5) is not None           # packets stopped: ended by the clock
    assert hearing.flush() is None


def test_quiet_audio_is_not_speech_and_trim_cuts_silent_ends() -> None:
    hearing = Hearing(RATE)
    assert hearing.packet(0.0, tone(0.001)) == []        # about -60 dBFS
    pcm = bytes(800) + tone() + bytes(400)
    assert trim_silence(pcm, TRIM_LEVEL) and len(trim_silence(pcm, TRIM_LEVEL)) < len(tone()) + 2
    assert trim_silence(bytes(100), TRIM_LEVEL) == b""
    with pytest.raises(ValueError):
        Hearing(0)


@pytest.mark.parametrize(("argv", "message"), [
    (["sip:order_status@127.0.0.1:5060", "--dtmf", "12x"], "dtmf digits must be 0-9 * # A-D"),
    (["sip:order_status@127.0.0.1:5060"], "nothing to do"),
    (["http://example.org", "--say", "hi"], "not a SIP URI"),
    (["sip:a@127.0.0.1", "--script", "/nonexistent/x.yaml"], "cannot read"),
])
def test_the_cli_refuses_a_bad_call_with_status_2_and_says_why(argv: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dialtone", "call", *argv], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
