"""``dialtone dialog test``: conversation test cases in YAML, run offline on a virtual clock.

A test file names its dialog (relative to the test file) and lists ``cases``; each case is a list
of ``steps``: caller events (``speech``, ``dtmf``, ``silence`` to advance the clock, ``played`` to
finish the prompts, ``interrupt`` to talk over one, ``hangup``), and ``expect`` checks on what
happened since the previous check. Backend calls are answered from ``backends`` (``service.method``
-> a result or an error kind), at once or ``after:`` a delay on the test's clock. No network, no wall
clock: a case runs in milliseconds.
"""

from __future__ import annotations

import dataclasses
import difflib
from datetime import datetime
from pathlib import Path
from typing import Any

from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.durations import parse_duration
from dialtone.conversation_runtime.core.errors import DialogError, DialogLoadError
from dialtone.conversation_runtime.core.loader import load_dialog
from dialtone.conversation_runtime.core.located import Loc, YamlSyntaxError, load_located
from dialtone.conversation_runtime.core.session import Session
from dialtone.integration_gateway.errors import ErrorKind

ERROR_KINDS = tuple(ErrorKind)
ANSWER_FIELDS = ("status", "body", "ok", "error", "message", "after")
STEPS = ("speech", "dtmf", "silence", "wait", "played", "interrupt", "hangup", "backend", "transfer_failed", "expect")
MAX_STEPS_PER_SILENCE = 1000


class CaseFailure(Exception):
    pass


@dataclasses.dataclass
class CaseResult:
    name: str
    passed: bool
    message: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)   # conditions that could not be computed


@dataclasses.dataclass
class Coverage:
    dialog: m.Dialog
    states: set[str] = dataclasses.field(default_factory=set)
    transitions: set[int] = dataclasses.field(default_factory=set)   # id() of fired Transitions

    @property
    def state_percent(self) -> float:
        return 100.0 * len(self.states) / max(1, len(self.dialog.states))

    @property
    def transition_percent(self) -> float:
        return 100.0 * len(self.transitions) / max(1, len(self.dialog.all_transitions()))

    def report(self) -> list[str]:
        all_transitions = self.dialog.all_transitions()
        lines = [f"coverage {self.dialog.name}: states {len(self.states)}/{len(self.dialog.states)} "
                 f"({self.state_percent:.0f}%), transitions {len(self.transitions)}/{len(all_transitions)} "
                 f"({self.transition_percent:.0f}%)"]
        lines += [f"  state never entered: {name}" for name in self.dialog.states if name not in self.states]
        lines += [f"  transition never taken: {t.label} (line {t.line})" for t in all_transitions
                  if id(t) not in self.transitions]
        return lines


@dataclasses.dataclass
class TestFileResult:
    file: str
    dialog: m.Dialog
    cases: list[CaseResult]
    coverage: Coverage


