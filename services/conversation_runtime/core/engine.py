"""The dialog FSM: ``handle(session, event, now) -> (session', actions)``.

Deterministic: the result depends only on the dialog, the session, the event and ``now``; the
engine never reads the clock or randomness. Timers are deadlines in the session
(``session.next_deadline()``); due timers fire, in deadline order and at their own deadline,
before the event that reveals them, so replaying an event log gives the same actions.

A call whose stream closed without its end (the caller's side vanished, or the replica holding
the stream died) is *parked* (``park``): no timer fires and nothing is sent while no one can
hear it. The first event of a resumed stream unparks it (``unpark``; timers that came due
meanwhile then fire, at their own deadlines). A parked call that no stream resumes ends at
``parked_until`` as ``stream_lost``: the dialog's ``hangup`` transition runs with that reason.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dialtone.common.limits import json_depth_ok
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.expressions import EvaluationError, Template
from dialtone.conversation_runtime.core.session import OUTBOX_LIMIT, Session
from dialtone.language import extract, hints_for, to_json

MAX_TIMER_FIRINGS = 64  # per handle(); a bound, far above what any dialog needs
MAX_SKIPS = 16          # collect states skipped (already filled) per handle()
STREAM_LOST = "stream_lost"
# A value `set` stores (every save writes the whole session): `set: {s: s + s}` on each key press
# would otherwise double the session at every event.
MAX_VARIABLE_CHARS = 64 * 1024   # as JSON
MAX_VARIABLE_DEPTH = 32


@dataclasses.dataclass
class Outcome:
    session: Session
    actions: list[ev.Action]
    fired: list[m.Transition]
    # conditions that could not be computed ("file:line: why"); each counted false, the next transition tried
    errors: list[str] = dataclasses.field(default_factory=list)


def start(dialog: m.Dialog, session_id: str, call: ev.CallInfo, now: float) -> tuple[Session, list[ev.Action]]:
    """A new session in the dialog's initial state, with its on_enter actions."""
    outcome = start_traced(dialog, session_id, call, now)
    return outcome.session, outcome.actions


def start_traced(dialog: m.Dialog, session_id: str, call: ev.CallInfo, now: float) -> Outcome:
    session = Session(session_id=session_id, dialog=dialog.name, version=dialog.version,
                      variables=dict(dialog.variables), call=call.as_variables(), started_at=now, step=1)
    run = _Run(dialog, session, now)
    if dialog.max_duration:
        session.timers["max_duration"] = now + dialog.max_duration
    run.enter(dialog.initial)
    run.touch()
    return Outcome(session, run.actions, run.fired, run.errors)


def handle(dialog: m.Dialog, session: Session, event: ev.Event, now: float,
           seq: int = 0) -> tuple[Session, list[ev.Action]]:
    outcome = handle_traced(dialog, session, event, now, seq)
    return outcome.session, outcome.actions


def handle_traced(dialog: m.Dialog, session: Session, event: ev.Event, now: float, seq: int = 0) -> Outcome:
    """Apply ``event`` (sequence ``seq``; 0 = unnumbered, as timer ticks are) at time ``now``.

    An event whose ``seq`` is not after ``session.event_seq`` was applied already (a resumed
    stream re-sending it) and changes nothing. An ended session changes no more.
    """
    if session.ended or (seq and seq <= session.event_seq):
        return Outcome(session, [], [])
    if session.parked_until and isinstance(event, ev.Tick):
        return _end_parked(dialog, session, now) if now >= session.parked_until else Outcome(session, [], [])
    due = session.next_deadline()
    if isinstance(event, ev.Tick) and (due is None or due > now):
        return Outcome(session, [], [])
    new = session.copy()
    new.parked_until = 0.0  # an event: a stream carries the call again
    if seq:
        new.event_seq = seq
    new.step += 1
    run = _Run(dialog, new, now)
    run.fire_due_timers()
    if not isinstance(event, ev.Tick) and not new.ended:
        run.now = now
        run.dispatch(event)
        run.touch()
    return Outcome(new, run.actions, run.fired, run.errors)


