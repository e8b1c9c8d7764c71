"""Piper's time to first audio against the length of the text it is given: it renders a part whole before
yielding any of it, so the first part of a prompt sets the prompt's first audio (prompts.speech_parts).

    python -m bench.tts_first_audio [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from dialtone.speech_gateway.config import TtsConfig
from dialtone.speech_gateway.engines.factory import build_tts

TEXTS = (
    "Okay.", "Got it,", "One moment", "One moment while I", "One moment while I look up order",
    "8392.", "One moment while I look up order 8392.",
    "Sorry, I did not get that. Please say or key in your order number.",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tts = build_tts(TtsConfig())
    for text in TEXTS:   # warm: the first synthesis of a session pays for onnxruntime's set-up
        b"".join(tts.synthesize(text))
    print(f"piper {tts.voice}, 1 thread; load average {os.getloadavg()[0]:.2f}")
    print("  chars  first audio p50 (min-max) ms  text")
    for text in TEXTS:
        firsts = []
        for _ in range(args.runs):
            started = time.perf_counter()
            chunks = tts.synthesize(text)
            next(iter(chunks))
            firsts.append((time.perf_counter() - started) * 1000.0)
            for _ in chunks:
                pass
        print(f"  {len(text):5d}  {statistics.median(firsts):6.0f} ({min(firsts):.0f}-{max(firsts):.0f})"
              f"{'':14s}{text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
