"""The packaged order_status dialog end to end: `dialtone up` (four services and the example backend as
processes) and `dialtone call` over real SIP/RTP on loopback; every check is on what the caller heard
(its local ASR transcript) or on SIP it received."""

from __future__ import annotations

import asyncio
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from dialtone.caller.script import heard_contains
from dialtone.caller.voices import Voices, read_wav
from dialtone.common.audio import resample

from tests.e2e.softphone import baresip_call
from tests.e2e.support import MEDIA, SPEECH, Stack, call, first_heard

ORDER = "one two three four five"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("up"))
    yield running
    running.stop()


def test_spoken_order_number_is_looked_up_and_the_status_heard_then_the_dialog_hangs_up(
        stack: Stack, tmp_path: Path) -> None:
    code, report, output = call(stack, "--say", ORDER, "--expect", "tuesday", "--wait", "bye",
                                folder=tmp_path, name="order")
    assert code == 0, output + stack.log()[-3000:]
    # the backend's answer (example backend via the integration gateway: shipped, eta Tuesday) was read
    # out; "Tuesday" is the word the tiny ASR gets right every time ("is shipped" may come out "a ship")
    assert any(heard_contains(text, "arrive tuesday") for text in report["heard"]), output
    assert report["ended_by"] == "bot_hangup", output     # the dialog's hangup became a BYE
    assert len(report["turn_latencies_ms"]) >= 1
    assert "orders.get_status GET /orders/12345 -> 200" in stack.log()


def test_dtmf_zero_transfers_to_the_agent_with_a_refer(stack: Stack, tmp_path: Path) -> None:
    script = tmp_path / "agent.yaml"
    script.write_text("steps:\n  - dtmf: '0'\n  - wait: refer\n")
    code, report, output = call(stack, "--script", str(script), folder=tmp_path, name="agent")
    assert code == 0, output
    assert report["refer_to"] == "sip:agent@127.0.0.1"
    assert report["ended_by"] == "transferred"
    # the dialog's "Transferring you to an agent." is played whole before the REFER goes out
    assert any(heard_contains(text, "transferring") for text in report["heard"]), output


def test_silence_runs_the_no_input_path(stack: Stack, tmp_path: Path) -> None:
    code, report, output = call(stack, "--silence", "9", "--expect", "did not get that", folder=tmp_path,
                                name="silence")
    assert code == 0, output
    assert heard_contains(first_heard(report), "welcome")


def test_barge_in_over_a_prompt_that_allows_it_stops_it_and_the_dialog_hears_the_caller(
        stack: Stack, tmp_path: Path) -> None:
    # the greeting ends; silence brings the reprompt (barge-in on); we talk 1 s into it
    code, report, output = call(stack, "--wait", "speech", "--interrupt", "--say", ORDER, "--expect", "look up",
                                folder=tmp_path, name="barge")
    assert code == 0, output
    assert len(report["barge_in_ms"]) == 1, output
    reprompt = report["heard"][1]
    assert heard_contains(reprompt, "sorry") and not heard_contains(reprompt, "for an agent"), output
    assert any(heard_contains(text, "12345") or heard_contains(text, "12 345") for text in report["heard"][2:]) \
        or any("12,345" in text for text in report["heard"][2:]), output
    # the call path's metrics saw it: barge-in reaction, turn latency, playback underruns counted
    assert stack.metric(SPEECH, "dialtone_speech_barge_in_reaction_seconds_count") >= 1
    # the reprompt was silenced at the speech's onset, then stopped by the verdict (not resumed)
    assert stack.metric(SPEECH, 'dialtone_speech_prompt_holds_total{outcome="stopped"}') >= 1
    assert stack.metric(SPEECH, "dialtone_speech_turn_latency_seconds_count") >= 1
    assert stack.metric(SPEECH, "dialtone_speech_asr_latency_seconds_count") >= 1
    assert "dialtone_rtp_playback_underruns_total" in urllib.request.urlopen(  # noqa: S310 - loopback
        f"http://127.0.0.1:{stack.base + 100 + MEDIA}/metrics", timeout=5).read().decode()


def test_barge_in_over_a_prompt_that_forbids_it_plays_to_the_end(stack: Stack, tmp_path: Path) -> None:
    # "Welcome to Acme. This call may be recorded." has barge_in: off; we talk 0.5 s into it
    code, report, output = call(stack, "--interrupt", "--say", "hello hello hello", "--interrupt-after-ms", "500",
                                "--wait", "speech", folder=tmp_path, name="nobarge")
    assert code == 0, output
    assert heard_contains(first_heard(report), "may be recorded"), output


def test_a_real_softphone_completes_the_order_status_call(stack: Stack, tmp_path: Path) -> None:
    async def render_and_transcribe() -> tuple[str, str]:
        voices = await Voices.load()
        try:
            pcm, rate = await voices.render(ORDER)
            speech = resample(pcm, rate, 8000)
            # quiet while the greeting plays, then the order number, then quiet until the dialog hangs up
            with wave.open(str(tmp_path / "say.wav"), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(8000)
                wav.writeframes(bytes(8000 * 2 * 8) + speech + bytes(8000 * 2 * 25))
            heard_wav, log = await asyncio.to_thread(baresip_call, tmp_path, stack.uri(), tmp_path / "say.wav")
            heard_pcm, heard_rate = read_wav(str(heard_wav))
            return await voices.transcribe(heard_pcm, heard_rate), log
        finally:
            voices.close()

    transcript, log = asyncio.run(render_and_transcribe())
    assert "Call established" in log, log[-3000:]
    # "Tuesday" is the example backend's eta for the order, read out by tell_status
    assert heard_contains(transcript, "welcome") and heard_contains(transcript, "tuesday"), transcript
    assert "terminated" in log    # the dialog hung up after reading the status


def test_the_pharmacy_line_understands_a_position_a_double_a_yes_and_a_day(stack: Stack, tmp_path: Path) -> None:
    """Issue 13 end to end: the caller's synthesized speech is understood as a menu choice by position,
    a prescription number with "double", a yes to the read-back and a pickup day; the backend gets the
    typed values and the caller hears them read back as words."""
    code, report, output = call(
        stack, "--say", "the second one", "--expect", "prescription",
        "--say", "four double five one two three nine", "--expect", "is that right",
        "--say", "yeah that's right", "--expect", "pick it up",
        "--say", "next tuesday at three pm", "--wait", "bye",
        folder=tmp_path, name="pharmacy", timeout=90.0, dialog="pharmacy_refill")
    assert code == 0, output + stack.log()[-3000:]
    heard = " ".join(report["heard"])
    # the read-back said the digits one by one; the caller's tiny ASR writes them as figures, grouped
    # its own way ("455 1239", "45 5 1 2 3 9") and sometimes hears the first "four" as "for"
    read_back = next(text for text in report["heard"] if heard_contains(text, "is that right"))
    assert "551239" in "".join(ch for ch in read_back if ch.isdigit()), output
    assert heard_contains(heard, "ready on tuesday"), output
    assert report["ended_by"] == "bot_hangup", output
    assert "pharmacy.refill POST /refills -> 201" in stack.log(), stack.log()[-3000:]

