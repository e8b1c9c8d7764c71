"""Turn latency on the wire through all four services, with fresh content in every reply, and false
cut-offs on utterances with pauses inside them.

`dialtone up` runs a bench dialog that answers an order number the way the shipped order_status dialog
does ("One moment while I look up order 8392."); the caller (`dialtone call`'s phone and runner) says
order numbers from recorded human speech (Asterisk's digits/*.wav, "number", "is", "and", joined with
short gaps). Every number is new to the run, so every reply is new to the TTS, except the planned
repeats (every ``--repeat-every``-th clean turn says an earlier number again: its whole reply is in
the TTS cache); the two are reported apart.

Turn latency = end of the caller's speech audio (its last RTP frame sent) -> the first non-silent RTP
packet back, measured at the caller. The paused set (``--paused``, at least 50 for the acceptance
figure) says numbers with 300-900 ms pauses inside ("number is ... 4 5 ... 6 7", digits in groups,
"4 5 and ... 6 7"); a reply that starts while the caller is still inside such an utterance is a false
cut-off. Breakdown (means, from the services' own histograms over the same turns): endpointing wait,
ASR final, dialog (runtime event), TTS first audio, and the rest (gRPC hops, playout/pacing to the
first frame on the wire). The 1-minute load average is printed before and after: the figures are only
worth comparing at a similar load.

    python -m bench.e2e_turn_latency [--turns 80] [--paused 50] [--repeat-every 5] [--budget-s 1500]
                                     [--asr whispercpp] [--early-stop-ms N] [--json FILE] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
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
import wave
from pathlib import Path
from typing import Any

import grpc
from dialtone.caller.hearing import SpeechOnset, Utterance
from dialtone.caller.phone import Phone, free_sip_port
from dialtone.caller.runner import ScriptRunner
from dialtone.caller.script import Step
from dialtone.caller.voices import TRIM_LEVEL, Voices
from dialtone.common.audio import trim_silence
from dialtone.conversation_runtime.config import EXAMPLES_DIR
from dialtone.language.entities import digit_runs
from dialtone.speech_gateway.audio_io import read_wav
from dialtone.speech_gateway.engines.asr_faster_whisper import default_model_dir
from dialtone.speech_gateway.engines.ggml_convert import convert_ct2_to_ggml
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import conversation_runtime_pb2_grpc as rpb_grpc

from tests.speech_gateway.corpus import MISSING, SOUNDS

DEFAULT_REPLY = "One moment while I look up order ${order_id}."
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
    # order_status's reply to an order number ("One moment while I look up order ${order_id}."), on a loop
    "bench_orders": """
dialog:
  name: bench_orders
  initial: ready
  input: {mode: speech, no_input: 60s, barge_in: on}
  states:
    ready:
      collect:
        slot: order_id
        type: digits
        constraints: {min_length: 4}
        prompt: "Say your order number."
        reprompts: ["Sorry, I did not get that. Say your order number."]
        max_attempts: 10
      transitions: &next
        - {event: filled, target: lookup}
        - {event: failed, target: ready}
    lookup:
      # the reply is the slot's prompt: one reply per turn (a second prompt after it would start while
      # the caller, who answers the first, is already talking)
      collect:
        slot: order_id
        type: digits
        constraints: {min_length: 4}
        prompt: "One moment while I look up order ${order_id}."
        reprompts: ["Sorry, I did not get that. Say your order number."]
        max_attempts: 10
      transitions: *next
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

# The caller's words: Asterisk's human-read prompts (en_US_f_Allison), 8 kHz.
CLIPS = {**{d: f"digits/{d}" for d in "0123456789"}, "number": "number", "is": "is", "and": "vm-and"}
DIGIT_GAP_MS = (60, 180)     # between words said in one breath
PAUSE_MS = (300, 900)        # a pause inside an utterance (the labelled set)
SETTLE_S = 1.5               # after each utterance: a reply to a cut-off fragment comes before the next turn
CALL_TURNS = 10
# A reply that starts this soon after the caller began is not an answer to it (the gateway has not even
# detected the speech yet): the caller spoke into a gap in the previous reply, or its loop stalled and read
# the reply's packets late (seen at load averages above 4). Counted apart, not as a cut-off.
OVERLAP_S = 0.25
_wav_names = itertools.count()
PAUSED_PATTERNS = ("groups 2+2", "groups 3+3", "number is ... 4", "number is ... 2 ... 2", "2 and ... 2")


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {pick(0.50):.0f} ms  p95 {pick(0.95):.0f} ms  p99 {pick(0.99):.0f} ms  (n={len(samples)})"


