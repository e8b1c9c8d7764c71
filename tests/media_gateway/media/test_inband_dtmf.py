"""Goertzel in-band DTMF on generated tones: keys, noise, twist, durations, gaps."""

from __future__ import annotations

import numpy as np
import pytest
from dialtone.media_gateway.media.inband_dtmf import InbandDtmfDetector
from dialtone.media_gateway.media_types import DtmfMode

from tests.media_gateway.media.helpers import dtmf_tone, silence, sine


def detect(pcm: bytes, chunk: int = 320) -> list:
    detector = InbandDtmfDetector()
    digits = []
    for offset in range(0, len(pcm), chunk):
        digits += detector.process(pcm[offset:offset + chunk], offset // 16)
    return digits


@pytest.mark.parametrize("key", list("123A456B789C*0#D"))
def test_every_key(key: str) -> None:
    digits = detect(silence(60) + dtmf_tone(key, 80) + silence(80))
    assert [(d.digit, d.mode) for d in digits] == [(key, DtmfMode.INBAND)]


def test_sequence_with_noise() -> None:
    """Digits at -20 dBFS per tone in white noise at -40 dBFS (20 dB SNR) are all found, in order."""
    pcm = silence(50)
    for i, key in enumerate("0123456789*#"):
        pcm += dtmf_tone(key, 70, dbfs=-20, noise_dbfs=-40, seed=i) + silence(60)
    assert "".join(d.digit for d in detect(pcm)) == "0123456789*#"


def test_twist_within_limits_accepted_beyond_rejected() -> None:
    """Normal twist 6 dB and reverse twist 4 dB pass; a column tone 14 dB under the row does not."""
    assert [d.digit for d in detect(dtmf_tone("5", 100, twist_db=6) + silence(60))] == ["5"]
    assert [d.digit for d in detect(dtmf_tone("5", 100, twist_db=-4) + silence(60))] == ["5"]
    assert detect(dtmf_tone("5", 100, twist_db=14) + silence(60)) == []


@pytest.mark.parametrize("offset_samples", [0, 37, 101, 150])
def test_short_tones_rejected_40ms_accepted(offset_samples: int) -> None:
    """20 ms of tone is too short to be a key press (Q.24); 40 ms is a key press."""
    pad = bytes(offset_samples * 2)
    assert detect(pad + dtmf_tone("8", 20) + silence(100)) == []
    assert [d.digit for d in detect(pad + dtmf_tone("8", 40) + silence(100))] == ["8"]


def test_long_press_is_one_digit_with_its_duration() -> None:
    digits = detect(silence(40) + dtmf_tone("9", 1000) + silence(100))
    assert [d.digit for d in digits] == ["9"]
    assert 950 <= digits[0].duration_ms <= 1050


def test_same_key_after_a_50ms_gap_is_two_presses() -> None:
    assert [d.digit for d in detect(dtmf_tone("4", 60) + silence(50) + dtmf_tone("4", 60) + silence(80))] \
        == ["4", "4"]


def test_single_tone_speechlike_noise_and_silence_are_not_digits() -> None:
    """One DTMF frequency alone, loud white noise, and digital silence give nothing."""
    assert detect(sine(770, 500, 8000)) == []
    noise = np.random.default_rng(7).normal(0, 6000, 8000).astype("<i2").tobytes()
    assert detect(noise) == []
    assert detect(silence(500)) == []


def test_quiet_tone_under_threshold_ignored() -> None:
    assert detect(dtmf_tone("1", 200, dbfs=-45) + silence(60)) == []


def test_odd_byte_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="whole s16 samples"):
        InbandDtmfDetector().process(b"\x00\x01\x02", 0)


def _prompts() -> list[bytes]:
    import pathlib
    import wave

    out = []
    for path in sorted(pathlib.Path("/usr/share/asterisk/sounds/en").glob("*.wav")):
        with wave.open(str(path)) as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1):
                out.append(wav.readframes(wav.getnframes()))
    assert len(out) > 100, "asterisk-core-sounds-en-wav is not installed (scripts/system-deps.sh test)"
    return out


def test_no_talk_off_on_twenty_minutes_of_real_speech() -> None:
    """Asterisk's recorded English prompts (~20 min of speech at 8 kHz) never trigger a digit."""
    prompts = _prompts()
    assert sum(len(p) for p in prompts) / 16000 > 1000
    false = [(i, [d.digit for d in digits]) for i, p in enumerate(prompts) if (digits := detect(p, 1600))]
    assert false == []


def test_digits_between_words() -> None:
    """Key presses between spoken prompts are found, and only they."""
    prompts = _prompts()
    pcm = prompts[0] + dtmf_tone("3", 80, dbfs=-15) + prompts[1] + dtmf_tone("#", 80, dbfs=-15) + prompts[2]
    assert [d.digit for d in detect(pcm)] == ["3", "#"]