def is_test_file(path: str | Path) -> bool:
    """A conversation test file (``dialog:`` naming a file and ``cases:``), not a dialog."""
    try:
        root, _ = load_located(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return False
    return root is not None and isinstance(root.value, dict) and "cases" in root.value \
        and isinstance(root.value.get("dialog"), Loc) and isinstance(root.value["dialog"].value, str)


def run_test_file(path: str | Path) -> TestFileResult:
    """Run every case in ``path``; raises DialogLoadError when the test file or its dialog is bad."""
    file = str(path)
    try:
        root, _ = load_located(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DialogLoadError([DialogError(file, 1, 1, "unreadable", f"cannot read the file: {exc}")]) from exc
    except YamlSyntaxError as exc:
        raise DialogLoadError([DialogError(file, exc.line, exc.col, "yaml_syntax", exc.message)]) from exc
    if root is None or not isinstance(root.value, dict) or "dialog" not in root.value or "cases" not in root.value:
        raise DialogLoadError([DialogError(file, 1, 1, "missing_key", "a test file needs 'dialog' and 'cases'")])
    dialog = load_dialog(Path(path).parent / str(root.value["dialog"].value))
    defaults = root.value.get("backends")
    start = _start_time(file, root.value.get("now"))
    coverage = Coverage(dialog)
    results = []
    cases = root.value["cases"]
    if not isinstance(cases.value, list):
        raise DialogLoadError([DialogError(file, cases.line, cases.col, "wrong_type", "cases must be a list")])
    for index, case in enumerate(cases.value):
        results.append(_run_case(file, dialog, case, defaults, coverage, index, start))
    return TestFileResult(file, dialog, results, coverage)


def _start_time(file: str, loc: Loc | None) -> float:
    """``now:`` (ISO 8601 with its offset): when every case's call starts, so that "tomorrow" and "next
    tuesday" have one meaning; without it, 1970-01-01 UTC."""
    if loc is None:
        return 0.0
    value = loc.value
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DialogLoadError([DialogError(file, loc.line, loc.col, "bad_value",
                                           f"now must be an ISO 8601 time with its offset, such as "
                                           f"2026-12-03T10:00:00-05:00; got {value!r}")])
    return when.timestamp()


class _CaseRun:
    def __init__(self, file: str, dialog: m.Dialog, backends: dict[str, Any], coverage: Coverage) -> None:
        self.file = file
        self.dialog = dialog
        self.backends = backends
        self.coverage = coverage
        self.now = 0.0
        self.seq = 0
        self.session: Session | None = None
        self.recent: list[ev.Action] = []
        self.delayed: list[tuple[float, ev.BackendResult]] = []   # backend answers with `after:`
        self.notes: list[str] = []

    def record(self, outcome: engine.Outcome) -> None:
        self.session = outcome.session
        self.notes += [error for error in outcome.errors if error not in self.notes]
        self.recent += outcome.actions
        for transition in outcome.fired:
            self.coverage.transitions.add(id(transition))
        for action in outcome.actions:
            if action.kind == "state_changed":
                self.coverage.states.add(action.data["state"])
        for action in outcome.actions:
            if action.kind == "call":
                after = self.answer_delay(action)
                if after:
                    self.delayed.append((self.now + after, self.backend_result(action)))
                else:
                    self.send(self.backend_result(action))

    def answer_delay(self, action: ev.Action) -> float:
        spec = self.backends.get(f"{action.data['service']}.{action.data['method']}")
        if not isinstance(spec, dict) or "after" not in spec:
            return 0.0
        try:
            return parse_duration(spec["after"])
        except ValueError as exc:
            raise CaseFailure(f"backends: {action.data['service']}.{action.data['method']}: after: {exc}") from exc

    def backend_result(self, action: ev.Action) -> ev.BackendResult:
        name = f"{action.data['service']}.{action.data['method']}"
        if name not in self.backends:
            raise CaseFailure(f"the dialog called {name} but the case gives no result for it (add backends:)")
        spec = self.backends[name]
        if not isinstance(spec, dict):
            raise CaseFailure(f"backends: {name} must be a mapping such as {{status: 200, body: ...}} or "
                              "{error: timeout}")
        unknown = sorted(set(spec) - set(ANSWER_FIELDS))
        if unknown:
            hint = _did_you_mean(unknown[0], ANSWER_FIELDS)
            raise CaseFailure(f"backends: {name}: unknown field {unknown[0]!r}{hint}; "
                              f"fields: {', '.join(ANSWER_FIELDS)}")
        error = spec.get("error")
        if error is not None and error not in ERROR_KINDS:
            raise CaseFailure(f"backends: {name}: unknown error kind {error!r}; kinds: {', '.join(ERROR_KINDS)}")
        if error is not None:
            return ev.BackendResult(action.key, False, int(spec.get("status", 0)), spec.get("body"), str(error),
                                    str(spec.get("message", error)))
        status = int(spec.get("status", 200))
        ok = bool(spec.get("ok", 200 <= status < 300))
        return ev.BackendResult(action.key, ok, status, spec.get("body"), "" if ok else ErrorKind.HTTP_ERROR,
                                "" if ok else f"HTTP {status}")

    def send(self, event: ev.Event) -> None:
        assert self.session is not None
        if self.session.ended:
            raise CaseFailure(f"the call had already ended ({self.session.end_reason}) before {event}")
        self.seq += 1
        self.record(engine.handle_traced(self.dialog, self.session, event, self.now, self.seq))

    def advance(self, seconds: float, prompts_finish: bool) -> None:
        """``silence``: the prompts finish playing, then the clock moves on with nothing said.

        ``wait``: the clock moves on and nothing is reported at all (not even the prompts' end).
        """
        assert self.session is not None
        if prompts_finish and self.session.playing and not self.session.ended:
            self.send(ev.PlaybackFinished(self.session.playing[-1], False, 1000))
        target = self.now + seconds
        for _ in range(MAX_STEPS_PER_SILENCE):
            due = self.session.next_deadline()
            answer = min(self.delayed, key=lambda item: item[0]) if self.delayed else None
            if answer is not None and answer[0] <= target and (due is None or answer[0] <= due):
                self.delayed.remove(answer)
                self.now = answer[0]
                if not self.session.ended:
                    self.send(answer[1])
                continue
            if due is None or due > target or self.session.ended:
                break
            self.now = due
            self.record(engine.handle_traced(self.dialog, self.session, ev.Tick(), self.now))
        self.now = target

    def interrupt(self, text: str) -> None:
        """``interrupt``: the caller talks over the prompt playing. A prompt that allows barge-in is cut
        (played_ms 500) and the speech reaches the dialog; one that does not plays on, and the speech is
        dropped, as the speech gateway does."""
        assert self.session is not None
        if not self.session.playing:
            raise CaseFailure("'interrupt' but no prompt is playing")
        key = self.session.playing[-1]
        prompt = next((a for a in self.session.outbox if a["key"] == key), None)
        mode = ((prompt or {}).get("data", {}).get("barge_in") or {}).get("mode", "on")
        if mode in ("off", "dtmf_only"):
            return
        self.send(ev.PlaybackFinished(key, True, 500))
        self.send(ev.SpeechStarted())
        self.send(ev.SpeechEnded())
        self.send(ev.SpeechResult(text, 0.9))

    def finish_prompts(self) -> None:
        """``played``: the prompts still playing finish (in order)."""
        assert self.session is not None
        if not self.session.playing:
            raise CaseFailure("'played' but no prompt is playing")
        self.send(ev.PlaybackFinished(self.session.playing[-1], False, 1000))

    def check(self, expect: dict[str, Any]) -> None:
        assert self.session is not None
        s = self.session
        for key, want in expect.items():
            if key == "state" and s.state != want:
                raise CaseFailure(f"expected state {want!r}, the dialog is in {s.state!r}")
            if key == "said":
                said = [a.data["text"] for a in self.recent if a.kind == "say"]
                for text in [want] if isinstance(want, str) else list(want):
                    if not any(str(text) in line for line in said):
                        raise CaseFailure(f"expected something said containing {text!r}; said: {said}")
            if key == "transfer":
                targets = [a.data["target_uri"] for a in self.recent if a.kind == "transfer"]
                if want not in targets:
                    raise CaseFailure(f"expected a transfer to {want!r}; transfers: {targets}")
            if key == "hangup":
                reasons = [a.data["reason"] for a in self.recent if a.kind == "hangup"]
                if not reasons or (want is not True and want not in reasons):
                    raise CaseFailure(f"expected a hangup ({want}); hangups: {reasons}")
            if key == "no_hangup" and any(a.kind == "hangup" for a in self.recent):
                raise CaseFailure("expected no hangup")
            if key == "called":
                for name, payload in want.items():
                    calls = [a.data for a in self.recent if a.kind == "call"
                             and f"{a.data['service']}.{a.data['method']}" == name]
                    if not calls:
                        raise CaseFailure(f"expected a call to {name}")
                    if payload and not any(_subset(payload, c["payload"]) for c in calls):
                        got = [c["payload"] for c in calls]
                        raise CaseFailure(f"expected {name} with payload {payload}; got {got}")
            if key == "variables":
                for name, value in want.items():
                    if s.variables.get(name) != value:
                        raise CaseFailure(f"expected variable {name} == {value!r}, it is {s.variables.get(name)!r}")
            if key == "ended" and s.ended != bool(want):
                raise CaseFailure(f"expected ended == {want}, it is {s.ended}")
        self.recent = []


_EXPECT_KEYS = {"state", "said", "transfer", "hangup", "no_hangup", "called", "variables", "ended"}


def _run_case(file: str, dialog: m.Dialog, case: Loc, defaults: Loc | None, coverage: Coverage,
              index: int, start: float = 0.0) -> CaseResult:
    raw = case.plain() if isinstance(case.value, dict) else {}
    name = str(raw.get("name", f"case {index + 1}"))
    backends = dict(defaults.plain() if defaults else {})
    backends.update(raw.get("backends") or {})
    run = _CaseRun(file, dialog, backends, coverage)
    run.now = start
    call = raw.get("call") or {}
    info = ev.CallInfo(caller=str(call.get("caller", "sip:caller@127.0.0.1")),
                       callee=str(call.get("callee", "1000")),
                       headers=tuple((str(k), str(v)) for k, v in (call.get("headers") or {}).items()))
    steps = case.value.get("steps") if isinstance(case.value, dict) else None
    if steps is None or not isinstance(steps.value, list):
        return CaseResult(name, False, f"{file}:{case.line}:{case.col}: a case needs a list of steps")
    try:
        run.record(engine.start_traced(dialog, "test", info, start))
        for step in steps.value:
            try:
                _run_step(run, step.plain())
            except CaseFailure as exc:
                raise CaseFailure(f"{file}:{step.line}:{step.col}: {exc}") from exc
    except CaseFailure as exc:
        return CaseResult(name, False, str(exc), run.notes)
    return CaseResult(name, True, "", run.notes)


def _run_step(run: _CaseRun, step: Any) -> None:
    if step == "hangup":
        run.send(ev.CallerHungUp("caller"))
        return
    if step == "played":
        run.finish_prompts()
        return
    if not isinstance(step, dict) or len(step) != 1:
        raise CaseFailure(f"a step is one of {', '.join(STEPS)}; got {step!r}")
    ((kind, value),) = step.items()
    if kind == "speech":
        run.send(ev.SpeechStarted())
        run.send(ev.SpeechEnded())
        run.send(ev.SpeechResult(str(value), 0.9))
    elif kind == "dtmf":
        for digit in str(value):
            run.send(ev.DtmfPressed(digit))
    elif kind in ("silence", "wait"):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise CaseFailure(str(exc)) from exc
        run.advance(seconds, prompts_finish=kind == "silence")
    elif kind == "backend":
        if not isinstance(value, dict):
            raise CaseFailure("backend: expects {service.method: result}")
        run.backends.update(value)
    elif kind == "transfer_failed":
        run.send(ev.TransferResult(str(value), False, 486))
    elif kind == "interrupt":
        run.interrupt(str(value))
    elif kind == "expect":
        if not isinstance(value, dict) or not set(value) <= _EXPECT_KEYS:
            raise CaseFailure(f"expect takes {', '.join(sorted(_EXPECT_KEYS))}")
        run.check(value)
    else:
        raise CaseFailure(f"unknown step {kind!r}{_did_you_mean(kind, STEPS)}; steps: {', '.join(STEPS)}")


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    return bool(want == got or str(want) == str(got))