def load_average() -> float:
    return os.getloadavg()[0]


@dataclasses.dataclass(frozen=True)
class TurnPlan:
    kind: str                       # fresh | repeat | paused
    digits: str
    parts: tuple[str | int, ...]    # clip names, and gaps in ms between them
    pattern: str = ""               # paused: which of PAUSED_PATTERNS

    @property
    def text(self) -> str:
        return " ".join(f"[{p} ms]" if isinstance(p, int) and p >= PAUSE_MS[0] else p
                        for p in self.parts if not isinstance(p, int) or p >= PAUSE_MS[0])


@dataclasses.dataclass
class TurnResult:
    plan: TurnPlan
    said_ms: float                      # length of the caller's utterance on the wire
    latency_ms: float | None = None     # end of the utterance -> the first reply packet
    cut_off_ms: float | None = None     # a reply began this far into the utterance (a false cut-off)
    heard: bool = False                 # a final transcript of the call holds exactly its digits (a run)
    overlap: bool = False               # a reply started in its first OVERLAP_S (see there)


class HumanVoice:
    """Recorded words joined into utterances with chosen gaps; each clip's silent ends cut, so a gap is
    the silence between words and the utterance ends with its last word."""

    def __init__(self) -> None:
        if not SOUNDS.is_dir():
            raise FileNotFoundError(MISSING)
        self.clips: dict[str, bytes] = {}
        self.rate = 0
        for word, name in CLIPS.items():
            pcm, rate = read_wav(SOUNDS / f"{name}.wav")
            if self.rate and rate != self.rate:
                raise ValueError(f"{name}.wav is at {rate} Hz, the others at {self.rate} Hz")
            self.rate = rate
            self.clips[word] = trim_silence(pcm, TRIM_LEVEL)

    def join(self, parts: tuple[str | int, ...]) -> bytes:
        return b"".join(bytes(2 * self.rate * p // 1000) if isinstance(p, int) else self.clips[p] for p in parts)

    def write(self, plan: TurnPlan, path: Path) -> Path:
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.rate)
            wav.writeframes(self.join(plan.parts))
        return path


class Planner:
    """Order numbers never said before in the run (so each reply is new to the TTS), said as clean
    turns, repeats of an earlier clean turn, or with pauses inside (the labelled set)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def number(self, length: int) -> str:
        while True:
            digits = "".join(self.rng.choice("0123456789") for _ in range(length))
            if digits[0] != "0" and digits not in self.used:   # a leading zero reads back differently
                self.used.add(digits)
                return digits

    def gap(self) -> int:
        return self.rng.randint(*DIGIT_GAP_MS)

    def pause(self) -> int:
        return self.rng.randint(*PAUSE_MS)

    def said(self, digits: str) -> list[str | int]:
        parts: list[str | int] = []
        for d in digits:
            parts += [self.gap(), d] if parts else [d]
        return parts

    def clean(self) -> TurnPlan:
        digits = self.number(4)
        parts = self.said(digits)
        if self.rng.random() < 1 / 3:
            parts = ["number", self.gap(), "is", self.gap(), *parts]
        return TurnPlan("fresh", digits, tuple(parts))

    def paused(self, pattern: str) -> TurnPlan:
        if pattern == "groups 2+2":
            digits = self.number(4)
            parts = [*self.said(digits[:2]), self.pause(), *self.said(digits[2:])]
        elif pattern == "groups 3+3":
            digits = self.number(6)
            parts = [*self.said(digits[:3]), self.pause(), *self.said(digits[3:])]
        elif pattern == "number is ... 4":
            digits = self.number(4)
            parts = ["number", self.gap(), "is", self.pause(), *self.said(digits)]
        elif pattern == "number is ... 2 ... 2":
            digits = self.number(4)
            parts = ["number", self.gap(), "is", self.pause(), *self.said(digits[:2]), self.pause(),
                     *self.said(digits[2:])]
        elif pattern == "2 and ... 2":
            digits = self.number(4)
            parts = [*self.said(digits[:2]), self.gap(), "and", self.pause(), *self.said(digits[2:])]
        else:
            raise ValueError(f"unknown pattern {pattern!r}")
        return TurnPlan("paused", digits, tuple(parts), pattern)

    def plan(self, turns: int, paused: int, repeat_every: int) -> list[TurnPlan]:
        """``turns`` clean turns (every ``repeat_every``-th a repeat of an earlier one) with ``paused``
        paused ones spread among them; a repeat always comes after the turn it repeats."""
        clean: list[TurnPlan] = []
        for index in range(turns):
            originals = [p for p in clean if p.kind == "fresh"]
            if repeat_every and index % repeat_every == repeat_every - 1 and originals:
                original = self.rng.choice(originals)
                clean.append(dataclasses.replace(original, kind="repeat"))
            else:
                clean.append(self.clean())
        plans = list(clean)
        for index in range(paused):
            plans.insert(self.rng.randint(0, len(plans)), self.paused(PAUSED_PATTERNS[index % len(PAUSED_PATTERNS)]))
        return plans


class TurnRunner(ScriptRunner):
    """The script runner, also keeping every reply onset and each utterance's span on the wire."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.onsets: list[float] = []
        self.spans: dict[str, list[float]] = {}   # our utterance id -> [first frame sent, last frame sent]

    def _on_hearing(self, event: SpeechOnset | Utterance) -> None:
        if isinstance(event, SpeechOnset):
            self.onsets.append(event.at)
        super()._on_hearing(event)

    def on_said(self, at: float, utterance_id: str, finished: bool) -> None:
        if finished:
            self.spans.setdefault(utterance_id, [at, at])[1] = at
        else:
            self.spans[utterance_id] = [at, at]
        super().on_said(at, utterance_id, finished)

    def results(self, plans: list[TurnPlan]) -> list[TurnResult]:
        spans = sorted(self.spans.values())
        results = []
        for index, (plan, (start, end)) in enumerate(zip(plans, spans, strict=False)):
            following = spans[index + 1][0] if index + 1 < len(spans) else float("inf")
            result = TurnResult(plan, (end - start) * 1000.0)
            inside = [t for t in self.onsets if start + OVERLAP_S < t <= end]
            after = [t for t in self.onsets if end < t < following]
            result.overlap = any(start < t <= start + OVERLAP_S for t in self.onsets)
            if inside:
                result.cut_off_ms = (inside[0] - start) * 1000.0
            elif after:
                result.latency_ms = (after[0] - end) * 1000.0
            results.append(result)
        return results


class RuntimeProxy(rpb_grpc.ConversationRuntimeServicer):
    """Between the speech gateway and the runtime: passes each Converse stream through, keeping each call's
    final transcripts (how many per turn, and whether the number said came through). ``expect`` "digits"
    stamps on every StateChanged of bench_orders the expectation its collect declares (digits, at least
    4), which the runtime itself sends since issue 13: kept to compare the two; "none" takes it off, so
    the turn ends as in a state that listens for anything (an intent menu). One more loopback hop each
    way."""

    EXPECT = rpb.Expectation(entity="digits", constraints_json='{"min_length": 4}')

    def __init__(self, runtime_address: str, expect: str) -> None:
        self._runtime_address = runtime_address
        self._expect = expect
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None
        self.port = 0
        self.finals: list[list[str]] = []     # per stream, in the order the calls were made

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._runtime_address)
        self._server = grpc.aio.server()
        rpb_grpc.add_ConversationRuntimeServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def Converse(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        assert self._channel is not None
        finals: list[str] = []
        self.finals.append(finals)

        async def events() -> Any:
            async for event in request_iterator:
                if event.HasField("transcript") and event.transcript.is_final:
                    finals.append(event.transcript.text)
                yield event

        call = rpb_grpc.ConversationRuntimeStub(self._channel).Converse(events())
        try:
            async for action in call:
                changed = action.state_changed
                if self._expect != "runtime" and action.HasField("state_changed") and changed.dialog == "bench_orders":
                    if self._expect == "digits":
                        changed.expect.CopyFrom(self.EXPECT)
                    else:
                        changed.ClearField("expect")
                yield action
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), exc.details() or "")

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(1.0)
        if self._channel is not None:
            await self._channel.close()


