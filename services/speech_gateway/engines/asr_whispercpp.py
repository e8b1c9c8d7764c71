"""ASR through whisper.cpp (pywhispercpp) with a ggml file written by
``dialtone models convert-ggml``. The model is given as a file path only: pywhispercpp
downloads when given a model *name*, which we never do.

With ``audio_ctx`` reduced (512 = 10.24 s) whisper.cpp is faster on short turns, but
it cuts longer audio, so longer utterances are decoded with the full context.
"""

from __future__ import annotations

import math

import numpy as np
from dialtone.speech_gateway.engines.asr_faster_whisper import max_tokens_for
from dialtone.speech_gateway.engines.base import MAX_HINT_CHARS, Recognition, require_file

_FULL_CTX = 1500  # 30 s of encoder frames (50 per second)


class WhisperCppAsr:
    name = "whispercpp"

    def __init__(self, ggml_model: str, *, threads: int = 2, language: str = "en", audio_ctx: int = 0) -> None:
        require_file(ggml_model, "whisper.cpp ggml model",
                     "write one with `dialtone models convert-ggml -o FILE` and set asr.ggml_model")
        from pywhispercpp.model import Model

        self._audio_ctx = audio_ctx if 0 < audio_ctx < _FULL_CTX else 0
        self._model = Model(ggml_model, n_threads=threads, redirect_whispercpp_logs_to=None,
                            print_progress=False, print_realtime=False, print_timestamps=False,
                            language=language, no_context=True, single_segment=False,
                            audio_ctx=self._audio_ctx)
        self._ctx_now = self._audio_ctx
        self._hints_now = ""

    def transcribe(self, samples: np.ndarray, hints: str = "") -> Recognition:
        audio_ms = len(samples) * 1000 // 16000
        # Audio longer than the reduced context would be truncated: use the full window.
        ctx = self._audio_ctx if self._audio_ctx and audio_ms < self._audio_ctx * 20 - 500 else 0
        params: dict[str, object] = {"audio_ctx": ctx} if ctx != self._ctx_now else {}
        self._ctx_now = ctx
        hints = hints[:MAX_HINT_CHARS].strip()
        if hints != self._hints_now:   # pywhispercpp keeps a parameter until it is set again
            params["initial_prompt"] = hints
            self._hints_now = hints
        segments = self._model.transcribe(np.ascontiguousarray(samples, dtype=np.float32),
                                          max_tokens=max_tokens_for(len(samples)), **params)
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        probs = [s.probability for s in segments if not math.isnan(s.probability)]
        confidence = sum(probs) / len(probs) if probs else (0.8 if text else 0.0)
        return Recognition(text, float(min(1.0, max(0.0, confidence))), audio_ms)
