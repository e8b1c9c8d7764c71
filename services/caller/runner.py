"""Runs a script over one call and keeps its timeline (heard / said / latencies on the wire).

Turn latency: end of our speech audio on the wire (its last RTP frame sent) -> arrival of the
first non-silent RTP packet back. Barge-in reaction: the first frame of speech we started
over a prompt -> arrival of that prompt's last non-silent packet.

Each failure is kept with its kind (``FAILURE_KINDS``), so that many calls can be counted by kind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from dialtone.caller.hearing import Hearing, SpeechOnset, Utterance
from dialtone.caller.phone import CallFailed, Phone, PhoneCall
from dialtone.caller.script import Step, heard_contains
from dialtone.caller.voices import Voices, read_wav

log = logging.getLogger(__name__)

DEFAULT_STEP_TIMEOUT_S = 20.0
DTMF_GAP_S = 0.25
TRANSCRIBE_DRAIN_S = 10.0
POLL_S = 0.02

FAILURE_KINDS = {
    "refused": "the far end answered the INVITE with an error status (the kind is refused_<status>)",
    "no_answer": "no answer within the call's timeout",
    "not_answered": "the call ended before it was answered, or its SDP answer was unusable",
    "setup_error": "the call could not be placed (socket, address)",
    "timeout": "the call ran past its timeout; the caller hung up",
    "ended_early": "the call ended before a say/wav/dtmf/silence step could run",
    "wait_timeout": "a wait step's event did not come within the step timeout",
    "expect_failed": "an expect step's text was not heard",
    "rtp_timeout": "no RTP from the far end for rtp_timeout_s; the caller hung up",
}


@dataclasses.dataclass
class Entry:
    at: float          # seconds since the call was answered
    kind: str          # connected, heard, said, dtmf, refer, ended, expect, note
    text: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Heard:
    utterance: Utterance
    text: str | None = None     # None while it is being transcribed




class ScriptRunner:
    """One call driven by a list of steps (see module docstring); ``run()`` returns the report."""

    def __init__(self, phone: Phone, voices: Voices, uri: str, steps: tuple[Step, ...], *,
                 timeout_s: float = 60.0, step_timeout_s: float = DEFAULT_STEP_TIMEOUT_S,
                 end_silence_ms: int | None = None, transcribe: bool = True,
                 rtp_timeout_s: float | None = None) -> None:
        self.phone, self.voices, self.uri, self.steps = phone, voices, uri, steps
        self.timeout_s = timeout_s
        self.transcribe = transcribe   # False: timings only (load tests), no local ASR
        self.step_timeout_s = step_timeout_s
        self.entries: list[Entry] = []
        self.turn_latencies_ms: list[float] = []
        self.barge_in_ms: list[float] = []
        self.expects: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.failure_kinds: list[str] = []            # one per failure, a FAILURE_KINDS key (refused_<status>)
        self.rtp_timeout_s = rtp_timeout_s             # None: a silent far end is waited for
        self.answered_at: float | None = None          # loop time of the answer
        self.setup_ms: float | None = None             # INVITE sent -> answered
        self.refer_to = ""
        self.ended_by = ""
        self.connected = False
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        hearing_args = {} if end_silence_ms is None else {"end_silence_ms": end_silence_ms}
        self._hearing = Hearing(8000, **hearing_args)
        self._heard: list[_Heard] = []
        self._changed = asyncio.Event()
        self._call: PhoneCall | None = None
        self._transcribing: set[asyncio.Task[None]] = set()
        self._said_end: float | None = None          # end of our last speech, awaiting the bot's answer
        self._said_text = ""
        self._speaking_since: dict[str, float] = {}  # our utterance id -> first frame on the wire
        self._said_done: dict[str, float] = {}
        self._barge: tuple[float, float] | None = None   # (our onset, bot utterance onset) over a prompt
        self._interrupting: tuple[str, float] | None = None  # (our utterance id, bot onset) until it starts
        self._interrupted_onset: float | None = None         # onset of the last prompt we talked over
        self._mark = 0                               # index into _heard where the current step's window starts
        self._ended_at: float | None = None
        self._last_packet_at = 0.0

    # --- CallEvents ----------------------------------------------------------------------------
    def on_audio(self, at: float, pcm: bytes, rate: int) -> None:
        self._last_packet_at = at
        for event in self._hearing.packet(at, pcm):
            self._on_hearing(event)

    def _on_hearing(self, event: SpeechOnset | Utterance) -> None:
        if isinstance(event, SpeechOnset):
            if self._said_end is not None:
                latency = (event.at - self._said_end) * 1000.0
                self.turn_latencies_ms.append(latency)
                self._add(event.at, "latency", f"turn {latency:.0f} ms after {self._said_text!r}",
                          turn_ms=round(latency, 1))
                self._said_end = None
        else:
            heard = _Heard(event)
            self._heard.append(heard)
            if self._barge is not None and self._barge[1] == event.onset:
                reaction = (event.last_voice - self._barge[0]) * 1000.0
                self.barge_in_ms.append(reaction)
                self._add(event.last_voice, "barge-in", f"prompt stopped {reaction:.0f} ms after we spoke",
                          reaction_ms=round(reaction, 1))
                self._barge = None
            if self.transcribe:
                task = self._loop.create_task(self._transcribe(heard))
                self._transcribing.add(task)
                task.add_done_callback(self._transcribing.discard)
            else:
                heard.text = ""
        self._changed.set()

    async def _transcribe(self, heard: _Heard) -> None:
        u = heard.utterance
        try:
            heard.text = await self.voices.transcribe(u.pcm, u.rate)
        except Exception as exc:  # noqa: BLE001 - an ASR failure is reported in the timeline, not raised
            log.warning("transcription failed: %s", exc)
            heard.text = ""
        self._add(u.onset, "heard", heard.text, seconds=round(u.duration_ms / 1000.0, 2),
                  last_voice=round(u.last_voice - self._t0, 3))
        self._changed.set()

    def on_said(self, at: float, utterance_id: str, finished: bool) -> None:
        if not finished:
            self._speaking_since[utterance_id] = at
            if self._interrupting is not None and self._interrupting[0] == utterance_id:
                # armed now, not when we finish talking: a prompt silenced at our onset ends long before
                self._barge = (at, self._interrupting[1])
                self._interrupting = None
        else:
            self._said_done[utterance_id] = at
        self._changed.set()

    def on_refer(self, at: float, refer_to: str) -> None:
        self.refer_to = refer_to
        self._add(at, "refer", refer_to)
        self._changed.set()

    def on_ended(self, at: float, reason: str) -> None:
        self.ended_by = reason
        self._ended_at = at
        final = self._hearing.flush()
        if final is not None:
            self._on_hearing(final)
        self._add(at, "ended", reason)
        self._changed.set()

    # --- running -------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        deadline = self._loop.time() + self.timeout_s
        rendered = await self._prepare()
        dialed = self._loop.time()
        try:
            self._call = await asyncio.wait_for(self.phone.call(self.uri, self), self.timeout_s)
        except CallFailed as exc:
            self._fail(exc.kind, f"call failed: {exc}")
            return self.report()
        except TimeoutError:
            self._fail("no_answer", f"call failed: no answer within {self.timeout_s:g} s")
            return self.report()
        except (OSError, ValueError) as exc:
            self._fail("setup_error", f"call failed: {exc}")
            return self.report()
        self._t0 = self._last_packet_at = self.answered_at = self._loop.time()
        self.setup_ms = (self._t0 - dialed) * 1000.0
        self.connected = True
        self._add(self._t0, "connected", self.uri, codec=self._call.negotiated.codec if self._call.negotiated else "")
        poller = self._loop.create_task(self._poll_hearing())
        try:
            await asyncio.wait_for(self._run_steps(rendered), max(0.1, deadline - self._loop.time()))
        except TimeoutError:
            self._fail("timeout", f"the call ran past its timeout of {self.timeout_s:g} s")
        finally:
            if not self._call.ended.is_set():
                self._call.hangup()
            await self._call.close()
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
            if self._transcribing:
                await asyncio.wait(set(self._transcribing), timeout=TRANSCRIBE_DRAIN_S)
        return self.report()

    async def _prepare(self) -> dict[int, tuple[bytes, int]]:
        """Every line rendered (or read) before dialing, so rendering never delays a turn."""
        rendered: dict[int, tuple[bytes, int]] = {}
        for index, step in enumerate(self.steps):
            if step.kind == "say" and step.phrases:
                rendered[index] = await self.voices.render_phrases(step.phrases)
            elif step.kind == "say":
                rendered[index] = await self.voices.render(step.value)
            elif step.kind == "wav":
                rendered[index] = await asyncio.to_thread(read_wav, step.value)
        return rendered

    async def _poll_hearing(self) -> None:
        # packets stop when the far end does; end an utterance on time anyway
        while True:
            await asyncio.sleep(0.1)
            now = self._loop.time()
            ended = self._hearing.poll(now)
            if ended is not None:
                self._on_hearing(ended)
            if self.rtp_timeout_s is not None and self._call is not None and not self._call.ended.is_set() \
                    and now - self._last_packet_at > self.rtp_timeout_s:
                self._fail("rtp_timeout", f"no RTP from the far end for {self.rtp_timeout_s:g} s")
                self._call.hangup("rtp_timeout")

    async def _run_steps(self, rendered: dict[int, tuple[bytes, int]]) -> None:
        assert self._call is not None
        for index, step in enumerate(self.steps):
            if self._call.ended.is_set() and step.kind in ("say", "wav", "dtmf", "silence"):
                self._fail("ended_early",
                           f"step {index + 1} ({step.describe()}) not run: the call ended ({self.ended_by})")
                break
            if step.kind in ("say", "wav"):
                await self._speak(step, *rendered[index])
            elif step.kind == "dtmf":
                await self._press(step)
            elif step.kind == "expect":
                await self._expect(step.value)
            elif step.kind == "silence":
                self._add(self._loop.time(), "silence", f"{step.seconds:g} s")
                await self._until(lambda: self._call is not None and self._call.ended.is_set(), step.seconds)
            elif step.kind == "wait":
                await self._wait_for(step.value)
            elif step.kind == "hangup":
                self._call.hangup()
                await self._until(lambda: self._call is not None and self._call.ended.is_set(), 5.0)

    async def _await_turn(self, step: Step) -> None:
        if step.interrupt:
            # over the prompt: once the bot has been talking for interrupt_after_ms
            after = step.interrupt_after_ms / 1000.0
            # ...and a prompt we have not interrupted already (the one we just talked over may still be
            # in its end-of-speech hangover: talking again then would be over silence)
            await self._until(lambda: (self._bot_speaking_for() >= after
                                       and self._hearing_onset() != self._interrupted_onset)
                              or self._call_over(), self.step_timeout_s)
        else:
            # our turn: the bot has said something since our last action and is quiet now
            await self._until(lambda: (len(self._heard) > self._mark and not self._hearing.speaking)
                              or self._call_over(), self.step_timeout_s)

    async def _speak(self, step: Step, pcm: bytes, rate: int) -> None:
        assert self._call is not None
        await self._await_turn(step)
        if self._ended_before(step):
            return
        self._mark = len(self._heard)
        bot_onset = self._hearing_onset()
        utterance_id = self._call.play(pcm, rate)
        if step.interrupt and bot_onset is not None:
            self._interrupting = (utterance_id, bot_onset)
            self._interrupted_onset = bot_onset
        await self._until(lambda: utterance_id in self._said_done or self._call_over(), len(pcm) / 2 / rate + 5.0)
        started = self._speaking_since.get(utterance_id)
        ended = self._said_done.get(utterance_id)
        text = step.value if step.kind == "say" else f"[{step.value}]"
        if started is not None:
            self._add(started, "said", text, seconds=round(len(pcm) / 2 / rate, 2), interrupt=step.interrupt)
        if ended is not None:
            self._said_end = ended
            self._said_text = text

    def _ended_before(self, step: Step) -> bool:
        """The call ended while we waited for our turn: the step cannot run."""
        if not self._call_over():
            return False
        self._fail("ended_early", f"{step.describe()} not run: the call ended ({self.ended_by})")
        return True

    def _bot_speaking_for(self) -> float:
        onset = self._hearing_onset()
        return -1.0 if onset is None else self._loop.time() - onset

    def _hearing_onset(self) -> float | None:
        return self._hearing._onset  # noqa: SLF001 - the segmenter is ours; read-only peek

    async def _press(self, step: Step) -> None:
        assert self._call is not None
        await self._await_turn(step)
        if self._ended_before(step):
            return
        digits = step.value
        self._mark = len(self._heard)
        self._said_end = None
        for digit in digits:
            if self._call.ended.is_set():
                return
            self._call.send_digit(digit)
            self._add(self._loop.time(), "dtmf", digit)
            await asyncio.sleep(DTMF_GAP_S)

    async def _expect(self, text: str) -> None:
        def heard_it() -> bool:
            return heard_contains(self._window_text(), text)

        def hopeless() -> bool:  # the call is over and every utterance is transcribed
            return self._call_over() and not self._transcribing and not self._hearing.speaking

        await self._until(lambda: heard_it() or hopeless(), self.step_timeout_s)
        ok = heard_it()
        self.expects.append({"text": text, "ok": ok, "heard": self._window_text()})
        self._add(self._loop.time(), "expect", text, ok=ok)
        if not ok:
            self._fail("expect_failed", f"expected to hear {text!r}; heard {self._window_text()!r}")

    def _window_text(self) -> str:
        return " ".join(h.text for h in self._heard[self._mark:] if h.text)

    async def _wait_for(self, event: str) -> None:
        checks: dict[str, Callable[[], bool]] = {
            "speech": lambda: len(self._heard) > self._mark and not self._hearing.speaking,
            "refer": lambda: bool(self.refer_to),
            "bye": lambda: self._call_over(),
        }
        done = await self._until(checks[event], self.step_timeout_s)
        self._add(self._loop.time(), "wait", event, ok=done)
        if not done:
            self._fail("wait_timeout", f"waited {self.step_timeout_s:g} s for {event}; it did not come")

    def _call_over(self) -> bool:
        return self._call is None or self._call.ended.is_set()

    async def _until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = self._loop.time() + timeout
        while not predicate():
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                # re-check at least every POLL_S: some predicates depend on the clock alone
                await asyncio.wait_for(self._changed.wait(), min(remaining, POLL_S))
            except TimeoutError:
                pass
        return True

    # --- report --------------------------------------------------------------------------------
    def _fail(self, kind: str, message: str) -> None:
        self.failures.append(message)
        self.failure_kinds.append(kind)

    def _add(self, at: float, kind: str, text: str = "", **data: Any) -> None:
        self.entries.append(Entry(round(at - self._t0, 3), kind, text, data))

    def report(self) -> dict[str, Any]:
        entries = sorted(self.entries, key=lambda e: e.at)
        return {
            "uri": self.uri, "connected": self.connected, "ok": not self.failures and self.connected,
            "failures": list(self.failures), "failure_kinds": list(self.failure_kinds),
            "ended_by": self.ended_by, "refer_to": self.refer_to,
            "setup_ms": None if self.setup_ms is None else round(self.setup_ms, 1),
            "turn_latencies_ms": [round(x, 1) for x in self.turn_latencies_ms],
            "barge_in_ms": [round(x, 1) for x in self.barge_in_ms],
            "heard": [h.text or "" for h in self._heard], "expects": self.expects,
            "timeline": [dataclasses.asdict(e) for e in entries],
            "rtp": self._call.stats() if self._call is not None else {},
        }


def format_report(report: dict[str, Any]) -> str:
    """The timeline as text, one line per entry, then a summary."""
    lines = [f"call {report['uri']}"]
    for entry in report["timeline"]:
        text = entry["text"]
        if entry["kind"] in ("heard", "said"):
            text = f'"{text}"'
        extra = ", ".join(f"{k} {v}" for k, v in entry["data"].items() if k not in ("last_voice",))
        lines.append(f"  {entry['at']:8.3f}  {entry['kind']:<9} {text}" + (f"  ({extra})" if extra else ""))
    turns = report["turn_latencies_ms"]
    if turns:
        lines.append("  turn latency ms: " + ", ".join(f"{t:.0f}" for t in turns))
    if report["barge_in_ms"]:
        lines.append("  barge-in reaction ms: " + ", ".join(f"{t:.0f}" for t in report["barge_in_ms"]))
    if report["refer_to"]:
        lines.append(f"  transferred to {report['refer_to']}")
    for failure in report["failures"]:
        lines.append(f"  FAILED: {failure}")
    lines.append("  result: " + ("ok" if report["ok"] else "FAILED"))
    return "\n".join(lines)