class UpStack:
    """`dialtone up` with the bench dialogs next to the packaged examples, on free ports."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None, base: int = 0,
                 reply: str = DEFAULT_REPLY) -> None:
        dialogs = folder / "dialogs"
        dialogs.mkdir()
        for name, text in BENCH_DIALOGS.items():
            (dialogs / f"{name}.yaml").write_text(text.replace(json.dumps(DEFAULT_REPLY), json.dumps(reply)))
        self.base = base or free_base()
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


def free_base() -> int:
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


async def call_turns(phone: Phone, voices: Voices, human: HumanVoice, uri: str, plans: list[TurnPlan],
                     folder: Path) -> tuple[list[TurnResult], list[str]]:
    """One call saying each plan in turn (waiting for the bot's answer to end between them)."""
    steps: list[Step] = []
    for plan in plans:
        path = human.write(plan, folder / f"turn-{next(_wav_names)}.wav")
        steps += [Step("wav", str(path)), Step("silence", seconds=SETTLE_S)]
    steps.append(Step("wait", "speech"))
    runner = TurnRunner(phone, voices, uri, tuple(steps), timeout_s=60.0 + 15.0 * len(plans), step_timeout_s=20.0,
                        end_silence_ms=500, transcribe=False)
    report = await runner.run()
    return runner.results(plans), report["failures"]


def _mean_delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    count = after.get(name + "_count", 0.0) - before.get(name + "_count", 0.0)
    if count <= 0:
        return None
    return (after.get(name + "_sum", 0.0) - before.get(name + "_sum", 0.0)) / count * 1000.0


def _labelled_delta(before: dict[str, float], after: dict[str, float], name: str, label: str) -> float:
    """The change of the labelled samples of ``name`` that carry ``label`` (e.g. 'cache="hit"'), summed."""
    return sum(value - before.get(sample, 0.0) for sample, value in after.items()
               if sample.startswith(name + "{") and label in sample)


def summarize(results: list[TurnResult]) -> dict[str, Any]:
    def latencies(kind: str) -> list[float]:
        return [r.latency_ms for r in results if r.plan.kind == kind and r.latency_ms is not None]

    paused = [r for r in results if r.plan.kind == "paused"]
    clean = [r for r in results if r.plan.kind != "paused"]
    by_pattern = {pattern: sum(1 for r in paused if r.plan.pattern == pattern and r.cut_off_ms is not None)
                  for pattern in PAUSED_PATTERNS}
    return {
        "fresh_ms": latencies("fresh"), "cached_ms": latencies("repeat"), "paused_ms": latencies("paused"),
        "paused": len(paused), "cut_offs": sum(1 for r in paused if r.cut_off_ms is not None),
        "cut_offs_by_pattern": by_pattern,
        "clean_cut_offs": sum(1 for r in clean if r.cut_off_ms is not None),
        "no_reply": sum(1 for r in results if r.latency_ms is None and r.cut_off_ms is None),
        "heard": sum(1 for r in results if r.heard), "said": len(results),
        "overlaps": sum(1 for r in results if r.overlap),
        "turns": [{"kind": r.plan.kind, "pattern": r.plan.pattern, "said": r.plan.text, "digits": r.plan.digits,
                   "said_ms": round(r.said_ms), "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
                   "cut_off_ms": None if r.cut_off_ms is None else round(r.cut_off_ms, 1), "heard": r.heard,
                   "overlap": r.overlap}
                  for r in results],
    }


def _stack_env(args: argparse.Namespace, folder: str) -> dict[str, str]:
    env = {}
    if args.asr == "whispercpp":
        # whisper.cpp with tiny.en converted from the packaged model (as `dialtone models convert-ggml`)
        ggml = str(Path(folder) / "tiny.en.ggml.bin")
        convert_ct2_to_ggml(default_model_dir(), ggml)
        env = {"DIALTONE_SPEECH_GATEWAY__ASR__ENGINE": "whispercpp",
               "DIALTONE_SPEECH_GATEWAY__ASR__GGML_MODEL": ggml, "DIALTONE_SPEECH_GATEWAY__ASR__AUDIO_CTX": "512"}
    if args.asr_model_dir:
        # a configured CTranslate2 model, e.g. Whisper base from `dialtone models assemble-base`
        env["DIALTONE_SPEECH_GATEWAY__ASR__MODEL_DIR"] = args.asr_model_dir
    if args.early_stop_ms is not None:
        env["DIALTONE_SPEECH_GATEWAY__VAD__EARLY_STOP_MS"] = str(args.early_stop_ms)
    for setting in args.set:
        key, _, value = setting.partition("=")
        env["DIALTONE_SPEECH_GATEWAY__" + key.upper().replace(".", "__")] = value
    return env


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    planner = Planner(rng)
    warm_up = [planner.clean(), planner.paused(PAUSED_PATTERNS[0])]
    plans = planner.plan(args.turns, args.paused, args.repeat_every)
    human = HumanVoice()
    results: list[TurnResult] = []
    problems: list[str] = []
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-") as folder:
        env = await asyncio.to_thread(_stack_env, args, folder)
        base = free_base()
        proxy = RuntimeProxy(f"127.0.0.1:{base + 3}", expect=args.expect)
        await proxy.start()
        env["DIALTONE_SPEECH_GATEWAY__RUNTIME_ADDRESS"] = f"127.0.0.1:{proxy.port}"
        stack = await asyncio.to_thread(UpStack, Path(folder), env, base, args.reply)
        try:
            voices = await Voices.load()
            phone = Phone("127.0.0.1")
            await phone.start()
            try:
                if not args.smoke:   # warm-up call (first renders, first decodes), not counted
                    await call_turns(phone, voices, human, stack.uri("bench_orders"), warm_up, Path(folder))
                speech_before, runtime_before = stack.metrics(2), stack.metrics(3)
                started = time.monotonic()
                finals_count = 0
                transcripts: list[list[str]] = []
                for first in range(0, len(plans), CALL_TURNS):
                    if time.monotonic() - started > args.budget_s:
                        problems.append(f"budget of {args.budget_s:g} s spent after {len(results)} turns")
                        break
                    chunk = plans[first:first + CALL_TURNS]
                    got, failures = await call_turns(phone, voices, human, stack.uri("bench_orders"), chunk,
                                                     Path(folder))
                    finals = proxy.finals[-1] if proxy.finals else []
                    heard = {run for text in finals for run in digit_runs(text)}   # what the dialog reads
                    for result in got:
                        result.heard = result.plan.digits in heard
                    finals_count += len(finals)
                    transcripts.append(list(finals))
                    results += got
                    problems += failures
                speech_after, runtime_after = stack.metrics(2), stack.metrics(3)
            finally:
                await phone.stop()
                voices.close()
        finally:
            await asyncio.to_thread(stack.stop)
            await proxy.stop()
    summary = summarize(results)
    summary["expectation"] = args.expect
    summary["reply"] = args.reply
    summary["finals"] = finals_count
    summary["transcripts"] = transcripts     # each call's final transcripts, as the runtime got them
    summary["problems"] = problems
    summary["load"] = [round(load_before, 2), round(load_average(), 2)]
    tts = "dialtone_speech_tts_first_audio_seconds_count"
    summary["tts_first_audio"] = {"hit": _labelled_delta(speech_before, speech_after, tts, 'cache="hit"'),
                                  "ahead": _labelled_delta(speech_before, speech_after, tts, 'cache="ahead"'),
                                  "miss": _labelled_delta(speech_before, speech_after, tts, 'cache="miss"')}
    eager = "dialtone_speech_eager_replies_total"
    summary["eager_replies"] = {outcome: _labelled_delta(speech_before, speech_after, eager, f'outcome="{outcome}"')
                                for outcome in ("prepared", "committed", "cancelled", "unused")}
    summary["breakdown_ms"] = {
        "gateway_turn": _mean_delta(speech_before, speech_after, "dialtone_speech_turn_latency_seconds"),
        "endpointing": _mean_delta(speech_before, speech_after, "dialtone_speech_endpoint_wait_seconds"),
        "asr_final": _mean_delta(speech_before, speech_after, "dialtone_speech_asr_latency_seconds"),
        "dialog": _mean_delta(runtime_before, runtime_after, "dialtone_runtime_event_seconds"),
        "tts_first_audio": _mean_delta(speech_before, speech_after, "dialtone_speech_tts_first_audio_seconds"),
    }
    summary["utterances"] = {end: _labelled_delta(speech_before, speech_after, "dialtone_speech_utterances_total",
                                                  f'end="{end}"') for end in ("silence", "early", "forced")}
    return summary


def report(summary: dict[str, Any], asr_name: str) -> str:
    fresh, cached = summary["fresh_ms"], summary["cached_ms"]
    b = summary["breakdown_ms"]
    expecting = {"digits": "the state's expectation: digits, at least 4",
                 "none": "no expectation (the turn ends as in a state listening for anything)"}.get(
        summary["expectation"], "expectations as the runtime sends them (collect digits, at least 4)")
    lines = [f"turn latency on the wire (1 caller, {asr_name}, piper, {expecting}; load average "
             f"{summary['load'][0]:.2f} before, {summary['load'][1]:.2f} after):",
             f"  fresh reply (new to the TTS): {percentiles(fresh)}",
             f"  repeated reply (in the TTS cache): {percentiles(cached)}",
             f"  after an utterance with pauses inside: {percentiles(summary['paused_ms'])}"]
    paused, cut = summary["paused"], summary["cut_offs"]
    rate = 100.0 * cut / paused if paused else 0.0
    patterns = ", ".join(f"{p}: {n}" for p, n in summary["cut_offs_by_pattern"].items())
    lines.append(f"  false cut-offs: {cut} of {paused} utterances with 300-900 ms pauses ({rate:.1f} %; {patterns});"
                 f" clean turns cut off: {summary['clean_cut_offs']}; no reply: {summary['no_reply']};"
                 f" caller spoke into the previous reply: {summary['overlaps']}")
    lines.append(f"  numbers recognised exactly: {summary['heard']} of {summary['said']}; final transcripts: "
                 f"{summary['finals']} for {summary['said']} utterances (more: turns split)")
    tts = summary["tts_first_audio"]
    lines.append(f"  prompts rendered: {tts['miss']:.0f} new to the TTS cache, {tts['hit']:.0f} from it, "
                 f"{tts['ahead']:.0f} joining a rendering ahead")
    eager = summary["eager_replies"]
    lines.append(f"  eager replies: {eager['prepared']:.0f} prepared, {eager['committed']:.0f} committed, "
                 f"{eager['cancelled']:.0f} cancelled, {eager['unused']:.0f} unused")
    u = summary["utterances"]
    lines.append(f"  utterances ended at the gateway: {u['silence']:.0f} by silence, {u['early']:.0f} early, "
                 f"{u['forced']:.0f} forced")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    wire = statistics.fmean(fresh + cached) if fresh or cached else 0.0
    known = [b[k] or 0.0 for k in ("endpointing", "asr_final", "dialog", "tts_first_audio")]
    lines.append(f"  breakdown (means over all turns): endpointing wait {ms(b['endpointing'])} | ASR final "
                 f"{ms(b['asr_final'])} | dialog {ms(b['dialog'])} | TTS first audio {ms(b['tts_first_audio'])} | "
                 f"hops + playout/pacing ~{wire - sum(known):.0f} ms; the gateway's own view {ms(b['gateway_turn'])}")
    for problem in summary["problems"]:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    summary = await run_bench(args)
    asr_name = "whisper.cpp tiny.en (audio_ctx 512)" if args.asr == "whispercpp" else (
        f"faster-whisper {Path(args.asr_model_dir).name}" if args.asr_model_dir else "faster-whisper tiny.en")
    print(report(summary, asr_name))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0 if summary["fresh_ms"] else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=80, help="clean turns (fresh numbers and repeats)")
    parser.add_argument("--paused", type=int, default=50, help="utterances with pauses inside (false cut-offs)")
    parser.add_argument("--repeat-every", type=int, default=5,
                        help="every Nth clean turn repeats an earlier number (0 = never)")
    parser.add_argument("--budget-s", type=float, default=1500.0, help="stop measuring after this long")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--asr", choices=("faster_whisper", "whispercpp"), default="faster_whisper")
    parser.add_argument("--early-stop-ms", type=int, default=None,
                        help="speech gateway vad.early_stop_ms (default: its config)")
    parser.add_argument("--asr-model-dir", default="",
                        help="faster-whisper CT2 model folder (e.g. Whisper base from `dialtone models assemble-base`)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a speech gateway setting, e.g. vad.stop_ms=700 (repeatable)")
    parser.add_argument("--expect", choices=("runtime", "digits", "none"), default="runtime",
                        help="runtime: the expectations the runtime sends (the bench dialog collects digits, at "
                             "least 4); digits: a proxy also stamps that expectation on every StateChanged; "
                             "none: the proxy takes it off (the turn ends as in a state listening for anything)")
    parser.add_argument("--reply", default=DEFAULT_REPLY,
                        help="the bench dialog's reply to a number (a template over ${order_id}); one that "
                             "starts with the number, \"Order ${order_id}, one moment please.\", has no fixed "
                             "opening for the TTS cache to serve")
    parser.add_argument("--json", default="", help="write the summary and every turn here")
    parser.add_argument("--smoke", action="store_true",
                        help="three turns only, no warm-up call (make test): the bench runs, no figures")
    args = parser.parse_args()
    if args.smoke:
        args.turns, args.paused, args.repeat_every = 2, 1, 2
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
