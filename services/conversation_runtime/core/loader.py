"""Load a dialog file and refuse it, whole, when anything in it is wrong.

Every problem becomes a ``DialogError`` with ``file:line:col``, the state it is in and a
message an operator understands; all problems are collected before refusing, so one run of
``dialtone dialog validate`` lists them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.durations import parse_duration
from dialtone.conversation_runtime.core.errors import DialogError, DialogLoadError
from dialtone.conversation_runtime.core.expressions import (
    Expression,
    ExpressionError,
    Template,
    compile_expression,
    compile_template,
)
from dialtone.conversation_runtime.core.located import Loc, YamlSyntaxError, load_located

_DIALOG_KEYS = {"name", "initial", "variables", "states", "handlers", "input", "max_duration", "dead_air",
                "description"}
_STATE_KEYS = {"on_enter", "transitions", "input", "description"}
_TRANSITION_KEYS = {"event", "condition", "target", "actions", "after", "count"}
_INPUT_KEYS = {"mode", "barge_in", "no_input", "digits"}
_DIGITS_KEYS = {"max", "finish_key", "inter_digit_timeout"}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DTMF_KEYS = set("0123456789*#ABCD")
# A backend.result condition that lets errors through (see docs/dialogs.md, "Backend calls").
_HANDLES_ERRORS_RE = re.compile(r"result\.error|!\s*\(?\s*result\.ok|result\.ok\s*(==\s*false|!=\s*true)")


def load_dialog(path: str | Path) -> m.Dialog:
    """Read and compile ``path``; raises DialogLoadError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DialogLoadError([DialogError(file, 1, 1, "unreadable", f"cannot read the file: {exc}")]) from exc
    return load_dialog_text(text, file)


def load_dialog_text(text: str, file: str = "<dialog>") -> m.Dialog:
    loader = _Loader(file)
    dialog = loader.load(text)
    if loader.errors or dialog is None:
        raise DialogLoadError(loader.errors)
    return dialog