def preview(dialog: m.Dialog, session: Session, speech: ev.ProvisionalSpeech, now: float) -> list[str]:
    """What the dialog would say at once if the caller's turn ended with these words: the texts of the Say
    actions of the transition it would take (before any backend answer). Nothing changes: the session is
    not touched (``handle_traced`` works on a copy) and no action is issued."""
    if session.ended or session.parked_until:
        return []
    outcome = handle_traced(dialog, session, ev.SpeechResult(speech.transcript, speech.confidence), now)
    return [action.data["text"] for action in outcome.actions if action.kind == "say"]


def fixed_prompt_openings(dialog: m.Dialog, limit: int) -> list[str]:
    """The fixed words that open the dialog's prompt templates before their first value ("One moment
    while I look up order" of "One moment while I look up order ${order_id}."), at most ``limit``, in
    the order the dialog declares them. Fixed prompts (no value) are left out: they repeat word for word,
    so the speech gateway's cache serves them from their second use on."""
    out: dict[str, None] = {}
    for action in _all_actions(dialog):
        if isinstance(action, m.Say) and len(action.text.parts) > 1 and isinstance(action.text.parts[0], str):
            opening = action.text.parts[0].strip()
            if len(opening.split()) >= 2:
                out.setdefault(opening)
                if len(out) >= limit:
                    break
    return list(out)


def _all_actions(dialog: m.Dialog) -> list[m.Action]:
    actions: list[m.Action] = []
    for state in dialog.states.values():
        actions += state.on_enter
        collect = state.collect
        if collect is not None:
            actions += [m.Say(collect.prompt), *(m.Say(r) for r in collect.reprompts)]
            if collect.invalid is not None:
                actions.append(m.Say(collect.invalid))
            if collect.confirm is not None:
                actions.append(m.Say(collect.confirm.prompt))
    for transition in dialog.all_transitions():
        actions += transition.actions
    return actions


def park(session: Session, now: float, orphan_timeout: float) -> Session:
    """The call's stream closed without its end: fire nothing until a stream resumes it, and end it
    ``orphan_timeout`` from ``now`` (or at the dialog's ``max_duration``, if sooner)."""
    new = session.copy()
    new.step += 1
    until = now + orphan_timeout
    if "max_duration" in session.timers:
        until = min(until, session.timers["max_duration"])
    new.parked_until = until
    return new


def unpark(session: Session) -> Session:
    """A stream resumed the parked call: its timers run again."""
    new = session.copy()
    new.step += 1
    new.parked_until = 0.0
    return new


def _end_parked(dialog: m.Dialog, session: Session, now: float) -> Outcome:
    """No stream came back: the call ends as stream_lost, and no timer fires (no one would hear it)."""
    new = session.copy()
    new.step += 1
    new.parked_until = 0.0
    new.timers.clear()
    run = _Run(dialog, new, now)
    run.hang_up(STREAM_LOST, STREAM_LOST)
    run.emit("hangup", {"reason": STREAM_LOST})  # what a stream resuming too late is told
    return Outcome(new, run.actions, run.fired)


