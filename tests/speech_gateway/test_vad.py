"""Both VAD engines on a real prompt through the phone path, feeding the endpointing core."""

from __future__ import annotations

import pytest
from dialtone.common.audio import split_frames
from dialtone.speech_gateway.audio_io import read_wav, telephone_path
from dialtone.speech_gateway.call import segmenter_settings
from dialtone.speech_gateway.config import VadConfig
from dialtone.speech_gateway.core.events import SpeechEnded, SpeechStarted
from dialtone.speech_gateway.core.segmenter import Segmenter
from dialtone.speech_gateway.engines.base import ModelError
from dialtone.speech_gateway.engines.vad import build_vad

from tests.speech_gateway.corpus import SOUNDS


@pytest.mark.parametrize("engine", ["webrtc", "silero"])
def test_one_utterance_is_found_between_silences(engine):
    pcm, rate = read_wav(SOUNDS / "agent-pass.wav")  # ~3.3 s: "Please enter your password ..."
    speech = telephone_path(pcm, rate)
    audio = bytes(16000 * 2) + speech + bytes(16000 * 2)  # 1 s of silence either side
    vad, seg = build_vad(engine), Segmenter(segmenter_settings(VadConfig(engine=engine)))
    events = []
    for i, frame in enumerate(split_frames(audio)):
        events += seg.feed(vad.is_speech(frame), i * 20)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == 1 and len(ends) == 1
    speech_ms = len(speech) // 32
    assert 1000 <= starts[0].start_ms <= 1200  # the prompt's own lead-in is ~60 ms of near-silence
    assert 1000 + speech_ms - 300 <= ends[0].end_ms <= 1000 + speech_ms + 100


def test_digital_silence_is_never_speech():
    for engine in ("webrtc", "silero"):
        vad = build_vad(engine)
        assert not any(vad.is_speech(bytes(640)) for _ in range(50))


def test_bad_vad_settings_are_refused():
    with pytest.raises(ModelError, match="aggressiveness must be 0-3"):
        build_vad("webrtc", aggressiveness=7)
    with pytest.raises(ModelError, match="unknown VAD engine 'x'"):
        build_vad("x")
