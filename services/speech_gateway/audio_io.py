"""Audio helpers for the speech gateway: WAV files of any PCM rate/width, the G.711
µ-law telephone path (tests and the bench pass audio through it), and conversions.

G.711 is done with numpy because ``audioop`` is deprecated (removed in 3.13).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from dialtone.common.audio import SAMPLE_RATE, resample

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


class AudioFileError(ValueError):
    """A file that is not a readable PCM WAV; the message says why."""


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Mono s16le PCM and the file's sample rate. Multi-channel audio is mixed down."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError as exc:
        raise AudioFileError(f"{path}: no such file") from exc
    except (wave.Error, EOFError) as exc:
        raise AudioFileError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8) >> 8
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise AudioFileError(f"{path}: {width * 8}-bit samples are not supported")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return np.asarray(samples, dtype="<i2").tobytes(), rate


def read_wav_16k(path: str | Path) -> bytes:
    pcm, rate = read_wav(path)
    return resample(pcm, rate, SAMPLE_RATE)


def write_wav(path: str | Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """int16 samples -> G.711 µ-law bytes (uint8)."""
    x = samples.astype(np.int32)
    sign = (x < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """G.711 µ-law bytes -> int16 samples."""
    b = ~codes.astype(np.int32) & 0xFF
    exponent = (b >> 4) & 0x07
    magnitude = (((b & 0x0F) << 3) + _ULAW_BIAS << exponent) - _ULAW_BIAS
    return np.where(b & 0x80, -magnitude, magnitude).astype(np.int16)


def telephone_path(pcm: bytes, rate: int) -> bytes:
    """What a caller's audio looks like after a G.711 call: 8 kHz µ-law, back at 16 kHz."""
    narrow = np.frombuffer(resample(pcm, rate, 8000), dtype="<i2")
    decoded = ulaw_decode(ulaw_encode(narrow))
    return resample(decoded.astype("<i2").tobytes(), 8000, SAMPLE_RATE)


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