class _Run:
    """One handle() call: the session it changes and the actions it collects."""

    def __init__(self, dialog: m.Dialog, session: Session, now: float) -> None:
        self.dialog = dialog
        self.session = session
        self.now = now
        self.actions: list[ev.Action] = []
        self.fired: list[m.Transition] = []
        self.errors: list[str] = []
        self.skips = 0
        self._now_view: tuple[float, dict[str, Any]] | None = None
        self.index = 0

    # -- timers ----------------------------------------------------------------------------
    def fire_due_timers(self) -> None:
        s = self.session
        for _ in range(MAX_TIMER_FIRINGS):
            if s.ended or not s.timers:
                return
            name, deadline = min(s.timers.items(), key=lambda item: (item[1], item[0]))
            if deadline > self.now:
                return
            del s.timers[name]
            saved_now, self.now = self.now, deadline  # a timer acts at its own deadline
            self.fire(name)
            self.now = saved_now

    def fire(self, name: str) -> None:
        s = self.session
        if name.startswith("timeout:"):
            after = float(name.split(":", 1)[1])
            self.run_event("timeout", {}, lambda t: t.after == after)
        elif name == "no_input":
            if s.collect_phase:
                self.collect_miss(self.dialog.states[s.state], "no_input")
                return
            s.no_input_count += 1
            self.run_event("no_input", {"count": s.no_input_count}, count=s.no_input_count)
        elif name == "inter_digit":
            self.finish_digits()
        elif name == "max_duration":
            if not self.run_event("max_duration", {}):
                self.emit_hangup("max_duration")
        elif name == "dead_air":
            waiting = any(n != "max_duration" for n in s.timers) or s.pending_calls or s.playing
            if waiting:
                self.arm("dead_air", self.dialog.dead_air)
            elif not self.run_event("dead_air", {}):
                self.emit_hangup("dead_air")

    def arm(self, name: str, seconds: float | None) -> None:
        if seconds:
            self.session.timers[name] = self.now + seconds

    def touch(self) -> None:
        """Something happened: restart the dead-air watchdog."""
        if self.dialog.dead_air and not self.session.ended:
            self.arm("dead_air", self.dialog.dead_air)

    # -- events ----------------------------------------------------------------------------
    def dispatch(self, event: ev.Event) -> None:
        s = self.session
        state = self.dialog.states[s.state]
        if isinstance(event, ev.SpeechStarted):
            s.timers.pop("no_input", None)  # the caller is talking; a transcript will follow
        elif isinstance(event, ev.SpeechEnded):
            self.arm_no_input(state)  # if the speech comes to nothing, silence counts again
        elif isinstance(event, ev.SpeechResult):
            if state.input.mode != "dtmf":
                self.speech(state, event.transcript, event.confidence)
        elif isinstance(event, ev.DtmfPressed):
            if state.input.mode != "speech":
                self.dtmf(state, event.digit)
        elif isinstance(event, ev.BackendResult):
            call = s.pending_calls.pop(event.key, None)
            if call is None:
                return  # an answer to a call this session no longer waits for (already answered)
            result = {"ok": event.ok, "status": event.status, "body": event.body, "service": call["service"],
                      "method": call["method"],
                      "error": {"kind": event.error_kind, "message": event.error_message} if not event.ok
                      else None}
            self.run_event("backend.result", {"result": result})
        elif isinstance(event, ev.PlaybackStarted):
            return
        elif isinstance(event, ev.PlaybackFinished):
            if event.utterance_id not in s.playing:
                return  # not a prompt still playing (reported twice, or dropped by a barge-in): nothing new
            if event.interrupted:
                s.playing.clear()  # a barge-in drops everything queued behind the prompt too
            else:
                del s.playing[: s.playing.index(event.utterance_id) + 1]  # prompts play in order
                if s.playing:
                    # an earlier prompt (e.g. the previous state's "one moment", overtaken by a fast
                    # backend answer) ended while later prompts still play: not the end of playback
                    return
            self.arm_no_input(state)  # silence counts from the end of the last prompt
            self.run_event("playback.finished", {"playback": {
                "utterance_id": event.utterance_id, "interrupted": event.interrupted,
                "played_ms": event.played_ms}})
        elif isinstance(event, ev.TransferResult):
            # A transfer that worked hands the caller over: the dialog's transfer.result transition may
            # still record it (call, set), then the session ends ("transferred") and no timer fires.
            # One that failed is the dialog's to handle; without a transition for it the call ends.
            handled = self.run_event("transfer.result", {"transfer": {
                "target_uri": event.target_uri, "ok": event.ok, "sip_status": event.sip_status}})
            if not s.ended and event.ok:
                self.end("transferred")
            elif not s.ended and not handled:
                self.emit_hangup("transfer_failed")
        elif isinstance(event, ev.CallerHungUp):
            self.hang_up(event.reason, f"caller:{event.reason}")

    def hang_up(self, reason: str, end_reason: str) -> None:
        """The call is over on the caller's side: the dialog's hangup transition, then the end."""
        transition = self.select("hangup", {"reason": reason})
        if transition is not None:
            self.fired.append(transition)
            self.run_actions(transition.actions, {"reason": reason})
        self.end(end_reason)

    def speech(self, state: m.State, transcript: str, confidence: float) -> None:
        """A slot's value first, then an intent the state listens for, then speech transitions."""
        fields = {"transcript": transcript, "confidence": confidence}
        if self.session.collect_phase and self.collect_answer(state, transcript, ""):
            return
        listened = self.dialog.listened_intents(state)
        if listened and self.dialog.matcher is not None:
            match = self.dialog.matcher.match(transcript, among=listened)
            if match.intent is not None:
                intent_fields = {"intent": match.intent, "confidence": match.confidence, "transcript": transcript}
                transition = self.select("intent", intent_fields, lambda t: t.intent == match.intent)
                if transition is not None:
                    self.reset_counters()
                    self.take(transition, intent_fields)
                    return
        self.input_event("speech", fields)

    def dtmf(self, state: m.State, digit: str) -> None:
        s = self.session
        collect = state.input.digits
        if s.collect_phase == "confirm" or (s.collect_phase and collect is None):
            if self.collect_answer(state, "", digit):
                return
            collect = None
        if collect is None:
            self.input_event("dtmf", {"digit": digit})
            return
        if not s.digit_buffer:
            transition = self.select("dtmf", {"digit": digit})
            if transition is not None:  # a menu key (such as 0 for an agent) before any digits
                self.reset_counters()
                self.take(transition, {"digit": digit})
                return
        if collect.finish_key is not None and digit == collect.finish_key:
            self.finish_digits()
            return
        s.digit_buffer += digit
        if collect.max_digits and len(s.digit_buffer) >= collect.max_digits:
            self.finish_digits()
        else:
            self.arm("inter_digit", collect.inter_digit_timeout)

    def finish_digits(self) -> None:
        s = self.session
        digits, s.digit_buffer = s.digit_buffer, ""
        s.timers.pop("inter_digit", None)
        self.input_event("digits", {"digits": digits})

    def input_event(self, event: str, fields: dict[str, Any]) -> None:
        """Speech or keys: a matching transition, else the no_match escalation."""
        s = self.session
        state = self.dialog.states[s.state]
        if event == "digits" and s.collect_phase == "ask" and self.collect_answer(state, "", fields["digits"]):
            return
        transition = self.select(event, fields)
        if transition is not None:
            self.reset_counters()
            self.take(transition, fields)
            return
        if not state.expects_input:
            return  # input nobody asked for (during a goodbye, say) is ignored
        if s.collect_phase:
            self.collect_miss(state, "no_match")
            return
        s.no_match_count += 1
        self.run_event("no_match", {"count": s.no_match_count}, count=s.no_match_count)

    # -- collect: one slot, asked for, checked, confirmed ----------------------------------
    def collect_answer(self, state: m.State, text: str, keys: str) -> bool:
        """The caller's answer to the slot's question (or to its confirmation); False when it holds
        none, so intents and transitions get their turn."""
        s, collect = self.session, state.collect
        assert collect is not None
        if s.collect_phase == "confirm":
            yes = extract("yes_no", text, dtmf=keys)
            if yes is None:
                return False
            if yes:
                self.fill(state, s.collect_value)
            else:
                s.collect_phase, s.collect_value = "ask", None
                retry = collect.confirm.retry if collect.confirm and collect.confirm.retry else collect.prompt
                self.say(state, retry, {})
            return True
        value = extract(collect.entity, text, dtmf=keys, constraints=collect.constraints,
                        now=datetime.fromtimestamp(self.now, UTC), tz=self.dialog.time_zone)
        if value is None:
            return False
        value = to_json(value)
        self.reset_counters()
        for slot, entity, constraints in collect.also:   # what else the same answer says
            extra = extract(entity, text, constraints=constraints, now=datetime.fromtimestamp(self.now, UTC),
                            tz=self.dialog.time_zone) if text else None
            if extra is not None:
                s.variables[slot] = to_json(extra)
        if collect.validate is not None:
            try:
                valid = collect.validate.test(self.activation({collect.slot: value}))
            except EvaluationError:
                valid = False
            if not valid:
                self.collect_miss(state, "no_match", collect.invalid, {collect.slot: value})
                return True
        if collect.confirm is not None:
            s.collect_phase, s.collect_value = "confirm", value
            self.expect(state, "yes_no", {})
            self.say(state, collect.confirm.prompt, {collect.slot: value})
            return True
        self.fill(state, value)
        return True

    def fill(self, state: m.State, value: Any) -> None:
        s, collect = self.session, state.collect
        assert collect is not None
        s.variables[collect.slot] = value
        s.collect_phase, s.collect_value, s.collect_misses = "", None, 0
        self.run_event("filled", {"value": value})

    def collect_miss(self, state: m.State, kind: str, said: Template | None = None,
                     fields: dict[str, Any] | None = None) -> None:
        """No value (no_match), no answer (no_input) or an invalid one: ask again, with the next
        reprompt, until max_attempts; then the state's ``failed`` transition, or else the dialog's
        ``kind`` escalation."""
        s, collect = self.session, state.collect
        assert collect is not None
        s.collect_misses += 1
        if s.collect_misses >= collect.max_attempts:
            misses = s.collect_misses
            s.collect_phase, s.collect_value, s.collect_misses = "", None, 0
            if not self.run_event("failed", {"count": misses}):
                counter = "no_input_count" if kind == "no_input" else "no_match_count"
                setattr(s, counter, getattr(s, counter) + 1)
                self.run_event(kind, {"count": getattr(s, counter)}, count=getattr(s, counter))
            return
        if said is not None:
            self.say(state, said, fields or {})
        if s.collect_phase == "confirm" and collect.confirm is not None:
            self.say(state, collect.confirm.prompt, {collect.slot: s.collect_value})
        elif collect.reprompts:
            self.say(state, collect.reprompts[min(s.collect_misses, len(collect.reprompts)) - 1], {})
        else:
            self.say(state, collect.prompt, {})

    def say(self, state: m.State, text: Template, fields: dict[str, Any]) -> None:
        self.run_actions((m.Say(text),), fields)

    def expect(self, state: m.State, entity: str, constraints: dict[str, Any]) -> None:
        """Tell the speech gateway what the caller is now expected to say (it ends the turn on it)."""
        self.emit("state_changed", {"dialog": self.dialog.name, "state": state.name, "expect": {
            "entity": entity, "constraints": constraints, "hints": hints_for(entities=[entity]).prompt}})

    def reset_counters(self) -> None:
        self.session.no_input_count = 0
        self.session.no_match_count = 0

    def run_event(self, event: str, fields: dict[str, Any], extra: Any = None, count: int | None = None) -> bool:
        transition = self.select(event, fields, extra, count)
        if transition is None:
            return False
        self.take(transition, fields)
        return True

    def select(self, event: str, fields: dict[str, Any], extra: Any = None,
               count: int | None = None) -> m.Transition | None:
        """The first transition for ``event`` whose condition holds: the state's, then the dialog's.

        For no_input / no_match, a transition for this exact ``count`` wins over one without.
        """
        state = self.dialog.states[self.session.state]
        activation = self.activation(fields)
        for level in self.dialog.candidates(state, event):
            options = [t for t in level if extra is None or extra(t)]
            if count is not None:
                options = [t for t in options if t.count == count] + [t for t in options if t.count is None]
            for transition in options:
                if transition.condition is None:
                    return transition
                holds, error = transition.condition.check(activation)
                if error:
                    self.errors.append(f"{self.dialog.source}:{transition.line}: {event} condition: {error}")
                if holds:
                    return transition
        return None

    def listens_for_no_input(self, state: m.State) -> bool:
        if state.collect is not None and self.session.collect_phase:
            return True  # silence is a miss: the slot's reprompt
        return state.expects_input and any(level for level in self.dialog.candidates(state, "no_input"))

    def arm_no_input(self, state: m.State) -> None:
        """Silence is timed once the prompts have finished playing (not while they play)."""
        if state.input.no_input and not self.session.playing and self.listens_for_no_input(state):
            self.arm("no_input", state.input.no_input)

    # -- transitions and actions -----------------------------------------------------------
    def take(self, transition: m.Transition, fields: dict[str, Any]) -> None:
        self.fired.append(transition)
        self.run_actions(transition.actions, fields)
        if transition.returns is not None and not self.session.ended:
            self.return_from_flow(transition, fields)
            return
        if transition.target is not None and not self.session.ended:
            self.enter(self.session.state if transition.target == m.CURRENT_STATE else transition.target)

    def return_from_flow(self, transition: m.Transition, fields: dict[str, Any]) -> None:
        """The flow ends: its value goes to the state that ran it, as that state's ``returned`` event
        (the state is not entered again)."""
        s = self.session
        caller = self.dialog.states[s.state].caller
        holds, error = True, ""
        try:
            value = transition.returns.evaluate(self.activation(fields))
        except EvaluationError as exc:
            value, holds, error = None, False, str(exc)
        if not holds:
            self.errors.append(f"{self.dialog.source}:{transition.line}: return: {error} (returned null)")
        for timer in [t for t in s.timers if t.startswith("timeout:") or t in ("no_input", "inter_digit")]:
            del s.timers[timer]
        s.state, s.digit_buffer = caller, ""
        s.collect_phase, s.collect_value, s.collect_misses = "", None, 0
        run = self.dialog.states[caller].run
        if run is not None and run.into and _storable(value):
            s.variables[run.into] = value
        self.run_event("returned", {"value": value})

    def enter(self, name: str) -> None:
        s = self.session
        for timer in [t for t in s.timers if t.startswith("timeout:") or t in ("no_input", "inter_digit")]:
            del s.timers[timer]
        s.digit_buffer = ""
        s.state = name
        s.entered_at = self.now
        s.collect_phase, s.collect_value, s.collect_misses = "", None, 0
        state = self.dialog.states[name]
        changed: dict[str, Any] = {"dialog": self.dialog.name, "state": name}
        expect: dict[str, Any] = {}
        if state.collect is not None:
            expect = {"entity": state.collect.entity, "constraints": state.collect.constraints}
        if state.hints:
            expect["hints"] = state.hints
        if expect:
            changed["expect"] = expect
        self.emit("state_changed", changed)
        self.run_actions(state.on_enter, {})
        if s.ended:
            return
        if state.run is not None:
            for variable, expression in state.run.params:
                try:
                    value = expression.evaluate(self.activation({}))
                except EvaluationError as exc:
                    self.errors.append(f"{self.dialog.source}:{state.line}: run {state.run.flow}: {variable}: {exc}")
                    value = None
                s.variables[variable] = value if _storable(value) else None
            self.enter(state.run.initial)
            return
        if state.collect is not None:
            s.collect_phase = "ask"
            filled = s.variables.get(state.collect.slot)
            if state.collect.skip_if_filled and filled is not None and self.skips < MAX_SKIPS:
                self.skips += 1   # bounded: states that skip to each other would loop
                self.fill(state, filled)
                return
            self.say(state, state.collect.prompt, {})
        for level in self.dialog.candidates(state, "timeout"):
            if level and not (state.final and level[0].origin == "*"):
                for after in sorted({t.after for t in level if t.after}):
                    self.arm(f"timeout:{after!r}", after)
                break
        self.arm_no_input(state)

    def activation(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**self.session.variables, "call": self.session.call, "now": self._clock(), **fields}

    def _clock(self) -> dict[str, Any]:
        """``now`` as conditions see it: the event's time in the dialog's time zone (deterministic: the
        engine's ``now``, never the wall clock)."""
        if self._now_view is None or self._now_view[0] != self.now:
            local = datetime.fromtimestamp(self.now, UTC).astimezone(ZoneInfo(self.dialog.time_zone))
            self._now_view = (self.now, {
                "date": local.date().isoformat(), "time": local.strftime("%H:%M"), "hour": local.hour,
                "minute": local.minute, "weekday": local.strftime("%A").lower(), "iso": local.isoformat()})
        return self._now_view[1]

    def run_actions(self, actions: tuple[m.Action, ...], fields: dict[str, Any]) -> None:
        s = self.session
        state = self.dialog.states[s.state]
        for action in actions:
            if s.ended:
                return
            activation = self.activation(fields)
            if isinstance(action, m.SetVariables):
                for name, expression in action.assignments:
                    try:
                        value = expression.evaluate(self.activation(fields))
                    except EvaluationError:
                        continue  # documented: a set that cannot be computed leaves the variable as it was
                    if _storable(value):  # documented: so does one whose value is too large
                        s.variables[name] = value
            elif isinstance(action, m.Say):
                barge_in = action.barge_in or state.input.barge_in
                s.playing.append(self.emit("say", {
                    "text": action.text.render(activation), "voice": action.voice,
                    "barge_in": {"mode": barge_in.mode, "min_words": barge_in.min_words}}))
            elif isinstance(action, m.Play):
                barge_in = action.barge_in or state.input.barge_in
                s.playing.append(self.emit("play", {
                    "audio_uri": action.file, "barge_in": {"mode": barge_in.mode, "min_words": barge_in.min_words}}))
            elif isinstance(action, m.Call):
                data = {"service": action.service, "method": action.method,
                        "payload": _render(action.payload, activation), "timeout_ms": action.timeout_ms}
                key = self.emit("call", data)
                s.pending_calls[key] = data
            elif isinstance(action, m.Transfer):
                self.emit("transfer", {"target_uri": action.target.render(activation)})
            elif isinstance(action, m.Hangup):
                self.emit_hangup(action.reason)

    def emit_hangup(self, reason: str) -> None:
        self.emit("hangup", {"reason": reason})
        self.end(reason)

    def end(self, reason: str) -> None:
        s = self.session
        s.ended = True
        s.end_reason = reason
        s.timers.clear()

    def emit(self, kind: str, data: dict[str, Any]) -> str:
        s = self.session
        key = f"{s.session_id}:{s.step}:{self.index}"
        self.index += 1
        seq = 0
        if kind != "call":
            s.action_seq += 1
            seq = s.action_seq
        action = ev.Action(kind, seq, key, data)
        self.actions.append(action)
        if seq:
            s.outbox.append(action.to_dict())
            if len(s.outbox) > OUTBOX_LIMIT:
                del s.outbox[: len(s.outbox) - OUTBOX_LIMIT]
        return key


def _storable(value: Any) -> bool:
    return json_depth_ok(value, MAX_VARIABLE_DEPTH) and len(json.dumps(value)) <= MAX_VARIABLE_CHARS


def _render(value: Any, activation: dict[str, Any]) -> Any:
    if isinstance(value, Template):
        # "${expr}" alone keeps the expression's type (a number stays a number in the payload).
        if len(value.parts) == 1 and not isinstance(value.parts[0], str):
            try:
                return value.parts[0].evaluate(activation)
            except EvaluationError:
                return None
        return value.render(activation)
    if isinstance(value, dict):
        return {k: _render(v, activation) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, activation) for v in value]
    return value


def actions_after(session: Session, last_action_seq: int) -> list[ev.Action]:
    """Stream actions issued after ``last_action_seq`` (what a resumed stream has not received)."""
    return [ev.Action.from_dict(a) for a in session.outbox if int(a["seq"]) > last_action_seq]
