"""False holds on a noisy line: how often the barge-in onset hold (``barge_in.hold_after_ms``) would
silence a prompt over line noise, beside how often the segmenter would start speech on it.

Synthetic noise (white, pink, 50 Hz hum with white), 30 s at -50 to -20 dBFS, 16 kHz, through
webrtcvad mode 2 and the speech gateway's segmenter (its default start window: 60 % of 200 ms) with
``OnsetHold`` at each ``--hold-after-ms``. A steady noise costs one hold while the VAD adapts; noise
the VAD keeps taking for voice costs one every time its voiced frames reach the threshold.

    python -m bench.onset_hold_noise [--hold-after-ms 60,80,100] [--seconds 30]
"""

from __future__ import annotations

import argparse

import numpy as np
from dialtone.speech_gateway.core.barge_in import OnsetHold
from dialtone.speech_gateway.core.segmenter import Segmenter, SegmenterSettings
from dialtone.speech_gateway.engines.vad import build_vad

RATE = 16000
FRAME_BYTES = RATE // 50 * 2
SETTINGS = SegmenterSettings(frame_ms=20, start_window_ms=200, start_ratio=0.6, stop_ms=500, speculative_ms=80,
                             max_utterance_ms=15000, early_stop_ms=0)


def noise(kind: str, dbfs: float, seconds: float, rng: np.random.Generator) -> bytes:
    n = int(RATE * seconds)
    x = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(x)
        spectrum /= np.sqrt(np.arange(1, len(spectrum) + 1))
        x = np.fft.irfft(spectrum, n)
    elif kind == "hum+white":
        t = np.arange(n) / RATE
        x = 0.3 * x + np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t)
    x = x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20) * 32767
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def count(pcm: bytes, hold_after_ms: int) -> tuple[int, int]:
    """(onset holds, speech starts) over ``pcm``."""
    vad = build_vad("webrtc", 2, 0.5)
    segmenter, hold = Segmenter(SETTINGS), OnsetHold(hold_after_ms)
    holds = starts = 0
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        starts += sum(type(e).__name__ == "SpeechStarted"
                      for e in segmenter.feed(vad.is_speech(pcm[i:i + FRAME_BYTES]), i // (FRAME_BYTES // 20)))
        holds += hold.frame(segmenter.onset_voiced_ms, segmenter.in_speech, holdable=True) == "hold"
    return holds, starts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold-after-ms", default="60,80,100")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    thresholds = [int(v) for v in args.hold_after_ms.split(",")]
    print(f"onset holds (per hold_after_ms) and speech starts in {args.seconds:g} s of noise, webrtcvad mode 2:")
    print(f"{'noise':>10} {'dBFS':>5} " + " ".join(f"{f'hold {t}':>9}" for t in thresholds) + f" {'starts':>7}")
    for kind in ("white", "pink", "hum+white"):
        for dbfs in (-50, -40, -30, -20):
            pcm = noise(kind, dbfs, args.seconds, np.random.default_rng(1))
            results = [count(pcm, t) for t in thresholds]
            print(f"{kind:>10} {dbfs:>5} " + " ".join(f"{h:>9}" for h, _ in results) + f" {results[0][1]:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
