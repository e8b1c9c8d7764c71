"""Light TTS engines from Debian: espeak-ng and flite, run as one short process per
sentence (first audio ~8 ms for espeak-ng, ~40 ms for flite). Output is a WAV on
stdout; espeak-ng writes a placeholder data size when streaming, so the header is
walked by hand instead of trusting it to the ``wave`` module."""

from __future__ import annotations

import abc
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator

from dialtone.speech_gateway.engines.base import ModelError

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def parse_wav_stream(data: bytes) -> tuple[bytes, int]:
    """PCM and sample rate of a 16-bit mono RIFF/WAVE whose sizes may be placeholders."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk_id == b"fmt ":
            fmt_tag, channels, rate = struct.unpack("<HHI", data[pos + 8:pos + 16])
            bits = struct.unpack("<H", data[pos + 22:pos + 24])[0]
            if fmt_tag != 1 or channels != 1 or bits != 16:
                raise ValueError("expected 16-bit mono PCM")
        elif chunk_id == b"data":
            pcm = data[pos + 8:]
            return pcm[: len(pcm) // 2 * 2], rate
        pos += 8 + size + (size & 1)
    raise ValueError("no data chunk")


class _ProcessTts(abc.ABC):
    """A TTS engine run as one process per sentence; subclasses give the command line."""

    name = ""
    sample_rate = 0
    voice = ""

    @abc.abstractmethod
    def _argv(self, sentence: str) -> list[str]:
        """The command that writes ``sentence`` as a WAV on stdout."""

    def synthesize(self, text: str) -> Iterator[bytes]:
        for sentence in split_sentences(text):
            done = subprocess.run(self._argv(sentence), capture_output=True, timeout=30, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{self.name} exited {done.returncode}: "
                                   f"{done.stderr.decode(errors='replace')[:200]}")
            pcm, _rate = parse_wav_stream(done.stdout)
            yield pcm


class EspeakTts(_ProcessTts):
    name = "espeak"
    sample_rate = 22050

    def __init__(self, voice: str = "") -> None:
        self._binary = shutil.which("espeak-ng")
        if self._binary is None:
            raise ModelError("espeak-ng is not installed (Debian package espeak-ng)")
        self.voice = voice or "en-us"

    def _argv(self, sentence: str) -> list[str]:
        # "--" so a sentence starting with "-" is text, not an option.
        return [self._binary or "espeak-ng", "-v", self.voice, "--stdout", "--", sentence]


class FliteTts(_ProcessTts):
    name = "flite"
    sample_rate = 16000

    def __init__(self, voice: str = "") -> None:
        self._binary = shutil.which("flite")
        if self._binary is None:
            raise ModelError("flite is not installed (Debian package flite)")
        self.voice = voice or "slt"
        # flite silently falls back to "kal" for a voice it does not know: refuse it here instead.
        listed = subprocess.run([self._binary, "-lv"], capture_output=True, text=True, timeout=10).stdout
        known = listed.split(":", 1)[-1].split()
        if self.voice not in known:
            raise ModelError(f"flite has no voice {self.voice!r}; built-in voices: {', '.join(known)}")
        self.sample_rate = 8000 if self.voice == "kal" else 16000

    def _argv(self, sentence: str) -> list[str]:
        return [self._binary or "flite", "-voice", self.voice, "-t", sentence, "-o", "/dev/stdout"]
