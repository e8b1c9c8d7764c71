"""Speech engines on telephone audio: `python -m bench.speech_engines [--prompts N | --all]`.

Per ASR engine and thread count: load time, latency after end of speech (one decode of an
endpointed utterance <= 6 s: p50/p95/p99), WER on the prompt sample (the test normaliser),
RTF. Per TTS engine: load time, time to first audio (p50/p95/p99), RTF. Queueing: N calls
finishing an utterance at the same moment on one ASR pool. VAD: webrtcvad per frame.
Audio: Debian asterisk-core-sounds-en(-wav) through 8 kHz G.711 µ-law.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time

import jiwer
import numpy as np
from dialtone.speech_gateway.config import AsrConfig, TtsConfig
from dialtone.speech_gateway.engines.asr_faster_whisper import default_model_dir
from dialtone.speech_gateway.engines.factory import asr_workers, build_asr, build_tts
from dialtone.speech_gateway.engines.ggml_convert import convert_ct2_to_ggml
from dialtone.speech_gateway.engines.pool import EnginePool
from dialtone.speech_gateway.textnorm import digit_string, normalize

from tests.speech_gateway.corpus import as_float, digit_strings, prompt_sample, transcripts

TTS_TEXTS = [
    "Welcome to Acme. Say your order number.",
    "Your order four eight one five shipped on Tuesday and should arrive within three business days.",
    "Thank you for calling. Your call is important to us. Please stay on the line while we find the next "
    "available agent for you. If you know your party's extension, you may dial it at any time.",
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def fmt_ms(values: list[float]) -> str:
    return f"p50 {pct(values, 50) * 1000:7.1f}  p95 {pct(values, 95) * 1000:7.1f}  p99 {pct(values, 99) * 1000:7.1f} ms"


def bench_asr(name: str, config: AsrConfig, prompts, digits, budget_s: float) -> None:
    started = time.perf_counter()
    engine = build_asr(config)
    load_s = time.perf_counter() - started
    engine.transcribe(as_float(prompts[0][1]))  # warm-up
    refs, hyps, short_latency, audio_s, busy_s = [], [], [], 0.0, 0.0
    short_refs, short_hyps = [], []
    deadline = time.perf_counter() + budget_s
    for _name, pcm, text in prompts:
        if time.perf_counter() > deadline:
            break  # bounded: the count scored is printed
        samples = as_float(pcm)
        t0 = time.perf_counter()
        hyp = engine.transcribe(samples).text
        took = time.perf_counter() - t0
        busy_s += took
        audio_s += len(samples) / 16000
        refs.append(normalize(text))
        hyps.append(normalize(hyp))
        if len(samples) <= 6 * 16000:
            short_latency.append(took)
            short_refs.append(refs[-1])
            short_hyps.append(hyps[-1])
    exact = sum(digit_string(engine.transcribe(as_float(pcm)).text) == want for want, pcm in digits)
    print(f"{name:34s} load {load_s:5.2f} s  WER all {jiwer.wer(refs, hyps) * 100:5.1f} % (n={len(refs)})  "
          f"WER <=6 s {jiwer.wer(short_refs, short_hyps) * 100:5.1f} %  RTF {busy_s / audio_s:.3f}  "
          f"digits {exact}/{len(digits)}\n{'':34s} latency after end of speech (<=6 s, n={len(short_latency)}) "
          f"{fmt_ms(short_latency)}", flush=True)


def bench_tts(name: str, config: TtsConfig, rounds: int) -> None:
    started = time.perf_counter()
    engine = build_tts(config)
    load_s = time.perf_counter() - started
    list(engine.synthesize("Warm up."))
    ttfa, busy, audio = [], 0.0, 0.0
    for _ in range(rounds):
        for text in TTS_TEXTS:
            t0 = time.perf_counter()
            total = 0
            for i, chunk in enumerate(engine.synthesize(text)):
                if i == 0:
                    ttfa.append(time.perf_counter() - t0)
                total += len(chunk)
            busy += time.perf_counter() - t0
            audio += total / 2 / engine.sample_rate
    print(f"{name:34s} load {load_s:5.2f} s  RTF {busy / audio:.4f}  first audio {fmt_ms(ttfa)}", flush=True)


async def bench_queueing(config: AsrConfig, utterances: list[bytes], calls: int, rounds: int) -> None:
    workers = asr_workers(config)
    pool = EnginePool("bench", [build_asr(config) for _ in range(workers)], max_queue=calls)
    latencies = []
    try:
        for r in range(rounds):
            batch = [as_float(utterances[(r * calls + i) % len(utterances)]) for i in range(calls)]

            async def one(samples: np.ndarray) -> float:
                t0 = time.perf_counter()
                await pool.run(lambda e: e.transcribe(samples))
                return time.perf_counter() - t0

            latencies += await asyncio.gather(*(one(s) for s in batch))
    finally:
        pool.shutdown()
    print(f"queueing: {calls} calls end an utterance at once, {workers} worker(s) x {config.threads} threads: "
          f"{fmt_ms(latencies)}", flush=True)


def bench_vad() -> None:
    from dialtone.speech_gateway.engines.vad import build_vad

    pcm = as_float(prompt_sample(count=1)[0][1])
    frames = [(pcm[i:i + 320] * 32767).astype("<i2").tobytes() for i in range(0, len(pcm) - 320, 320)]
    for engine in ("webrtc", "silero"):
        best = float("inf")
        for _ in range(5):
            vad = build_vad(engine)
            t0 = time.perf_counter()
            for frame in frames:
                vad.is_speech(frame)
            best = min(best, (time.perf_counter() - t0) / len(frames))
        print(f"VAD {engine}, 20 ms frame at 16 kHz: {best * 1e6:.2f} µs per frame (best of 5)", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.speech_engines")
    parser.add_argument("--prompts", type=int, default=60, help="random prompts to score (fixed seed)")
    parser.add_argument("--all", action="store_true", help="every transcribed top-level prompt (slow)")
    parser.add_argument("--skip-whispercpp", action="store_true")
    parser.add_argument("--asr-budget-s", type=float, default=90.0, help="time limit per ASR config")
    args = parser.parse_args(argv)
    print(f"cpus {os.cpu_count()}  load average {os.getloadavg()[0]:.1f}", flush=True)
    total = sum(1 for name in transcripts() if "/" not in name)
    count = total if args.all else min(args.prompts, total)
    prompts = prompt_sample(count=count, max_s=60.0, seed=1) if count < total else \
        prompt_sample(count=total - 5, max_s=60.0, seed=1)
    digits = digit_strings(count=20, seed=3)
    print(f"prompt set: {len(prompts)} prompts ({sum(len(p[1]) for p in prompts) / 32000:.0f} s), "
          f"{len(digits)} digit strings", flush=True)
    bench_vad()
    for threads in (1, 2):
        bench_asr(f"faster_whisper tiny.en int8 thr={threads} (20 s window)", AsrConfig(threads=threads),
                  prompts, digits, args.asr_budget_s)
    for window in (30, 10):
        bench_asr(f"faster_whisper tiny.en int8 thr=2 ({window} s window)", AsrConfig(short_window_s=window % 30),
                  prompts, digits, args.asr_budget_s)
    if not args.skip_whispercpp:
        ggml = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"dialtone-bench-{os.getpid()}.bin")
        convert_ct2_to_ggml(default_model_dir(), ggml)
        try:
            bench_asr("whispercpp tiny.en ctx=512 thr=2",
                      AsrConfig(engine="whispercpp", ggml_model=ggml, audio_ctx=512), prompts, digits,
                      args.asr_budget_s)
            bench_asr("whispercpp tiny.en full ctx thr=2",
                      AsrConfig(engine="whispercpp", ggml_model=ggml), prompts, digits,
                      args.asr_budget_s)
        finally:
            os.unlink(ggml)
    for threads in (1, 2):
        bench_tts(f"piper joe-medium thr={threads}", TtsConfig(threads=threads), rounds=2)
    bench_tts("espeak-ng en-us", TtsConfig(engine="espeak"), rounds=3)
    bench_tts("flite slt", TtsConfig(engine="flite"), rounds=3)
    short = [pcm for _n, pcm, _t in prompts if len(pcm) <= 4 * 32000]
    random.Random(2).shuffle(short)
    for calls in (1, 2, 4, 8):
        asyncio.run(bench_queueing(AsrConfig(), short, calls, rounds=max(1, 8 // calls)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
