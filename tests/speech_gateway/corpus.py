"""Test audio from Debian's asterisk-core-sounds-en(-wav): human-read prompts with
transcripts, and digit strings joined from digits/*.wav. Nothing is committed."""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import numpy as np
from dialtone.speech_gateway.audio_io import read_wav, telephone_path

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
MISSING = ("Asterisk prompts are missing: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav "
           "(scripts/system-deps.sh test)")


def transcripts() -> dict[str, str]:
    if not TRANSCRIPTS.is_file() or not SOUNDS.is_dir():
        raise FileNotFoundError(MISSING)
    out = {}
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([\w./-]+):\s*(.+)$", line.strip())
            if m and "[" not in m.group(2):
                out[m.group(1)] = m.group(2).strip()
    return out


def prompt_sample(count: int = 48, max_s: float = 6.0, seed: int = 6) -> list[tuple[str, bytes, str]]:
    """A fixed sample of top-level prompts up to ``max_s`` long: (name, 16 kHz telephone-path PCM, text)."""
    chosen = []
    for name, text in sorted(transcripts().items()):
        path = SOUNDS / f"{name}.wav"
        if "/" in name or not path.is_file():
            continue
        pcm, rate = read_wav(path)
        if len(pcm) / 2 / rate <= max_s:
            chosen.append((name, pcm, rate, text))
    picked = random.Random(seed).sample(chosen, count)
    return [(name, telephone_path(pcm, rate), text) for name, pcm, rate, text in picked]


def digit_strings(count: int = 10, seed: int = 7, gap_ms: int = 150) -> list[tuple[str, bytes]]:
    """(digits, 16 kHz telephone-path PCM) for ``count`` strings of 4-8 digits from digits/N.wav."""
    clips = {}
    rate = 8000
    for d in "0123456789":
        pcm, rate = read_wav(SOUNDS / "digits" / f"{d}.wav")
        clips[d] = pcm
    gap = bytes(2 * rate * gap_ms // 1000)
    pad = bytes(2 * rate * 300 // 1000)
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 8)))
        pcm = pad + gap.join(clips[d] for d in digits) + pad
        out.append((digits, telephone_path(pcm, rate)))
    return out


def as_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
