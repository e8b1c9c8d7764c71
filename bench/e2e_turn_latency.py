"""Turn latency on the wire through all four services: `dialtone up` with a bench dialog that answers
every utterance ("Got it, <what you said>."), and `dialtone call`'s runner saying numbers.

Turn latency = end of the caller's speech audio (its last RTP frame sent) -> the first non-silent RTP
packet back, measured at the caller. Breakdown (means, from the services' own histograms over the same
turns): endpointing wait (vad.stop_ms of silence, or less on an early end), ASR final, dialog (runtime event), TTS
first audio, and the rest (gRPC hops, playout/pacing to the first frame on the wire).

    python -m bench.e2e_turn_latency [--turns 100] [--callers 1] [--budget-s 540] [--asr whispercpp]
                                     [--early-stop-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from dialtone.caller.phone import Phone, free_sip_port
from dialtone.caller.runner import ScriptRunner
from dialtone.caller.script import Step
from dialtone.caller.voices import Voices
from dialtone.conversation_runtime.config import EXAMPLES_DIR
from dialtone.speech_gateway.engines.asr_faster_whisper import default_model_dir
from dialtone.speech_gateway.engines.ggml_convert import convert_ct2_to_ggml

WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BENCH_DIALOGS = {
    "bench_echo": """
dialog:
  name: bench_echo
  initial: ready
  variables: {heard: ""}
  input: {mode: speech, no_input: 60s, barge_in: on}
  states:
    ready:
      on_enter: [{say: "Ready."}]
      transitions: [{event: speech, target: answer_a, actions: [{set: {heard: transcript}}]}]
    answer_a:
      on_enter: [{say: "Got it, ${heard}."}]
      transitions: [{event: speech, target: answer_b, actions: [{set: {heard: transcript}}]}]
    answer_b:
      on_enter: [{say: "Got it, ${heard}."}]
      transitions: [{event: speech, target: answer_a, actions: [{set: {heard: transcript}}]}]
""",
    "bench_barge": """
dialog:
  name: bench_barge
  initial: talk_a
  input: {mode: speech, no_input: 60s, barge_in: on}
  states:
    talk_a:
      on_enter:
        - say: >-
            Here is a long announcement about our opening hours, our locations, our products and
            our services, which goes on for quite a while so that you can interrupt it at any time.
      transitions: [{event: speech, target: talk_b}]
    talk_b:
      on_enter:
        - say: >-
            Here is another long announcement about our opening hours, our locations, our products
            and our services, which also goes on for quite a while so that you can interrupt it.
      transitions: [{event: speech, target: talk_a}]
