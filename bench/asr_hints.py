"""Recognition hints: does the listening state's prompt help the recognizer on in-domain phrases, and
does it never cost digit accuracy? `python -m bench.asr_hints [--phrases N] [--voices piper,espeak]`

In-domain: held-out phrasings of the labelled intent set (services/language/data/telephony_intents.yaml,
none among the examples), synthesized by each voice and sent through the 8 kHz G.711 telephone path;
each is decoded without hints and with the hints a state listening for all the intents would send
(`hints_for`), and scored two ways: word error rate against the phrase, and whether the intent
matcher then finds the right intent. Digits: the 20 human-read digit strings of the ASR acceptance
set (Asterisk's digits/*.wav), decoded without hints and with the hints of the pharmacy example's
prescription state (a digits slot in a dialog with a pharmacist intent): exact strings.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import jiwer
import yaml
from dialtone.language import IntentMatcher, hints_for
from dialtone.speech_gateway.audio_io import telephone_path
from dialtone.speech_gateway.config import AsrConfig, TtsConfig
from dialtone.speech_gateway.engines.factory import build_asr, build_tts
from dialtone.speech_gateway.textnorm import digit_string, normalize

from tests.speech_gateway.corpus import as_float, digit_strings

LABELLED = Path(__file__).resolve().parents[1] / "services" / "language" / "data" / "telephony_intents.yaml"
PHARMACY = Path(__file__).resolve().parents[1] / "services" / "conversation_runtime" / "examples" / \
    "pharmacy_refill.yaml"


def synthesize(voice: str, text: str) -> bytes:
    tts = _voices.setdefault(voice, build_tts(TtsConfig(engine=voice)))
    pcm = b"".join(tts.synthesize(text))
    return telephone_path(pcm, tts.sample_rate)


_voices: dict = {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phrases", type=int, default=60, help="held-out phrases per voice")
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    labelled = yaml.safe_load(LABELLED.read_text())
    intents = labelled["intents"]
    matcher = IntentMatcher(intents)
    hints = hints_for(intents=intents).prompt
    held_out = [(name, phrase) for name, phrases in labelled["held_out"].items() for phrase in phrases]
    random.Random(args.seed).shuffle(held_out)
    held_out = held_out[: args.phrases]
    asr = build_asr(AsrConfig())
    print(f"hints for a state listening for all {len(intents)} intents ({len(hints)} characters): {hints!r}")
    for voice in args.voices.split(","):
        scores = {False: {"refs": [], "hyps": [], "intent": 0, "ms": []}, True: {"refs": [], "hyps": [], "intent": 0,
                                                                                "ms": []}}
        for intent, phrase in held_out:
            samples = as_float(synthesize(voice, phrase))
            for hinted in (False, True):
                started = time.perf_counter()
                text = asr.transcribe(samples, hints if hinted else "").text
                score = scores[hinted]
                score["ms"].append((time.perf_counter() - started) * 1000)
                score["refs"].append(normalize(phrase))
                score["hyps"].append(normalize(text) or "<empty>")
                score["intent"] += matcher.match(text).intent == intent
        for hinted in (False, True):
            score = scores[hinted]
            wer = jiwer.wer(score["refs"], score["hyps"])
            ms = sorted(score["ms"])
            print(f"{voice:7s} {'with hints   ' if hinted else 'without hints'}: WER {wer * 100:5.1f} %, intent right "
                  f"{score['intent']}/{len(held_out)}, decode p50 {ms[len(ms) // 2]:.0f} ms")
    from dialtone.conversation_runtime.core.loader import load_dialog
    digit_hints = load_dialog(PHARMACY).states["prescription"].hints
    print(f"digit state hints ({len(digit_hints)} characters): {digit_hints!r}")
    strings = digit_strings(20)
    for hinted in (False, True):
        exact = sum(digit_string(asr.transcribe(as_float(pcm), digit_hints if hinted else "").text) == digits
                    for digits, pcm in strings)
        print(f"digits  {'with hints   ' if hinted else 'without hints'}: {exact}/{len(strings)} exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
