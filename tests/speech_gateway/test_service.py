"""The StreamCall <-> Converse bridge against a real grpc.aio runtime stand-in and a media
client sending real (G.711-path) audio: transcripts, prompts, barge-in, backchannels,
resume with Say idempotency, and bad input."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from dialtone.speech_gateway.config import VadConfig
from dialtone.speech_gateway.textnorm import digit_string
from dialtone.v1 import common_pb2 as cpb
from prometheus_client import REGISTRY

from tests.speech_gateway.standins import ABORT, MediaClient, say, start_runtime

pytestmark = pytest.mark.slow

SID = "call-1"


def kinds(events) -> list[str]:
    return [e.WhichOneof("payload") for e in events]


@pytest.mark.parametrize("vad_engine", ["webrtc", "silero"])
async def test_call_transcribes_digits_and_streams_a_prompt_at_the_media_rate(gateway, speech_audio, vad_engine):
    """CallStarted reaches the runtime, its Say comes back as 8 kHz PlayAudio chunks ending with last,
    and the caller's digit string arrives as SpeechStarted, SpeechEnded and a final Transcript."""
    def script(stream, event):
        if event.WhichOneof("payload") == "call_started":
            return [say(SID, 1, "Welcome to Acme. Say your order number.", "greet")]
        return []

    server, runtime, address = await start_runtime(script)
    media = MediaClient(await gateway(address, vad=VadConfig(engine=vad_engine)), SID, playback_rate=8000)
    try:
        await media.start()
        await media.wait_for(lambda: any(m.play_audio.last for m in media.of("play_audio")))
        chunks = [m.play_audio for m in media.of("play_audio")]
        assert {c.utterance_id for c in chunks} == {"greet"} and {c.sample_rate for c in chunks} == {8000}
        played_s = sum(len(c.pcm) for c in chunks) / 2 / 8000
        assert 1.5 < played_s < 6.0
        assert chunks[0].idempotency_key == f"{SID}:1:0"
        # the voice's leading digital silence (piper: 40-60 ms) is not sent: speech within 30 ms
        onset = np.frombuffer(chunks[0].pcm[:2 * 8000 * 30 // 1000], dtype="<i2")
        assert int(np.abs(onset.astype(np.int32)).max()) >= 64

        await media.silence(400)
        want, pcm = speech_audio["digits"]
        await media.audio(pcm)
        await media.silence(1200)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)

    events = runtime.events()
    names = kinds(events)
    assert names[0] == "call_started" and names[-1] == "call_ended"
    assert "transcript" in names, (names, [m.WhichOneof("payload") for m in media.received if m.notice.kind != "say"])
    assert names.index("speech_started") < names.index("speech_ended") < names.index("transcript")
    final = [e.transcript for e in runtime.events("transcript") if e.transcript.is_final]
    assert len(final) == 1
    assert digit_string(final[0].text) == want
    assert 0.0 < final[0].confidence <= 1.0 and final[0].end_ms > final[0].start_ms >= 400
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert any(n.notice.kind == "transcript.final" for n in media.of("notice"))


async def test_a_finished_sentence_ends_the_turn_early_with_its_speculative_transcript(gateway, speech_audio):
    """With vad.early_stop_ms the speculative decode of the pause ("...the pound key.") ends the turn
    before stop_ms; the final transcript is that decode, not a second one."""
    def label(end):
        return REGISTRY.get_sample_value("dialtone_speech_utterances_total", {"end": end}) or 0.0

    early_before, silence_before = label("early"), label("silence")
    server, runtime, address = await start_runtime(lambda stream, event: [])
    # stop_ms is long so that the decode (about 0.5 s for tiny.en on one thread) always returns
    # within it, even on a loaded CI machine: the turn must then end on the decode, not the silence
    media = MediaClient(await gateway(address, vad=VadConfig(stop_ms=3000, early_stop_ms=300)), SID)
    try:
        await media.start()
        await media.silence(300)
        await media.audio(speech_audio["long"])
        await media.silence(3200, real_time=True)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert label("early") == early_before + 1 and label("silence") == silence_before
    final = [e.transcript for e in runtime.events("transcript") if e.transcript.is_final]
    assert len(final) == 1 and final[0].text.lower().startswith("please enter your password")


async def test_after_words_prompt_is_interrupted_on_a_partial_while_partials_are_otherwise_off(gateway, speech_audio):
    """Partials are not decoded by default, except while speech over an after_words prompt is judged:
    the verdict comes from a partial transcript, which the runtime then gets with the released events."""
    before = REGISTRY.get_sample_value("dialtone_speech_barge_ins_total", {"reason": "words"}) or 0.0
    server, runtime, media = await start_prompt_call(gateway, mode=cpb.BARGE_IN_MODE_AFTER_WORDS, min_words=2)
    try:
        await media.audio(speech_audio["long"], real_time=True)
        await media.silence(1000, real_time=True)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert REGISTRY.get_sample_value("dialtone_speech_barge_ins_total", {"reason": "words"}) == before + 1
    assert media.of("stop_playback")[0].stop_playback.utterance_id == "hold-msg"
    assert media.of("hold_playback") == []            # after_words prompts play on while judged
    transcripts = [e.transcript for e in runtime.events("transcript")]
    assert any(not t.is_final and not t.provisional for t in transcripts) and transcripts[-1].is_final


async def test_without_a_prompt_no_partial_is_decoded_by_default(gateway, speech_audio):
    server, runtime, address = await start_runtime(lambda stream, event: [])
    media = MediaClient(await gateway(address), SID)
    try:
        await media.start()
        await media.audio(speech_audio["long"], real_time=True)
        await media.silence(1000, real_time=True)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    # partials are not decoded; the pause's speculative transcript may go up as provisional (eager reply)
    assert [t.transcript.is_final for t in runtime.events("transcript") if not t.transcript.provisional] == [True]
    assert not any(m.notice.kind == "transcript.partial" for m in media.received)


async def start_prompt_call(gateway, mode=None, min_words=0):
    """A call whose runtime says one long prompt; the media side reports it as playing."""
    kwargs = {} if mode is None else {"mode": mode}
    if min_words:
        kwargs["min_words"] = min_words

    def script(stream, event):
        if event.WhichOneof("payload") == "call_started":
            return [say(SID, 1, "Thank you for calling. Your call is important to us. Please stay on the line "
                                "while we find the next available agent for you.", "hold-msg", **kwargs)]
        return []

    server, runtime, address = await start_runtime(script)
    media = MediaClient(await gateway(address), SID, playback_rate=16000)
    await media.start()
    await media.wait_for(lambda: media.of("play_audio"))
    await media.send(playback_started=cpb.PlaybackStarted(utterance_id="hold-msg", timestamp_ms=0))
    await media.silence(300)
    return server, runtime, media


async def test_barge_in_stops_the_prompt_within_one_vad_decision(gateway, speech_audio):
    """Speech over a barge-in prompt sends StopPlayback on the frame where it reaches
    backchannel_max_ms, and the runtime's SpeechStarted names the interrupted prompt."""
    before = REGISTRY.get_sample_value("dialtone_speech_barge_ins_total", {"reason": "speech"}) or 0.0
    server, runtime, media = await start_prompt_call(gateway)
    try:
        await media.audio(speech_audio["long"])
        stop = await media.wait_for(lambda: media.of("stop_playback"))
        assert REGISTRY.get_sample_value("dialtone_speech_barge_ins_total", {"reason": "speech"}) == before + 1
        notice = next(m.notice for m in media.received if m.notice.kind == "barge_in")
        await media.send(playback_finished=cpb.PlaybackFinished(utterance_id="hold-msg", interrupted=True))
        await media.silence(1000)
        await media.wait_for(lambda: any(m.notice.kind == "transcript.final" for m in media.received), 60)
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert stop[0].stop_playback.utterance_id == "hold-msg" and stop[0].stop_playback.reason == "barge_in"
    started = runtime.events("speech_started")[0].speech_started
    assert started.interrupted_utterance_id == "hold-msg"
    # The decision frame: the one whose end makes the speech 700 ms long (the default threshold).
    decided_frame_ms = int(notice.text.split("=")[1])
    assert decided_frame_ms + 20 - started.timestamp_ms == 700
    # ...but the prompt went silent long before: held on the frame where the speech was detected,
    # ahead of the StopPlayback in the downlink, and never resumed.
    hold_notice = next(m.notice for m in media.received if m.notice.kind == "barge_in.hold")
    held_frame_ms = int(hold_notice.text.split("=")[1])
    assert held_frame_ms + 20 - started.timestamp_ms <= 200 + 20   # the VAD's 200 ms start window
    order = [m.WhichOneof("payload") for m in media.received]
    assert order.index("hold_playback") < order.index("stop_playback")
    assert [m.hold_playback.utterance_id for m in media.of("hold_playback")] == ["hold-msg"]
    assert media.of("resume_playback") == []
    assert runtime.events("transcript")[-1].transcript.text.lower().startswith("please enter your password")


async def test_backchannel_over_a_prompt_does_not_interrupt_it(gateway, speech_audio):
    """A short "okay" over the prompt sends no StopPlayback and reaches the runtime as nothing."""
    server, runtime, media = await start_prompt_call(gateway)
    try:
        await media.audio(speech_audio["okay"])
        await media.silence(1500)
        await media.send(playback_finished=cpb.PlaybackFinished(utterance_id="hold-msg", interrupted=False))
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert media.of("stop_playback") == []
    # the prompt was silenced while the "okay" was judged, then resumed where it stopped
    order = [m.WhichOneof("payload") for m in media.received]
    assert order.count("hold_playback") == 1 and order.count("resume_playback") == 1
    assert order.index("hold_playback") < order.index("resume_playback")
    assert media.of("resume_playback")[0].resume_playback.utterance_id == "hold-msg"
    names = kinds(runtime.events())
    assert "speech_started" not in names and "transcript" not in names
    assert "playback_finished" in names


async def test_speech_over_a_barge_in_off_prompt_is_ignored(gateway, speech_audio):
    """A disclosure (barge-in off) plays on under long speech; the speech is not forwarded."""
    server, runtime, media = await start_prompt_call(gateway, mode=cpb.BARGE_IN_MODE_OFF)
    try:
        await media.audio(speech_audio["long"])
        await media.silence(1000)
        await media.send(playback_finished=cpb.PlaybackFinished(utterance_id="hold-msg"))
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert media.of("stop_playback") == [] and media.of("hold_playback") == []
    assert "speech_started" not in kinds(runtime.events())


async def test_resume_after_a_broken_runtime_stream_does_not_replay_a_played_say(gateway):
    """The runtime stream breaks after a Say played; the gateway resumes with the seqs it saw,
    and a re-issued Say with the same idempotency key is not played again while a new one is."""
    def script(stream, event):
        kind = event.WhichOneof("payload")
        if stream == 0 and kind == "call_started":
            return [say(SID, 1, "Hello.", "u1", key=f"{SID}:1:0")]
        if stream == 0 and kind == "playback_started":
            return ABORT
        if stream == 1 and kind == "resume":
            return [say(SID, 2, "Hello.", "u1", key=f"{SID}:1:0"), say(SID, 3, "Goodbye.", "u2", key=f"{SID}:3:0")]
        return []

    server, runtime, address = await start_runtime(script)
    media = MediaClient(await gateway(address), SID)
    try:
        await media.start()
        await media.wait_for(lambda: any(m.play_audio.last for m in media.of("play_audio")))
        await media.send(playback_started=cpb.PlaybackStarted(utterance_id="u1"))
        await media.wait_for(lambda: any(m.play_audio.utterance_id == "u2" and m.play_audio.last
                                         for m in media.of("play_audio")))
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert len(runtime.streams) == 2
    resume = runtime.streams[1][0]
    assert resume.WhichOneof("payload") == "resume"
    assert resume.resume.last_action_seq == 1 and resume.resume.last_event_seq >= 1
    # the event the first stream received just before it died (unsaved, as far as the gateway can
    # tell) is sent again after the Resume, with its own seq: the runtime skips it if it had it
    died_on = runtime.streams[0][-1]
    assert died_on.WhichOneof("payload") == "playback_started"
    replayed = [e for e in runtime.streams[1][1:] if e.seq == died_on.seq]
    assert replayed == [died_on]
    lasts = [m.play_audio.utterance_id for m in media.of("play_audio") if m.play_audio.last]
    assert lasts == ["u1", "u2"]


@pytest.mark.parametrize("first, message", [
    ({"audio": {"pcm": b"\0" * 640}}, "a stream must begin with call_start, got audio"),
    ({"call_start": {"sample_rate": 8000}}, "CallStart: sample_rate must be 16000 (got 8000)"),
])
async def test_bad_first_message_is_invalid_argument(gateway, first, message):
    from dialtone.v1 import speech_gateway_pb2 as pb
    from dialtone.v1 import speech_gateway_pb2_grpc as pb_grpc

    server, _runtime, address = await start_runtime(lambda s, e: [])
    try:
        async with grpc.aio.insecure_channel(await gateway(address)) as channel:
            call = pb_grpc.SpeechGatewayStub(channel).StreamCall()
            await call.write(pb.MediaUplink(session_id=SID, seq=1, **{
                k: (pb.AudioFrame(**v) if k == "audio" else pb.CallStart(**v)) for k, v in first.items()}))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in call:
                    pass
    finally:
        await server.stop(0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


async def test_wrong_frame_size_mid_call_is_invalid_argument(gateway):
    from dialtone.v1 import speech_gateway_pb2 as pb

    server, _runtime, address = await start_runtime(lambda s, e: [])
    media = MediaClient(await gateway(address), SID)
    try:
        await media.start()
        await media.send(audio=pb.AudioFrame(pcm=b"\0" * 100, timestamp_ms=0))
        with pytest.raises(AssertionError):
            await media.wait_for(lambda: False, timeout=10)
    finally:
        await media.close()
        await server.stop(0)
    assert media.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "pcm must be 640 bytes" in media.details and "got 100" in media.details


async def test_key_press_interrupts_a_dtmf_only_prompt_and_reaches_the_runtime(gateway):
    """DTMF over a dtmf_only prompt sends StopPlayback at once; the digit goes to the runtime."""
    server, runtime, media = await start_prompt_call(gateway, mode=cpb.BARGE_IN_MODE_DTMF_ONLY)
    try:
        await media.send(dtmf=cpb.Dtmf(digit="5", duration_ms=120, source=cpb.DTMF_SOURCE_RFC4733, timestamp_ms=300))
        stop = await media.wait_for(lambda: media.of("stop_playback"))
        await media.end()
        await asyncio.wait_for(runtime.ended.wait(), 20)
    finally:
        await media.close()
        await server.stop(0)
    assert stop[0].stop_playback.utterance_id == "hold-msg"
    assert [e.dtmf.digit for e in runtime.events("dtmf")] == ["5"]


async def test_unreachable_runtime_ends_in_a_hangup_not_a_hung_call(gateway, port):
    """With no runtime listening, the gateway retries for runtime_reconnect_s, then asks media to hang up."""
    media = MediaClient(await gateway(f"127.0.0.1:{port}", runtime_reconnect_s=0.5), SID)
    try:
        await media.start()
        hangup = await media.wait_for(lambda: media.of("hangup"), timeout=30)
    finally:
        await media.close()
    assert hangup[0].hangup.reason == "runtime_unavailable"
