"""The end-of-turn model (Smart Turn v3.2, `vad.turn_model: smart-turn`): how often it calls a finished
utterance finished and an unfinished one unfinished, and its CPU time per decision on this machine.
`python -m bench.turn_model [--threshold 0.5]`

Labelled human speech (Allison's recorded prompts, Debian's asterisk-core-sounds-en-wav, through the
8 kHz G.711 telephone path, 100 ms of silence after each, as the gateway asks after a pause):
- finished: every prompt of at most 8 s whose transcript ends in ".", "?" or "!";
  and the 20 digit strings of the ASR acceptance set read whole;
- unfinished: every prompt whose transcript ends in "..." (a prompt cut to be continued: "If this is
  correct, press..."), and the first half of each of those digit strings (the caller pausing
  mid-number).
Synthetic speech (piper) is reported apart: a sentence cut at a word boundary still falls like a
finished one in a TTS voice, so it says little about callers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from dialtone.common.audio import trim_silence
from dialtone.speech_gateway.audio_io import read_wav, telephone_path
from dialtone.speech_gateway.config import TtsConfig
from dialtone.speech_gateway.engines.factory import build_tts
from dialtone.speech_gateway.engines.turn_model import SmartTurn

from tests.speech_gateway.corpus import SOUNDS, digit_strings, transcripts

AFTER = bytes(3200)       # 100 ms of silence at 16 kHz
SENTENCES = ("I'd like to check the status of my order.", "Can you tell me when my parcel arrives?",
             "I need to refill my prescription.", "Please cancel my appointment on Tuesday.",
             "My account number is on the letter you sent me.", "I want to speak to someone about my bill.")


def digits_so_far(digits: str, gap_ms: int = 150) -> bytes:
    """The first digits of a string, each Allison's digits/N.wav, ``gap_ms`` apart, as a caller reading a
    number in groups sounds when pausing after the first group."""
    pcm, rate = b"", 8000
    for digit in digits:
        clip, rate = read_wav(SOUNDS / "digits" / f"{digit}.wav")
        pcm += trim_silence(clip, 300) + bytes(2 * rate * gap_ms // 1000)
    return telephone_path(pcm, rate)


def human_sets() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(finished prompts, prompts cut to be continued, digit strings cut after their first half)"""
    finished, unfinished, digits = [], [], []
    for name, text in sorted(transcripts().items()):
        path = SOUNDS / f"{name}.wav"
        if "/" in name or not path.is_file() or "<" in text:
            continue
        pcm, rate = read_wav(path)
        if len(pcm) / 2 / rate > 8:
            continue
        audio = telephone_path(pcm, rate) + AFTER
        text = text.strip()
        if text.endswith("..."):
            unfinished.append(audio)
        elif text.endswith((".", "?", "!")):
            finished.append(audio)
    for number, _pcm in digit_strings(20, seed=11):
        digits.append(digits_so_far(number[:len(number) // 2]) + AFTER)
        finished_number = digits_so_far(number)
        finished.append(finished_number + AFTER)
    return finished, unfinished, digits


def synthetic_sets() -> tuple[list[bytes], list[bytes]]:
    tts = build_tts(TtsConfig())
    finished, unfinished = [], []
    for sentence in SENTENCES:
        words = sentence.rstrip(".?").split()
        for text, into in ((sentence, finished), (" ".join(words[:len(words) // 2]), unfinished)):
            into.append(telephone_path(b"".join(tts.synthesize(text)), tts.sample_rate) + AFTER)
    return finished, unfinished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    model = SmartTurn()
    cpu_ms: list[float] = []
    wall_ms: list[float] = []

    def judged(audio: bytes) -> float:
        started, began = time.process_time(), time.perf_counter()
        probability = model.probability(audio)
        cpu_ms.append((time.process_time() - started) * 1000)
        wall_ms.append((time.perf_counter() - began) * 1000)
        return probability

    finished, cut_prompts, half_numbers = human_sets()
    synthetic_finished, synthetic_cut = synthetic_sets()
    for label, audios, wanted in (("human: finished prompts and whole digit strings", finished, True),
                                  ("human: prompts cut to be continued (...)", cut_prompts, False),
                                  ("human: digit strings, first half then a pause", half_numbers, False),
                                  ("piper: whole sentences", synthetic_finished, True),
                                  ("piper: sentences cut at a word", synthetic_cut, False)):
        right = [(judged(a) >= args.threshold) == wanted for a in audios]
        print(f"{label}: judged {'finished' if wanted else 'unfinished'} {sum(right)}/{len(right)} "
              f"({100 * np.mean(right):.0f} %)")
    for what, samples in (("CPU time (all threads)", cpu_ms), ("wall time", wall_ms)):
        p50, p95, p99 = np.percentile(samples, [50, 95, 99])
        print(f"{what} per decision (features + model), n={len(samples)}: p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
