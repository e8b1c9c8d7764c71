"""Smart Turn v3.2: does this audio sound like the end of the speaker's turn? (an ONNX model on onnxruntime)

The model (BSD-2-Clause, Daily; installed by scripts/fetch_smart_turn.py from the pipecat-ai wheel) reads
the last 8 s of the utterance as Whisper's 80-bin log-mel features (of the waveform normalised to zero
mean and unit variance, as transformers' ``WhisperFeatureExtractor(do_normalize=True)`` gives it) and
returns the probability that the speaker has finished, from prosody as much as from words. faster-whisper's
``FeatureExtractor`` computes the same features (checked against pipecat's own copy of transformers'
code: identical), so no second feature implementation is written here.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
from dialtone.speech_gateway.engines.base import ModelError, require_file

SAMPLE_RATE = 16000
WINDOW_S = 8
MODEL_NAME = "smart-turn-v3.2-cpu.onnx"


def default_model_file() -> str:
    """Where scripts/fetch_smart_turn.py (run by `make venv`) put the model in this environment."""
    return os.path.join(sys.prefix, "share", "dialtone", "models", MODEL_NAME)


class SmartTurn:
    """Thread-safe (onnxruntime sessions run concurrently); one per process, shared by every call."""

    def __init__(self, model_file: str = "", threads: int = 1) -> None:
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        path = require_file(model_file or default_model_file(), "the Smart Turn model",
                            "run `make venv` (scripts/fetch_smart_turn.py installs it) or set vad.turn_model_file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")   # no busy-wait on 2 cores
        try:
            self._session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a bad file
            raise ModelError(f"{path}: not a usable Smart Turn model ({exc})") from exc
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, hop_length=160,
                                          chunk_length=WINDOW_S, n_fft=400)
        self._frames = WINDOW_S * SAMPLE_RATE // 160
        self._lock = threading.Lock()    # FeatureExtractor keeps scratch arrays: one call at a time

    def probability(self, pcm: bytes) -> float:
        """P(the turn is complete) for 16 kHz s16le mono audio ending where the caller fell silent."""
        window = WINDOW_S * SAMPLE_RATE
        samples = np.frombuffer(pcm, dtype="<i2")[-window:].astype(np.float32) / 32768.0
        if len(samples) < window:
            samples = np.pad(samples, (window - len(samples), 0))
        samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
        with self._lock:
            features = self._features(samples, padding=0)[:, :self._frames]
        logits = self._session.run(None, {"input_features": features[np.newaxis].astype(np.float32)})[0]
        return float(np.asarray(logits).reshape(-1)[0])