class _Loader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[DialogError] = []
        self.state: str | None = None
        self.variables: set[str] = set()

    # -- reporting -------------------------------------------------------------------------
    def error(self, loc: Loc | tuple[int, int], kind: str, message: str, at_key: bool = False) -> None:
        if isinstance(loc, Loc):
            line, col = (loc.key_line, loc.key_col) if at_key and loc.key_line else (loc.line, loc.col)
        else:
            line, col = loc
        self.errors.append(DialogError(self.file, line, col, kind, message, self.state))

    def mapping(self, loc: Loc, what: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Loc]:
        if not isinstance(loc.value, dict):
            self.error(loc, "wrong_type", f"{what} must be a mapping, got {_kind(loc.value)}")
            return {}
        for key, value in loc.value.items():
            if key not in allowed:
                self.error(value, "unknown_key",
                           f"unknown key '{key}' in {what}; expected one of: {', '.join(sorted(allowed))}", True)
        for key in required:
            if key not in loc.value:
                self.error(loc, "missing_key", f"{what} needs '{key}'", True)
        return {k: v for k, v in loc.value.items() if k in allowed}

    def string(self, loc: Loc, what: str) -> str | None:
        if isinstance(loc.value, str) and loc.value:
            return loc.value
        self.error(loc, "wrong_type", f"{what} must be a non-empty string, got {_kind(loc.value)}")
        return None

    def duration(self, loc: Loc, what: str) -> float | None:
        try:
            return parse_duration(loc.value)
        except ValueError as exc:
            self.error(loc, "bad_duration", f"{what}: {exc}")
            return None

    def expression(self, loc: Loc, what: str, names: set[str]) -> Expression | None:
        source = loc.value if isinstance(loc.value, str) else None
        if isinstance(loc.value, bool | int | float) and not isinstance(loc.value, str):
            source = str(loc.value).lower() if isinstance(loc.value, bool) else str(loc.value)
        if source is None:
            self.error(loc, "wrong_type", f"{what} must be a CEL expression (a string), got {_kind(loc.value)}")
            return None
        try:
            expr = compile_expression(source)
        except ExpressionError as exc:
            self.error(loc, "cel_syntax", f"{what}: {exc}")
            return None
        self.check_names(loc, what, expr.names, names)
        return expr

    def template(self, loc: Loc, what: str, names: set[str]) -> Template | None:
        if not isinstance(loc.value, str):
            self.error(loc, "wrong_type", f"{what} must be a string, got {_kind(loc.value)}")
            return None
        try:
            template = compile_template(loc.value)
        except ExpressionError as exc:
            self.error(loc, "cel_syntax", f"{what}: {exc}")
            return None
        self.check_names(loc, what, template.names, names)
        return template

    def check_names(self, loc: Loc, what: str, used: frozenset[str], names: set[str]) -> None:
        for name in sorted(used - names):
            self.error(loc, "unknown_variable",
                       f"{what} refers to unknown name '{name}'; known here: {', '.join(sorted(names))}")

    # -- the dialog ------------------------------------------------------------------------
    def load(self, text: str) -> m.Dialog | None:
        try:
            root, duplicates = load_located(text)
        except YamlSyntaxError as exc:
            self.error((exc.line, exc.col), "yaml_syntax", exc.message)
            return None
        for line, col, message in duplicates:
            self.error((line, col), "duplicate_key", message)
        if root is None:
            self.error((1, 1), "missing_key", "the file is empty; it needs a 'dialog:' mapping")
            return None
        top = self.mapping(root, "the file", {"dialog"}, ("dialog",))
        if "dialog" not in top:
            return None
        body = self.mapping(top["dialog"], "dialog", _DIALOG_KEYS, ("name", "initial", "states"))
        name = self.string(body["name"], "dialog name") if "name" in body else None
        variables = self.load_variables(body.get("variables"))
        states_loc = body.get("states")
        state_locs = self.mapping(states_loc, "states", set(states_loc.value) if states_loc and isinstance(
            states_loc.value, dict) else set()) if states_loc else {}
        if states_loc is not None and not state_locs and isinstance(states_loc.value, dict):
            self.error(states_loc, "missing_key", "a dialog needs at least one state")
        self.collect_set_targets(body)
        self.variables |= set(variables)
        default_input = self.load_input(body["input"], m.InputSettings()) if "input" in body else m.InputSettings()
        max_duration = self.duration(body["max_duration"], "max_duration") if "max_duration" in body else None
        dead_air = self.duration(body["dead_air"], "dead_air") if "dead_air" in body else None

        self.state = None
        handlers = self.load_transitions(body.get("handlers"), "*", "dialog handlers")
        states: dict[str, m.State] = {}
        for state_name, state_loc in state_locs.items():
            self.state = state_name
            if not _NAME_RE.match(state_name):
                self.error(state_loc, "bad_name", f"state name '{state_name}' must be letters, digits and _", True)
            states[state_name] = self.load_state(state_name, state_loc, default_input)
        self.state = None
        initial = None
        if "initial" in body:
            initial = self.string(body["initial"], "initial")
            if initial and state_locs and initial not in states:
                self.error(body["initial"], "unknown_initial",
                           f"initial state '{initial}' does not exist; states: {', '.join(sorted(states))}")
        if name is None or initial is None or not states:
            return None
        # Variables only ever set (not declared) start as null, so conditions can test them.
        variables = {**{v: None for v in sorted(self.variables)}, **variables}
        dialog = m.Dialog(name=name, initial=initial, variables=variables, states=states, handlers=handlers,
                          version=hashlib.sha256(text.encode()).hexdigest()[:16], source=self.file,
                          max_duration=max_duration, dead_air=dead_air)
        self.check_graph(dialog, state_locs, body)
        return dialog

    def load_variables(self, loc: Loc | None) -> dict[str, Any]:
        if loc is None:
            return {}
        out: dict[str, Any] = {}
        entries = self.mapping(loc, "variables", set(loc.value) if isinstance(loc.value, dict) else set())
        for key, value in entries.items():
            if not _NAME_RE.match(key):
                self.error(value, "bad_name", f"variable name '{key}' must be letters, digits and _", True)
            elif key in m.RESERVED_NAMES:
                self.error(value, "reserved_name", f"'{key}' is reserved for event fields; pick another name", True)
            out[key] = value.plain()
        return out

    def collect_set_targets(self, body: dict[str, Loc]) -> None:
        """Variables a ``set`` assigns exist too (so a typo elsewhere is still caught)."""
        def walk(loc: Any) -> None:
            if isinstance(loc, Loc):
                if isinstance(loc.value, dict):
                    if "set" in loc.value and isinstance(loc.value["set"].value, dict):
                        for key in loc.value["set"].value:
                            if _NAME_RE.match(key) and key not in m.RESERVED_NAMES:
                                self.variables.add(key)
                    for value in loc.value.values():
                        walk(value)
                elif isinstance(loc.value, list):
                    for value in loc.value:
                        walk(value)
        walk(body.get("states"))
        walk(body.get("handlers"))

    def load_input(self, loc: Loc, base: m.InputSettings) -> m.InputSettings:
        fields = self.mapping(loc, "input", _INPUT_KEYS)
        mode, barge_in, no_input, digits = base.mode, base.barge_in, base.no_input, base.digits
        if "mode" in fields:
            if fields["mode"].value in m.INPUT_MODES:
                mode = fields["mode"].value
            else:
                self.error(fields["mode"], "bad_value",
                           f"input mode must be one of {', '.join(m.INPUT_MODES)}, got {_kind(fields['mode'].value)}")
        if "barge_in" in fields:
            barge_in = self.load_barge_in(fields["barge_in"]) or barge_in
        if "no_input" in fields:
            no_input = self.duration(fields["no_input"], "no_input")
        if "digits" in fields:
            digits = self.load_digits(fields["digits"])
        return m.InputSettings(mode=mode, barge_in=barge_in, no_input=no_input, digits=digits)

    def load_barge_in(self, loc: Loc) -> m.BargeIn | None:
        value = loc.value
        if value is True:  # YAML 1.1 reads a bare `on` as true and `off` as false
            value = "on"
        elif value is False:
            value = "off"
        if isinstance(value, str) and value in ("on", "off", "dtmf_only"):
            return m.BargeIn(value)
        if isinstance(value, dict) and set(value) == {"after_words"}:
            words = value["after_words"].value
            if isinstance(words, int) and not isinstance(words, bool) and words >= 1:
                return m.BargeIn("after_words", words)
        self.error(loc, "bad_value", "barge_in must be on, off, dtmf_only or {after_words: N} with N >= 1")
        return None

    def load_digits(self, loc: Loc) -> m.DigitCollection | None:
        fields = self.mapping(loc, "digits", _DIGITS_KEYS)
        max_digits, finish_key, inter = 0, "#", 3.0
        if "max" in fields:
            value = fields["max"].value
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
                max_digits = value
            else:
                self.error(fields["max"], "bad_value", "digits.max must be a whole number from 1 to 64")
        if "finish_key" in fields:
            value = fields["finish_key"].value
            if value is None or value == "":
                finish_key = None
            elif isinstance(value, str | int) and str(value) in _DTMF_KEYS:
                finish_key = str(value)
            else:
                self.error(fields["finish_key"], "bad_value", "digits.finish_key must be one key: 0-9, *, # or A-D")
        if "inter_digit_timeout" in fields:
            inter = self.duration(fields["inter_digit_timeout"], "inter_digit_timeout") or inter
        if max_digits == 0 and finish_key is None:
            self.error(loc, "bad_value", "digits needs a max, a finish_key, or both")
        return m.DigitCollection(max_digits, finish_key, inter)

    def load_state(self, name: str, loc: Loc, default_input: m.InputSettings) -> m.State:
        if loc.value is None:
            loc = Loc({}, loc.line, loc.col, loc.key_line, loc.key_col)
        fields = self.mapping(loc, f"state '{name}'", _STATE_KEYS)
        settings = self.load_input(fields["input"], default_input) if "input" in fields else default_input
        on_enter = self.load_actions(fields.get("on_enter"), set(self.variables) | {"call"}, "on_enter")
        transitions = self.load_transitions(fields.get("transitions"), name, "transitions")
        final = bool(on_enter) and isinstance(on_enter[-1], m.Hangup | m.Transfer)
        return m.State(name=name, on_enter=on_enter, transitions=transitions, input=settings, final=final,
                       line=loc.key_line or loc.line)

    def load_transitions(self, loc: Loc | None, origin: str, what: str) -> tuple[m.Transition, ...]:
        if loc is None:
            return ()
        if not isinstance(loc.value, list):
            self.error(loc, "wrong_type", f"{what} must be a list, got {_kind(loc.value)}")
            return ()
        out = []
        for item in loc.value:
            transition = self.load_transition(item, origin)
            if transition is not None:
                out.append(transition)
        return tuple(out)

    def load_transition(self, loc: Loc, origin: str) -> m.Transition | None:
        fields = self.mapping(loc, "a transition", _TRANSITION_KEYS, ("event",))
        if "event" not in fields:
            return None
        event = fields["event"].value
        if event not in m.EVENTS:
            self.error(fields["event"], "unknown_event",
                       f"unknown event {_kind(event)}; events: {', '.join(m.EVENTS)}")
            return None
        names = set(self.variables) | {"call", *m.EVENT_FIELDS[event]}
        condition = self.expression(fields["condition"], "condition", names) if "condition" in fields else None
        target = None
        if "target" in fields:
            target = self.string(fields["target"], "target")
        elif event != "hangup":
            self.error(loc, "missing_key", f"a '{event}' transition needs a 'target'")
        after = None
        if event == "timeout":
            if "after" in fields:
                after = self.duration(fields["after"], "after")
            else:
                self.error(loc, "missing_key", "a 'timeout' transition needs 'after' (such as 8s)")
        elif "after" in fields:
            self.error(fields["after"], "misplaced_key", f"'after' belongs to timeout transitions, not '{event}'",
                       True)
        count = None
        if "count" in fields:
            value = fields["count"].value
            if event not in ("no_input", "no_match"):
                self.error(fields["count"], "misplaced_key",
                           f"'count' belongs to no_input and no_match transitions, not '{event}'", True)
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                count = value
            else:
                self.error(fields["count"], "bad_value", "count must be a whole number from 1")
        actions = self.load_actions(fields.get("actions"), names, "actions")
        if event == "hangup" and any(isinstance(a, m.Say | m.Play | m.Transfer | m.Hangup) for a in actions):
            self.error(fields["actions"], "bad_value",
                       "after the caller hung up only 'call' and 'set' actions can run")
        return m.Transition(event=event, target=target, condition=condition, actions=actions, after=after,
                            count=count, line=loc.line, origin=origin)

    # -- actions (dispatched by type through a registry) ------------------------------------
    def load_actions(self, loc: Loc | None, names: set[str], what: str) -> tuple[m.Action, ...]:
        if loc is None:
            return ()
        if not isinstance(loc.value, list):
            self.error(loc, "wrong_type", f"{what} must be a list of actions, got {_kind(loc.value)}")
            return ()
        out = []
        for item in loc.value:
            if not isinstance(item.value, dict) or len(item.value) != 1:
                self.error(item, "wrong_type",
                           f"an action is a mapping with one key ({', '.join(sorted(_ACTIONS))}), "
                           f"got {_kind(item.value)}")
                continue
            ((kind, body),) = item.value.items()
            parse = _ACTIONS.get(kind)
            if parse is None:
                self.error(body, "unknown_action",
                           f"unknown action '{kind}'; actions: {', '.join(sorted(_ACTIONS))}", True)
                continue
            action = parse(self, body, names)
            if action is not None:
                out.append(action)
        return tuple(out)

    def parse_say(self, loc: Loc, names: set[str]) -> m.Say | None:
        if isinstance(loc.value, str):
            text = self.template(loc, "say", names)
            return m.Say(text) if text else None
        fields = self.mapping(loc, "say", {"text", "voice", "barge_in"}, ("text",))
        text = self.template(fields["text"], "say text", names) if "text" in fields else None
        voice = self.string(fields["voice"], "voice") if "voice" in fields else ""
        barge_in = self.load_barge_in(fields["barge_in"]) if "barge_in" in fields else None
        return m.Say(text, voice or "", barge_in) if text else None

    def parse_play(self, loc: Loc, names: set[str]) -> m.Play | None:
        if isinstance(loc.value, str):
            return m.Play(loc.value)
        fields = self.mapping(loc, "play", {"file", "barge_in"}, ("file",))
        file = self.string(fields["file"], "play file") if "file" in fields else None
        barge_in = self.load_barge_in(fields["barge_in"]) if "barge_in" in fields else None
        return m.Play(file, barge_in) if file else None

    def parse_call(self, loc: Loc, names: set[str]) -> m.Call | None:
        fields = self.mapping(loc, "call", {"service", "method", "payload", "timeout"}, ("service", "method"))
        service = self.string(fields["service"], "call service") if "service" in fields else None
        method = self.string(fields["method"], "call method") if "method" in fields else None
        payload: Any = {}
        if "payload" in fields:
            if isinstance(fields["payload"].value, dict):
                payload = self.payload(fields["payload"], names)
            else:
                self.error(fields["payload"], "wrong_type", "call payload must be a mapping")
        timeout = self.duration(fields["timeout"], "call timeout") if "timeout" in fields else None
        if not (service and method):
            return None
        return m.Call(service, method, payload, int((timeout or 0) * 1000), line=loc.key_line or loc.line,
                      col=loc.key_col or loc.col)

    def payload(self, loc: Loc, names: set[str]) -> Any:
        if isinstance(loc.value, dict):
            return {k: self.payload(v, names) for k, v in loc.value.items()}
        if isinstance(loc.value, list):
            return [self.payload(v, names) for v in loc.value]
        if isinstance(loc.value, str):
            return self.template(loc, "payload value", names)
        return loc.value

    def parse_set(self, loc: Loc, names: set[str]) -> m.SetVariables | None:
        entries = self.mapping(loc, "set", set(loc.value) if isinstance(loc.value, dict) else set())
        out = []
        for key, value in entries.items():
            if key in m.RESERVED_NAMES or not _NAME_RE.match(key):
                self.error(value, "reserved_name", f"cannot set '{key}': not a variable name", True)
                continue
            expr = self.expression(value, f"set {key}", names)
            if expr is not None:
                out.append((key, expr))
        return m.SetVariables(tuple(out))

    def parse_transfer(self, loc: Loc, names: set[str]) -> m.Transfer | None:
        if isinstance(loc.value, dict):
            fields = self.mapping(loc, "transfer", {"to"}, ("to",))
            loc = fields.get("to") or loc
            if "to" not in fields:
                return None
        target = self.template(loc, "transfer target", names)
        if target and not target.names and not re.match(r"^(sips?|tel):", target.source):
            self.error(loc, "bad_value", f"transfer target {target.source!r} must be a sip:, sips: or tel: URI")
        return m.Transfer(target) if target else None

    def parse_hangup(self, loc: Loc, names: set[str]) -> m.Hangup | None:
        if loc.value is None:
            return m.Hangup()
        if isinstance(loc.value, str):
            return m.Hangup(loc.value)
        fields = self.mapping(loc, "hangup", {"reason"})
        reason = self.string(fields["reason"], "hangup reason") if "reason" in fields else "dialog"
        return m.Hangup(reason or "dialog")

    # -- whole-graph checks ------------------------------------------------------------------
    def check_graph(self, dialog: m.Dialog, state_locs: dict[str, Loc], body: dict[str, Loc]) -> None:
        transition_locs = _transition_locs(body, state_locs)
        for transition in dialog.all_transitions():
            self.state = None if transition.origin == "*" else transition.origin
            if transition.target is not None and transition.target not in dialog.states:
                loc = transition_locs.get((transition.origin, transition.line))
                self.error(loc or (transition.line, 1), "unknown_target",
                           f"target '{transition.target}' does not exist; states: "
                           f"{', '.join(sorted(dialog.states))}")
        reachable = {dialog.initial}
        frontier = [dialog.initial]
        global_targets = {t.target for t in dialog.handlers if t.target in dialog.states}
        reachable |= global_targets
        frontier += list(global_targets)
        while frontier:
            state = dialog.states.get(frontier.pop())
            if state is None:
                continue
            for transition in state.transitions:
                if transition.target in dialog.states and transition.target not in reachable:
                    reachable.add(transition.target)
                    frontier.append(transition.target)
        for name, state in dialog.states.items():
            self.state = name
            if name not in reachable:
                self.error(state_locs[name], "unreachable_state",
                           f"state '{name}' is unreachable: no transition leads to it", True)
            exits = [t for t in state.transitions if t.event != "hangup"]
            if not state.final and not exits:
                self.error(state_locs[name], "dead_end",
                           f"state '{name}' has no way out: add transitions, or end its on_enter with "
                           "hangup or transfer", True)
            self.check_calls(dialog, state, state.on_enter, state)
            for transition in state.transitions:
                receiver = dialog.states.get(transition.target or name)
                if receiver is not None:
                    self.check_calls(dialog, state, transition.actions, receiver)
        self.state = None
        for transition in dialog.handlers:
            for receiver_name in [transition.target] if transition.target else list(dialog.states):
                receiver = dialog.states.get(receiver_name or "")
                if receiver is not None:
                    self.check_calls(dialog, receiver, transition.actions, receiver)
        self.state = None

    def check_calls(self, dialog: m.Dialog, state: m.State, actions: tuple[m.Action, ...],
                    receiver: m.State) -> None:
        for action in actions:
            if not isinstance(action, m.Call):
                continue
            handlers = [t for level in dialog.candidates(receiver, "backend.result") for t in level]
            if not any(t.condition is None or _HANDLES_ERRORS_RE.search(t.condition.source) for t in handlers):
                self.state = state.name
                self.error((action.line, action.col), "unhandled_backend_error",
                           f"call {action.service}.{action.method}: its errors are handled nowhere; state "
                           f"'{receiver.name}' needs a backend.result transition without a condition or "
                           "with one on result.error / !result.ok")


_ACTIONS: dict[str, Callable[[_Loader, Loc, set[str]], Any]] = {
    "say": _Loader.parse_say,
    "play": _Loader.parse_play,
    "call": _Loader.parse_call,
    "set": _Loader.parse_set,
    "transfer": _Loader.parse_transfer,
    "hangup": _Loader.parse_hangup,
}


def _transition_locs(body: dict[str, Loc], state_locs: dict[str, Loc]) -> dict[tuple[str, int], Loc]:
    """(origin, line) of each transition -> the location of its target (for unknown_target errors)."""
    out: dict[tuple[str, int], Loc] = {}

    def add(origin: str, transitions: Loc | None) -> None:
        if transitions is None or not isinstance(transitions.value, list):
            return
        for item in transitions.value:
            if isinstance(item.value, dict) and "target" in item.value:
                out[(origin, item.line)] = item.value["target"]

    add("*", body.get("handlers"))
    for name, loc in state_locs.items():
        if isinstance(loc.value, dict):
            add(name, loc.value.get("transitions"))
    return out


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


__all__ = ["load_dialog", "load_dialog_text", "Expression", "Template"]
