"""What the gateway needs from an ASR or a TTS engine, and the errors loading one can raise.

Engines are blocking (native code that releases the GIL); they run in the worker
pool, never on the event loop. Each worker owns one engine instance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

import numpy as np


class ModelError(Exception):
    """A model file is missing or unusable. The message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Recognition:
    text: str
    confidence: float  # 0..1
    audio_ms: int


class AsrEngine(Protocol):
    name: str

    def transcribe(self, samples: np.ndarray, hints: str = "") -> Recognition:
        """Decode float32 16 kHz mono samples (one utterance); ``hints``: words the caller is likely to
        say, given to the decoder as its prompt (Whisper's previous-text context)."""


MAX_HINT_CHARS = 200   # Whisper gives its prompt at most half of its 448-token context; this is far less


class TtsEngine(Protocol):
    name: str
    sample_rate: int
    voice: str

    def synthesize(self, text: str) -> Iterator[bytes]:
        """s16le mono chunks at ``sample_rate``, one per sentence, each as soon as it exists."""


def require_file(path: str, what: str, fix: str) -> str:
    from pathlib import Path

    if not path or not Path(path).is_file():
        raise ModelError(f"{what} not found at {path or '(empty path)'}: {fix}")
    return path
