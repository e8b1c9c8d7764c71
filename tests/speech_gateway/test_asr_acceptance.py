"""ASR acceptance on real telephone audio: >= 40 Asterisk prompts through G.711 at
WER <= 12 % and exact digit strings, for faster-whisper (default) and whisper.cpp
with a ggml model converted by `dialtone models convert-ggml`."""

from __future__ import annotations

import subprocess
import sys

import jiwer
import pytest
from dialtone.speech_gateway.config import AsrConfig
from dialtone.speech_gateway.engines.factory import build_asr
from dialtone.speech_gateway.textnorm import digit_string, normalize

from tests.speech_gateway.corpus import as_float, digit_strings, prompt_sample

pytestmark = pytest.mark.slow

MAX_WER = 0.12


@pytest.fixture(scope="module")
def prompts():
    sample = prompt_sample()
    assert len(sample) >= 40
    return sample


@pytest.fixture(scope="module")
def digits():
    return digit_strings()


def corpus_wer(engine, prompts) -> tuple[float, list[tuple[str, str, str]]]:
    refs, hyps, misses = [], [], []
    for name, pcm, text in prompts:
        hyp = engine.transcribe(as_float(pcm)).text
        refs.append(normalize(text))
        hyps.append(normalize(hyp))
        if refs[-1] != hyps[-1]:
            misses.append((name, refs[-1], hyps[-1]))
    return jiwer.wer(refs, hyps), misses


def check_engine(engine, prompts, digits) -> None:
    wer, misses = corpus_wer(engine, prompts)
    assert wer <= MAX_WER, f"WER {wer:.3f} over {len(prompts)} prompts; misses: {misses}"
    wrong = [(want, engine.transcribe(as_float(pcm)).text) for want, pcm in digits]
    wrong = [(want, got) for want, got in wrong if digit_string(got) != want]
    assert wrong == []


def test_faster_whisper_default_on_telephone_prompts_and_digit_strings(prompts, digits):
    """The default engine (tiny.en, int8, 2 threads) meets WER <= 12 % and gets every digit string."""
    check_engine(build_asr(AsrConfig()), prompts, digits)


def test_whispercpp_with_converted_model_passes_the_same_check(ggml_model, prompts, digits):
    """whisper.cpp loads the ggml file our converter wrote and decodes as accurately."""
    engine = build_asr(AsrConfig(engine="whispercpp", ggml_model=str(ggml_model), audio_ctx=512))
    check_engine(engine, prompts, digits)


def test_say_then_transcribe_round_trip_through_the_cli(tmp_path):
    """`dialtone say` writes a WAV that `dialtone transcribe --telephone` turns back into the text."""
    out = tmp_path / "order.wav"
    text = "Your order number is 4 8 1 5. It will arrive on Tuesday."
    said = subprocess.run([sys.executable, "-m", "dialtone", "say", text, "-o", str(out), "--rate", "22050"],
                          capture_output=True, text=True, timeout=60)
    assert said.returncode == 0, said.stderr
    heard = subprocess.run([sys.executable, "-m", "dialtone", "transcribe", str(out), "--telephone"],
                           capture_output=True, text=True, timeout=60)
    assert heard.returncode == 0, heard.stderr
    assert normalize(heard.stdout) == normalize(text)


def test_transcribe_accepts_any_rate_and_channel_count(tmp_path):
    """A 44.1 kHz stereo WAV is mixed down and resampled before decoding."""
    import wave

    import numpy as np
    from dialtone.common.audio import resample
    from dialtone.speech_gateway.audio_io import read_wav

    from tests.speech_gateway.corpus import SOUNDS

    pcm, rate = read_wav(SOUNDS / "auth-thankyou.wav")
    mono = np.frombuffer(resample(pcm, rate, 44100), dtype="<i2")
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(np.column_stack([mono, mono]).astype("<i2").tobytes())
    heard = subprocess.run([sys.executable, "-m", "dialtone", "transcribe", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert heard.returncode == 0, heard.stderr
    assert normalize(heard.stdout) == "thank you"


def test_say_with_a_light_engine_and_bad_input(tmp_path):
    out = tmp_path / "flite.wav"
    done = subprocess.run([sys.executable, "-m", "dialtone", "say", "Goodbye.", "-o", str(out), "--engine", "flite",
                           "--rate", "8000"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from dialtone.speech_gateway.audio_io import read_wav

    pcm, rate = read_wav(out)
    assert rate == 8000 and len(pcm) > 8000  # more than half a second of speech
    empty = subprocess.run([sys.executable, "-m", "dialtone", "say", "  ", "-o", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "the text is empty" in empty.stderr