""",
}


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {pick(0.50):.0f} ms  p95 {pick(0.95):.0f} ms  p99 {pick(0.99):.0f} ms  (n={len(samples)})"


def _free_base() -> int:
    for _ in range(200):
        base = random.randrange(51000, 59000, 10)
        try:
            for offset in (1, 2, 3, 4, 80, 101, 102, 103, 104):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError("no free block of ports")


class UpStack:
    """`dialtone up` with the bench dialogs next to the packaged examples, on free ports."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        dialogs = folder / "dialogs"
        dialogs.mkdir()
        for name, text in BENCH_DIALOGS.items():
            (dialogs / f"{name}.yaml").write_text(text)
        self.base = _free_base()
        self.sip_port = free_sip_port("127.0.0.1")
        env = {**os.environ,
               "DIALTONE_CONVERSATION_RUNTIME__DIALOGS": f"[{EXAMPLES_DIR}, {dialogs}]",
               "DIALTONE_MEDIA_GATEWAY__ROUTING__BY_CALLEE": "{" + ", ".join(
                   f"{n}: {n}" for n in ("order_status", *BENCH_DIALOGS)) + "}", **(env or {})}
        self.log_path = folder / "up.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dialtone", "up", "--base-port", str(self.base), "--sip-port", str(self.sip_port),
             "--grace", "3"], stdout=self._log, stderr=subprocess.STDOUT, cwd=folder, env=env)
        deadline = time.monotonic() + 120
        while "dialtone is up" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dialtone up did not come up:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.2)

    def uri(self, dialog: str) -> str:
        return f"sip:{dialog}@127.0.0.1:{self.sip_port}"

    def children(self) -> dict[str, int]:
        """service name -> pid of each supervised child."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid and len(cmd) > 3:
                found[cmd[3].decode()] = int(entry)
        return found

    def metrics(self, offset: int) -> dict[str, float]:
        """Every sample of a service's /metrics summed over its labels, and each labelled sample as written
        (offset 1 media .. 4 integration)."""
        url = f"http://127.0.0.1:{self.base + 100 + offset}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                sample, value = line.rsplit(" ", 1)
                name = sample.split("{", 1)[0]
                values[name] = values.get(name, 0.0) + float(value)
                if "{" in sample:
                    values[sample] = float(value)   # one labelled sample, e.g. utterances_total{end="early"}
        return values

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def random_line(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(3))


async def run_callers(phone: Phone, voices: Voices, uri: str, callers: int, turns: int, rng: random.Random,
                      interrupt: bool = False, timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """``callers`` calls at once, each saying ``turns`` lines (interrupting the bot when asked)."""
    async def one() -> dict[str, Any]:
        steps = tuple(Step("say", random_line(rng), interrupt=interrupt, interrupt_after_ms=1000)
                      for _ in range(turns)) + (Step("wait", "speech"),)
        runner = ScriptRunner(phone, voices, uri, steps, timeout_s=timeout_s, step_timeout_s=20.0,
                              end_silence_ms=500, transcribe=False)
        return await runner.run()

    return list(await asyncio.gather(*(one() for _ in range(callers))))


def _mean_delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    count = after.get(name + "_count", 0.0) - before.get(name + "_count", 0.0)
    if count <= 0:
        return None
    return (after.get(name + "_sum", 0.0) - before.get(name + "_sum", 0.0)) / count * 1000.0


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(8)
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-") as folder:
        env = {}
        if args.asr == "whispercpp":
            # whisper.cpp with tiny.en converted from the packaged model (as `dialtone models convert-ggml`)
            ggml = str(Path(folder) / "tiny.en.ggml.bin")
            await asyncio.to_thread(convert_ct2_to_ggml, default_model_dir(), ggml)
            env = {"DIALTONE_SPEECH_GATEWAY__ASR__ENGINE": "whispercpp",
                   "DIALTONE_SPEECH_GATEWAY__ASR__GGML_MODEL": ggml, "DIALTONE_SPEECH_GATEWAY__ASR__AUDIO_CTX": "512"}
        if args.asr_model_dir:
            # a configured CTranslate2 model, e.g. Whisper base from `dialtone models assemble-base`
            env["DIALTONE_SPEECH_GATEWAY__ASR__MODEL_DIR"] = args.asr_model_dir
        if args.early_stop_ms is not None:
            env["DIALTONE_SPEECH_GATEWAY__VAD__EARLY_STOP_MS"] = str(args.early_stop_ms)
        stack = UpStack(Path(folder), env)
        try:
            voices = await Voices.load()
            phone = Phone("127.0.0.1")
            await phone.start()
            try:
                # warm-up call (first renders, first decode), not counted
                await run_callers(phone, voices, stack.uri("bench_echo"), 1, 2, rng)
                speech_before, runtime_before = stack.metrics(2), stack.metrics(3)
                latencies: list[float] = []
                started = time.monotonic()
                while len(latencies) < args.turns and time.monotonic() - started < args.budget_s:
                    per_call = min(25, args.turns - len(latencies))
                    reports = await run_callers(phone, voices, stack.uri("bench_echo"), args.callers, per_call, rng)
                    for report in reports:
                        latencies += report["turn_latencies_ms"]
                        for failure in report["failures"]:
                            print("  call problem:", failure)
                speech_after, runtime_after = stack.metrics(2), stack.metrics(3)
            finally:
                await phone.stop()
                voices.close()
        finally:
            stack.stop()
    wire = statistics.fmean(latencies) if latencies else 0.0
    asr = _mean_delta(speech_before, speech_after, "dialtone_speech_asr_latency_seconds") or 0.0
    tts = _mean_delta(speech_before, speech_after, "dialtone_speech_tts_first_audio_seconds") or 0.0
    dialog = _mean_delta(runtime_before, runtime_after, "dialtone_runtime_event_seconds") or 0.0
    gateway_turn = _mean_delta(speech_before, speech_after, "dialtone_speech_turn_latency_seconds") or 0.0
    endpointing = _mean_delta(speech_before, speech_after, "dialtone_speech_endpoint_wait_seconds") or 0.0
    rest = wire - endpointing - asr - dialog - tts
    asr_name = "whisper.cpp tiny.en (audio_ctx 512)" if args.asr == "whispercpp" else (
        f"faster-whisper {Path(args.asr_model_dir).name}" if args.asr_model_dir else "faster-whisper tiny.en")
    print(f"turn latency on the wire ({args.callers} caller(s), {asr_name}, piper):")
    print(f"  {percentiles(latencies)}  mean {wire:.0f} ms")
    print(f"  speech gateway's own view (its end of speech -> media's first frame): mean {gateway_turn:.0f} ms")
    early = (speech_after.get('dialtone_speech_utterances_total{end="early"}', 0.0)
             - speech_before.get('dialtone_speech_utterances_total{end="early"}', 0.0))
    setting = "vad.early_stop_ms " + ("default" if args.early_stop_ms is None else str(args.early_stop_ms))
    print(f"  early ends ({setting}): {early:.0f} of {len(latencies)} turns")
    print(f"  breakdown (means): endpointing wait {endpointing:.0f} ms | ASR final {asr:.0f} ms"
          f" | dialog {dialog:.1f} ms | TTS first audio {tts:.0f} ms | hops + playout/pacing {rest:.0f} ms")
    return 0 if latencies else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--budget-s", type=float, default=540.0, help="stop measuring after this long")
    parser.add_argument("--asr", choices=("faster_whisper", "whispercpp"), default="faster_whisper")
    parser.add_argument("--early-stop-ms", type=int, default=None,
                        help="speech gateway vad.early_stop_ms (default: its config, 300; 0 = off)")
    parser.add_argument("--asr-model-dir", default="",
                        help="faster-whisper CT2 model folder (e.g. Whisper base from `dialtone models assemble-base`)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
