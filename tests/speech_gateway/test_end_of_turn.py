"""End of turn through the service: the state's expectation (StateChanged.expect from a real grpc.aio
runtime stand-in) against recorded human digits with a pause inside, and a malformed expectation."""

from __future__ import annotations

import asyncio

import pytest
from dialtone.common.audio import trim_silence
from dialtone.speech_gateway.audio_io import read_wav, telephone_path
from dialtone.speech_gateway.config import VadConfig
from dialtone.speech_gateway.textnorm import digit_string
from dialtone.v1 import conversation_runtime_pb2 as rpb
from prometheus_client import REGISTRY

from tests.speech_gateway.corpus import SOUNDS
from tests.speech_gateway.standins import MediaClient, say, start_runtime

pytestmark = pytest.mark.slow

SID = "call-eot"
DIGITS4 = rpb.Expectation(entity="digits", constraints_json='{"min_length": 4}')


def spoken(*parts: str | int) -> bytes:
    """Asterisk's digits/N.wav (their silent ends cut) joined by gaps of N ms, through the G.711 path."""
    pcm, rate = b"", 8000
    for part in parts:
        if isinstance(part, int):
            pcm += bytes(2 * rate * part // 1000)
        else:
            clip, rate = read_wav(SOUNDS / "digits" / f"{part}.wav")
            pcm += trim_silence(clip, 300)
    return telephone_path(pcm, rate)


def expecting(expect: rpb.Expectation | None):
    def script(stream, event):
        if event.WhichOneof("payload") == "call_started":
            changed = rpb.StateChanged(dialog="orders", state="greet")
            if expect is not None:
                changed.expect.CopyFrom(expect)
            return [rpb.DialogAction(session_id=SID, seq=1, state_changed=changed)]
        return []
    return script


async def finals_of(gateway, expect: rpb.Expectation | None, pcm: bytes, vad: VadConfig) -> list[str]:
    server, runtime, address = await start_runtime(expecting(expect))
    media = MediaClient(await gateway(address, vad=vad), SID)
    try:
        await media.start()
        await media.wait_for(lambda: any(m.notice.kind == "state" for m in media.received))
        await media.silence(300)
        await media.audio(pcm)
        await media.silence(2500, real_time=True)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    return [e.transcript.text for e in runtime.events("transcript") if e.transcript.is_final]


def ends(label: str) -> float:
    return REGISTRY.get_sample_value("dialtone_speech_utterances_total", {"end": label}) or 0.0


async def test_a_pause_mid_number_is_not_a_turn_when_the_state_expects_more_digits(gateway):
    """ "7 8 ... 3 9" with an 800 ms pause: with the state expecting at least 4 digits it is one turn (the
    pause's "78" is unfinished), and the whole number ends it early; without an expectation the pause,
    longer than vad.stop_ms, ends a turn of two digits."""
    pcm = spoken("7", 120, "8", 800, "3", 120, "9")
    # incomplete_stop_ms is long so that the decode of the last pause always returns within it, even on a
    # loaded machine: the turn must then end on that decode's complete verdict
    vad = VadConfig(incomplete_stop_ms=3000)
    early = ends("early")
    finals = await finals_of(gateway, DIGITS4, pcm, vad)
    assert [digit_string(text) for text in finals] == ["7839"], finals
    assert ends("early") == early + 1
    finals = await finals_of(gateway, None, pcm, vad)
    assert len(finals) == 2 and digit_string(finals[0]) == "78", finals


async def test_with_the_turn_model_a_pause_in_a_list_of_digits_is_not_a_turn(gateway):
    """No expectation, so the words of the pause ("78") settle nothing; Smart Turn hears digits read as a
    list, unfinished, and the turn waits incomplete_stop_ms: "7 8 ... 3 9" is one turn (without the model
    the test above shows it cut in two)."""
    pcm = spoken("7", 120, "8", 800, "3", 120, "9")
    asked = REGISTRY.get_sample_value("dialtone_speech_turn_model_seconds_count") or 0.0
    finals = await finals_of(gateway, None, pcm, VadConfig(turn_model="smart-turn", incomplete_stop_ms=3000))
    assert [digit_string(text) for text in finals] == ["7839"], finals
    assert (REGISTRY.get_sample_value("dialtone_speech_turn_model_seconds_count") or 0.0) > asked


async def test_a_malformed_expectation_is_reported_and_the_turn_ends_by_silence(gateway):
    """An unknown entity type is not applied: a CallNotice error names it, and speech still makes a turn."""
    server, runtime, address = await start_runtime(expecting(rpb.Expectation(entity="colour" * 50)))
    media = MediaClient(await gateway(address), SID)
    try:
        await media.start()
        notice = await media.wait_for(lambda: [m.notice.text for m in media.received if m.notice.kind == "error"])
        await media.silence(300)
        await media.audio(spoken("4", 120, "2"))
        await media.silence(1200, real_time=True)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
    finally:
        await media.close()
        await server.stop(0)
    assert notice[0].startswith("expectation ignored: unknown entity type 'colourcolour") and len(notice[0]) < 160


def eager(outcome: str) -> float:
    return REGISTRY.get_sample_value("dialtone_speech_eager_replies_total", {"outcome": outcome}) or 0.0


def answering_eagerly():
    """A runtime that answers a provisional transcript with the reply it would give ("You said 78."), and
    a final one with that reply as a Say."""
    said = [1]

    def script(stream, event):
        kind = event.WhichOneof("payload")
        if kind == "call_started":
            return [rpb.DialogAction(session_id=SID, seq=1, state_changed=rpb.StateChanged(dialog="d", state="s"))]
        if kind == "transcript" and event.transcript.provisional:
            reply = f"You said {digit_string(event.transcript.text)}."
            return [rpb.DialogAction(session_id=SID, prepare_reply=rpb.PrepareReply(
                texts=[reply], for_event_seq=event.seq))]
        if kind == "transcript" and event.transcript.is_final:
            said[0] += 1
            return [say(SID, said[0], f"You said {digit_string(event.transcript.text)}.", f"u{said[0]}")]
        return []
    return script


async def test_an_eager_reply_is_spoken_only_when_the_turn_ends_with_its_words(gateway):
    """ "7 8 ... 3 9" with a pause shorter than the turn's end: the pause's "78" goes to the runtime as
    provisional and its reply is rendered ahead, then dropped when the caller goes on (cancelled); the last
    pause's "7839" is rendered ahead while the turn ends, and the dialog's Say of it starts from that
    rendering (committed). The runtime never gets a final "78"."""
    pcm = spoken("7", 120, "8", 800, "3", 120, "9")
    before = {o: eager(o) for o in ("prepared", "committed", "cancelled")}
    first_audio = REGISTRY.get_sample_value("dialtone_speech_tts_first_audio_seconds_count",
                                            {"engine": "piper", "cache": "miss"}) or 0.0
    server, runtime, address = await start_runtime(answering_eagerly())
    media = MediaClient(await gateway(address, vad=VadConfig(stop_ms=1500, incomplete_stop_ms=3000)), SID)
    try:
        await media.start()
        await media.wait_for(lambda: any(m.notice.kind == "state" for m in media.received))
        await media.silence(300)
        await media.audio(pcm, real_time=True)   # the pause's decode returns while the caller is silent
        await media.silence(2500, real_time=True)
        await media.wait_for(lambda: any(m.play_audio.last for m in media.of("play_audio")))
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    provisional = [e.transcript.text for e in runtime.events("transcript") if e.transcript.provisional]
    finals = [e.transcript.text for e in runtime.events("transcript") if e.transcript.is_final]
    assert [digit_string(t) for t in finals] == ["7839"], finals
    assert [digit_string(t) for t in provisional][-1] == "7839" and len(provisional) >= 2, provisional
    assert eager("prepared") >= before["prepared"] + 2
    assert eager("cancelled") >= before["cancelled"] + 1
    assert eager("committed") == before["committed"] + 1
    # the Say's first audio came from the rendering ahead, not from a synthesis of its own
    assert (REGISTRY.get_sample_value("dialtone_speech_tts_first_audio_seconds_count",
                                      {"engine": "piper", "cache": "miss"}) or 0.0) == first_audio
