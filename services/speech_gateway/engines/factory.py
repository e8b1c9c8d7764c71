"""Build engines from config. Model paths are checked here, at start, with a clear error."""

from __future__ import annotations

import os

from dialtone.speech_gateway.config import AsrConfig, TtsConfig
from dialtone.speech_gateway.engines.base import AsrEngine, ModelError, TtsEngine

ASR_ENGINES = ("faster_whisper", "whispercpp")
TTS_ENGINES = ("piper", "espeak", "flite")


def asr_workers(config: AsrConfig) -> int:
    if config.workers > 0:
        return config.workers
    return max(1, (os.cpu_count() or 1) // max(1, config.threads))


def build_asr(config: AsrConfig) -> AsrEngine:
    if config.engine == "faster_whisper":
        from dialtone.speech_gateway.engines.asr_faster_whisper import FasterWhisperAsr

        return FasterWhisperAsr(config.model_dir, threads=config.threads, device=config.device,
                                compute_type=config.compute_type, language=config.language,
                                short_window_s=config.short_window_s)
    if config.engine == "whispercpp":
        from dialtone.speech_gateway.engines.asr_whispercpp import WhisperCppAsr

        return WhisperCppAsr(config.ggml_model, threads=config.threads, language=config.language,
                             audio_ctx=config.audio_ctx)
    raise ModelError(f"unknown ASR engine {config.engine!r}; expected one of {', '.join(ASR_ENGINES)}")


def build_tts(config: TtsConfig) -> TtsEngine:
    if config.engine == "piper":
        from dialtone.speech_gateway.engines.tts_piper import PiperTts

        return PiperTts(config.voice, threads=config.threads)
    if config.engine == "espeak":
        from dialtone.speech_gateway.engines.tts_espeak import EspeakTts

        return EspeakTts(config.voice)
    if config.engine == "flite":
        from dialtone.speech_gateway.engines.tts_espeak import FliteTts

        return FliteTts(config.voice)
    raise ModelError(f"unknown TTS engine {config.engine!r}; expected one of {', '.join(TTS_ENGINES)}")
