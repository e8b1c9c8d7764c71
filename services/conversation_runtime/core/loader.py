"""Load a dialog file and refuse it, whole, when anything in it is wrong.

Every problem becomes a ``DialogError`` with ``file:line:col``, the state it is in and a
message an operator understands; all problems are collected before refusing, so one run of
``dialtone dialog validate`` lists them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.action_parsers import ActionParsers
from dialtone.conversation_runtime.core.errors import DialogError, DialogLoadError
from dialtone.conversation_runtime.core.expressions import Template, type_of_value
from dialtone.conversation_runtime.core.graph_checks import GraphChecks
from dialtone.conversation_runtime.core.located import Loc, YamlSyntaxError, load_located
from dialtone.conversation_runtime.core.reporter import NAME_RE, did_you_mean, kind_of
from dialtone.language import ENTITY_TYPES, IntentMatcher, hints_for, validate_constraints, validate_intents
from dialtone.language.intents import as_intent
from dialtone.language.registry import validate_time_zone

_DIALOG_KEYS = {"name", "initial", "variables", "states", "handlers", "input", "max_duration", "dead_air",
                "description", "intents", "time_zone", "flows"}
_STATE_KEYS = {"on_enter", "transitions", "input", "description", "collect", "run"}
_TRANSITION_KEYS = {"event", "condition", "target", "actions", "after", "count", "intent", "return"}
_FLOW_KEYS = {"params", "initial", "states", "description"}
_RUN_KEYS = {"flow", "with", "into"}
_INTENT_KEYS = {"examples", "keywords"}
_COLLECT_KEYS = {"slot", "type", "constraints", "prompt", "reprompts", "validate", "invalid", "confirm",
                 "max_attempts", "also", "skip_if_filled"}
# Entity types whose answer a caller can key in: the keys are collected like digits (up to # or the
# inter-digit pause) unless the state says otherwise; yes_no and choice take one key.
_KEYED_ENTITIES = {"digits", "phone_number", "number"}
# A slot's CEL type by its entity type (its JSON value): conditions on it are type-checked at load.
_SLOT_TYPES = {"yes_no": "bool", "digits": "string", "choice": "string", "date": "string", "time": "string",
               "datetime": "string", "phone_number": "string", "alphanumeric": "string", "amount": "map",
               "ordinal": "int"}
_INPUT_KEYS = {"mode", "barge_in", "no_input", "digits"}
_DIGITS_KEYS = {"max", "finish_key", "inter_digit_timeout"}
_DTMF_KEYS = set("0123456789*#ABCD")


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
    return dataclasses.replace(dialog, warnings=tuple(loader.warnings)) if loader.warnings else dialog


def _hints(state: m.State, handlers: tuple[m.Transition, ...], intents: dict[str, object]) -> str:
    """The recognizer's prompt for a listening state: its choice's options, the intents it listens for
    (its own and the handlers'), its entity type's words. Empty for a state that listens for nothing."""
    if state.final or not state.expects_input:
        return ""
    listened = [t.intent for t in (*state.transitions, *handlers) if t.intent and t.intent in intents]
    collect = state.collect
    options = collect.constraints.get("options", ()) if collect is not None and collect.entity == "choice" else ()
    return hints_for(entities=[collect.entity] if collect is not None else [],
                     intents={name: intents[name] for name in dict.fromkeys(listened)},
                     options=options if isinstance(options, dict | list) else ()).prompt


class _Loader(ActionParsers, GraphChecks):
    """Reads one dialog file; every problem is reported, then the dialog is refused whole."""

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
        intents = self.load_intents(body["intents"]) if "intents" in body else {}
        self.intents = intents
        time_zone = "UTC"
        if "time_zone" in body:
            time_zone = self.string(body["time_zone"], "time_zone") or "UTC"
            problem = validate_time_zone(time_zone)
            if problem:
                self.error(body["time_zone"], "bad_value", problem)
        default_input = self.load_input(body["input"], m.InputSettings()) if "input" in body else m.InputSettings()
        max_duration = self.duration(body["max_duration"], "max_duration") if "max_duration" in body else None
        dead_air = self.duration(body["dead_air"], "dead_air") if "dead_air" in body else None

        self.state = None
        handlers = self.load_transitions(body.get("handlers"), "*", "dialog handlers")
        self.flows = self.load_flows(body["flows"]) if "flows" in body else {}
        states: dict[str, m.State] = {}
        for state_name, state_loc in state_locs.items():
            self.state = state_name
            if not NAME_RE.match(state_name):
                self.error(state_loc, "bad_name", f"state name '{state_name}' must be letters, digits and _", True)
            states[state_name] = self.load_state(state_name, state_loc, default_input)
            if states[state_name].run is not None:
                states.update(self.expand_flow(state_name, states[state_name].run, default_input))
        self.state = None
        initial = None
        if "initial" in body:
            initial = self.string(body["initial"], "initial")
            if initial and state_locs and initial not in states:
                self.error(body["initial"], "unknown_initial",
                           f"initial state '{initial}' does not exist; states: {', '.join(sorted(states))}")
        if name is None or initial is None or not states:
            return None
        states = {name: dataclasses.replace(state, hints=_hints(state, handlers, intents))
                  for name, state in states.items()}
        # Variables only ever set (not declared) start as null, so conditions can test them.
        variables = {**{v: None for v in sorted(self.variables)}, **variables}
        dialog = m.Dialog(name=name, initial=initial, variables=variables, states=states, handlers=handlers,
                          version=hashlib.sha256(text.encode()).hexdigest()[:16], source=self.file,
                          max_duration=max_duration, dead_air=dead_air, time_zone=time_zone,
                          intents=intents, matcher=IntentMatcher(intents) if intents else None)
        self.check_graph(dialog, state_locs, body)
        return dialog

    def load_intents(self, loc: Loc) -> dict[str, object]:
        """``intents: {name: {examples: [...], keywords: [...]}}`` (or ``name: [examples]``)."""
        out: dict[str, object] = {}
        entries = self.mapping(loc, "intents", set(loc.value) if isinstance(loc.value, dict) else set())
        for name, value in entries.items():
            if not NAME_RE.match(name):
                self.error(value, "bad_name", f"intent name '{name}' must be letters, digits and _", True)
                continue
            plain = value.plain()
            if isinstance(plain, dict):
                self.mapping(value, f"intent '{name}'", _INTENT_KEYS, ("examples",))
            problems = validate_intents({name: plain}) if isinstance(plain, dict | list) else [
                f"intent '{name}' must be a list of example phrases or a mapping with 'examples', "
                f"got {kind_of(plain)}"]
            if problems:
                for problem in problems:
                    self.error(value, "bad_intent", problem, True)
                continue
            out[name] = as_intent(plain)
        return out

    def load_variables(self, loc: Loc | None) -> dict[str, Any]:
        if loc is None:
            return {}
        out: dict[str, Any] = {}
        entries = self.mapping(loc, "variables", set(loc.value) if isinstance(loc.value, dict) else set())
        for key, value in entries.items():
            if not NAME_RE.match(key):
                self.error(value, "bad_name", f"variable name '{key}' must be letters, digits and _", True)
            elif key in m.RESERVED_NAMES:
                self.error(value, "reserved_name", f"'{key}' is reserved for event fields; pick another name", True)
            out[key] = value.plain()
            self.variable_types[key] = type_of_value(out[key])
        return out

    def collect_set_targets(self, body: dict[str, Loc]) -> None:
        """Variables a ``set`` assigns exist too (so a typo elsewhere is still caught)."""
        def walk(loc: Any) -> None:
            if isinstance(loc, Loc):
                if isinstance(loc.value, dict):
                    if "set" in loc.value and isinstance(loc.value["set"].value, dict):
                        for key in loc.value["set"].value:
                            if NAME_RE.match(key) and key not in m.RESERVED_NAMES:
                                self.variables.add(key)
                    collect = loc.value.get("collect")
                    if collect is not None and isinstance(collect.value, dict) and "slot" in collect.value:
                        also = collect.value.get("also")
                        extra = [i.value.get("slot") for i in also.value if isinstance(i.value, dict)] \
                            if also is not None and isinstance(also.value, list) else []
                        for slot_loc in [collect.value["slot"], *[e for e in extra if e is not None]]:
                            slot = slot_loc.value
                            if isinstance(slot, str) and NAME_RE.match(slot) and slot not in m.RESERVED_NAMES:
                                self.variables.add(slot)
                    for value in loc.value.values():
                        walk(value)
                elif isinstance(loc.value, list):
                    for value in loc.value:
                        walk(value)
        walk(body.get("states"))
        walk(body.get("handlers"))
        walk(body.get("flows"))

    def load_input(self, loc: Loc, base: m.InputSettings) -> m.InputSettings:
        fields = self.mapping(loc, "input", _INPUT_KEYS)
        mode, barge_in, no_input, digits = base.mode, base.barge_in, base.no_input, base.digits
        if "mode" in fields:
            if fields["mode"].value in m.INPUT_MODES:
                mode = fields["mode"].value
            else:
                self.error(fields["mode"], "bad_value",
                           f"input mode must be one of {', '.join(m.INPUT_MODES)}, got {kind_of(fields['mode'].value)}")
        if "barge_in" in fields:
            barge_in = self.load_barge_in(fields["barge_in"]) or barge_in
        if "no_input" in fields:
            no_input = self.duration(fields["no_input"], "no_input")
        if "digits" in fields:
            digits = self.load_digits(fields["digits"])
        return m.InputSettings(mode=mode, barge_in=barge_in, no_input=no_input, digits=digits)

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

    def load_flows(self, loc: Loc) -> dict[str, dict[str, Loc]]:
        """``flows: {name: {params, initial, states}}``: reusable parts of a dialog, expanded where run."""
        flows: dict[str, dict[str, Loc]] = {}
        for name, flow_loc in self.mapping(loc, "flows", set(loc.value) if isinstance(loc.value, dict)
                                           else set()).items():
            if not NAME_RE.match(name):
                self.error(flow_loc, "bad_name", f"flow name '{name}' must be letters, digits and _", True)
                continue
            fields = self.mapping(flow_loc, f"flow '{name}'", _FLOW_KEYS, ("initial", "states"))
            if "initial" not in fields or "states" not in fields or not isinstance(fields["states"].value, dict):
                continue
            params = fields["params"].plain() if "params" in fields else []
            if not isinstance(params, list) or not all(isinstance(p, str) and NAME_RE.match(p) for p in params):
                self.error(fields["params"], "bad_value", f"flow '{name}': params must be a list of variable names")
                continue
            for param in params:
                self.variables.add(param)
            initial = fields["initial"].value
            if initial not in fields["states"].value:
                self.error(fields["initial"], "unknown_initial",
                           f"flow '{name}': initial state '{initial}' does not exist; states: "
                           f"{', '.join(sorted(fields['states'].value))}")
                continue
            flows[name] = fields
        return flows

    def expand_flow(self, caller: str, run: m.RunFlow, default_input: m.InputSettings) -> dict[str, m.State]:
        """This use's copy of the flow's states, named ``caller.state``; targets stay inside the copy."""
        flow = self.flows.get(run.flow)
        if flow is None:
            return {}
        copies: dict[str, m.State] = {}
        saved = self.state, self.flow_prefix
        self.flow_prefix = f"{caller}."
        try:
            for name, loc in flow["states"].value.items():
                self.state = f"{caller}.{name}"
                copies[self.state] = dataclasses.replace(self.load_state(self.state, loc, default_input), caller=caller)
        finally:
            self.state, self.flow_prefix = saved
        if not any(t.returns is not None for state in copies.values() for t in state.transitions):
            self.error(flow["states"], "missing_key",
                       f"flow '{run.flow}' never returns: give one of its transitions 'return: <value>'")
        return copies

    def load_run(self, loc: Loc, state: str) -> m.RunFlow | None:
        fields = self.mapping(loc, "run", _RUN_KEYS, ("flow",))
        name = self.string(fields["flow"], "run flow") if "flow" in fields else None
        if name is None:
            return None
        flow = self.flows.get(name)
        if flow is None:
            self.error(fields["flow"], "unknown_flow", f"unknown flow '{name}'{did_you_mean(name, self.flows)}; "
                       f"flows: {', '.join(sorted(self.flows)) or 'none declared (add flows: to the dialog)'}")
            return None
        declared = flow["params"].plain() if "params" in flow else []
        given: dict[str, Loc] = self.mapping(fields["with"], "run with", set(declared)) if "with" in fields else {}
        missing = [p for p in declared if p not in given]
        if missing:
            self.error(loc, "missing_key", f"run of flow '{name}' needs with: {', '.join(missing)}")
        names = set(self.variables) | m.ALWAYS_NAMES
        params = tuple((param, expr) for param, value in given.items()
                       if (expr := self.expression(value, f"run with {param}", names)) is not None)
        into = None
        if "into" in fields:
            into = self.string(fields["into"], "run into")
            if into is not None and (not NAME_RE.match(into) or into in m.RESERVED_NAMES):
                self.error(fields["into"], "bad_name", f"into '{into}' must be a variable name")
                into = None
        return m.RunFlow(name, f"{state}.{flow['initial'].value}", params, into)

    def load_state(self, name: str, loc: Loc, default_input: m.InputSettings) -> m.State:
        if loc.value is None:
            loc = Loc({}, loc.line, loc.col, loc.key_line, loc.key_col)
        fields = self.mapping(loc, f"state '{name}'", _STATE_KEYS)
        settings = self.load_input(fields["input"], default_input) if "input" in fields else default_input
        on_enter = self.load_actions(fields.get("on_enter"), set(self.variables) | m.ALWAYS_NAMES, "on_enter")
        transitions = self.load_transitions(fields.get("transitions"), name, "transitions")
        # a hangup anywhere ends the call (what follows it never runs: a warning); a transfer as the last action
        final = any(isinstance(a, m.Hangup) for a in on_enter) or (
            bool(on_enter) and isinstance(on_enter[-1], m.Transfer))
        collect = self.load_collect(fields["collect"]) if "collect" in fields else None
        run = None
        if "run" in fields:
            if self.flow_prefix:
                self.error(fields["run"], "bad_value", "a flow cannot run another flow", True)
            elif collect is not None:
                self.error(fields["run"], "bad_value", f"state '{name}' cannot both collect and run a flow", True)
            else:
                run = self.load_run(fields["run"], name)
            if run is not None and not any(t.event == "returned" for t in transitions):
                self.error(fields["run"], "missing_key", f"state '{name}' runs flow '{run.flow}' but has no "
                           "'returned' transition: say where the call goes when the flow returns", True)
        if collect is not None:
            if not any(t.event == "filled" for t in transitions):
                self.error(fields["collect"], "missing_key",
                           f"state '{name}' collects '{collect.slot}' but has no 'filled' transition: "
                           "say where the call goes once it has the value", True)
            if final:
                self.error(fields["collect"], "bad_value",
                           f"state '{name}' ends the call in on_enter, so it can collect nothing", True)
            if settings.digits is None and collect.entity in _KEYED_ENTITIES and settings.mode != "speech":
                longest = collect.constraints.get("max_length")
                settings = dataclasses.replace(settings, digits=m.DigitCollection(
                    max_digits=longest if isinstance(longest, int) and 1 <= longest <= 64 else 0))
        else:
            for transition in transitions:
                if transition.event in ("filled", "failed"):
                    self.error((transition.line, 1), "misplaced_key",
                               f"a '{transition.event}' transition belongs to a state with 'collect'")
        return m.State(name=name, on_enter=on_enter, transitions=transitions, input=settings, final=final,
                       line=loc.key_line or loc.line, collect=collect, run=run)

    def load_collect(self, loc: Loc) -> m.Collect | None:
        fields = self.mapping(loc, "collect", _COLLECT_KEYS, ("slot", "type", "prompt"))
        slot = self.string(fields["slot"], "collect slot") if "slot" in fields else None
        if slot is not None and (not NAME_RE.match(slot) or slot in m.RESERVED_NAMES):
            self.error(fields["slot"], "bad_name", f"slot '{slot}' must be a variable name (letters, digits, _) "
                       "that is not an event field")
            slot = None
        entity = self.string(fields["type"], "collect type") if "type" in fields else None
        if entity is not None and entity not in ENTITY_TYPES:
            self.error(fields["type"], "unknown_entity",
                       f"unknown entity type '{entity}'; types: {', '.join(sorted(ENTITY_TYPES))}")
            entity = None
        constraints: dict[str, object] = {}
        if "constraints" in fields:
            plain = fields["constraints"].plain()
            if not isinstance(plain, dict):
                self.error(fields["constraints"], "wrong_type",
                           f"collect constraints must be a mapping, got {kind_of(plain)}")
            else:
                constraints = plain
        if entity is not None:
            for problem in validate_constraints(entity, constraints):
                self.error(fields.get("constraints") or fields["type"], "bad_constraint", f"{entity}: {problem}")
        if slot is not None and entity is not None:
            self.variable_types[slot] = _SLOT_TYPES.get(entity, "dyn")
        names = set(self.variables) | m.ALWAYS_NAMES
        with_value = names | ({slot} if slot else set())
        prompt = self.template(fields["prompt"], "collect prompt", names) if "prompt" in fields else None
        reprompts: list[Template] = []
        if "reprompts" in fields:
            if isinstance(fields["reprompts"].value, list):
                for item in fields["reprompts"].value:
                    template = self.template(item, "collect reprompt", names)
                    if template is not None:
                        reprompts.append(template)
            else:
                self.error(fields["reprompts"], "wrong_type", "collect reprompts must be a list of prompts")
        validate = self.expression(fields["validate"], "collect validate", with_value) \
            if "validate" in fields else None
        invalid = self.template(fields["invalid"], "collect invalid", with_value) if "invalid" in fields else None
        if invalid is not None and validate is None:
            self.error(fields["invalid"], "misplaced_key", "'invalid' is said when 'validate' is false: add 'validate'",
                       True)
        confirm = None
        if "confirm" in fields:
            confirm_loc = fields["confirm"]
            if isinstance(confirm_loc.value, dict):
                parts = self.mapping(confirm_loc, "confirm", {"prompt", "retry"}, ("prompt",))
                said = self.template(parts["prompt"], "confirm prompt", with_value) if "prompt" in parts else None
                retry = self.template(parts["retry"], "confirm retry", names) if "retry" in parts else None
            else:
                said, retry = self.template(confirm_loc, "confirm", with_value), None
            confirm = m.Confirmation(said, retry) if said is not None else None
        attempts = 3
        if "max_attempts" in fields:
            value = fields["max_attempts"].value
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10:
                attempts = value
            else:
                self.error(fields["max_attempts"], "bad_value", "max_attempts must be a whole number from 1 to 10")
        also = self.load_also(fields["also"]) if "also" in fields else ()
        skip = False
        if "skip_if_filled" in fields:
            skip = fields["skip_if_filled"].value
            if not isinstance(skip, bool):
                self.error(fields["skip_if_filled"], "bad_value", "skip_if_filled must be true or false")
                skip = False
        if slot is None or entity is None or prompt is None:
            return None
        return m.Collect(slot=slot, entity=entity, constraints=constraints, prompt=prompt, reprompts=tuple(reprompts),
                         validate=validate, invalid=invalid, confirm=confirm, max_attempts=attempts,
                         line=loc.key_line or loc.line, also=also, skip_if_filled=skip)

    def load_also(self, loc: Loc) -> tuple[tuple[str, str, dict[str, object]], ...]:
        """``also: [{slot, type, constraints}]``: more slots one answer may fill."""
        if not isinstance(loc.value, list):
            self.error(loc, "wrong_type", f"collect also must be a list of {{slot, type}}, got {kind_of(loc.value)}")
            return ()
        out = []
        for item in loc.value:
            fields = self.mapping(item, "an 'also' slot", {"slot", "type", "constraints"}, ("slot", "type"))
            slot = self.string(fields["slot"], "also slot") if "slot" in fields else None
            entity = self.string(fields["type"], "also type") if "type" in fields else None
            constraints = fields["constraints"].plain() if "constraints" in fields else {}
            if entity is not None and entity not in ENTITY_TYPES:
                self.error(fields["type"], "unknown_entity",
                           f"unknown entity type '{entity}'{did_you_mean(entity, ENTITY_TYPES)}; types: "
                           f"{', '.join(sorted(ENTITY_TYPES))}")
                continue
            if not isinstance(constraints, dict):
                self.error(fields["constraints"], "wrong_type", "also constraints must be a mapping")
                continue
            for problem in validate_constraints(entity or "", constraints) if entity else ():
                self.error(fields.get("constraints") or fields["type"], "bad_constraint", f"{entity}: {problem}")
            if slot and entity and NAME_RE.match(slot) and slot not in m.RESERVED_NAMES:
                self.variable_types[slot] = _SLOT_TYPES.get(entity, "dyn")
                out.append((slot, entity, constraints))
        return tuple(out)

    def load_transitions(self, loc: Loc | None, origin: str, what: str) -> tuple[m.Transition, ...]:
        if loc is None:
            return ()
        if not isinstance(loc.value, list):
            self.error(loc, "wrong_type", f"{what} must be a list, got {kind_of(loc.value)}")
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
                       f"unknown event {kind_of(event)}{did_you_mean(event, m.EVENTS)}; events: {', '.join(m.EVENTS)}")
            return None
        names = set(self.variables) | m.ALWAYS_NAMES | set(m.EVENT_FIELDS[event])
        condition = self.expression(fields["condition"], "condition", names) if "condition" in fields else None
        target = None  # no target: run the actions and stay in the state (on_enter does not run again)
        if "target" in fields:
            target = self.string(fields["target"], "target")
            if target and self.flow_prefix and target != m.CURRENT_STATE:
                target = self.flow_prefix + target   # a flow's targets are its own states
        returns = None
        if "return" in fields:
            if not self.flow_prefix:
                self.error(fields["return"], "misplaced_key", "'return' belongs to a flow's transitions", True)
            elif "target" in fields:
                self.error(fields["return"], "bad_value", "a transition either returns or has a target", True)
            else:
                returns = self.expression(fields["return"], "return", names)
        after = None
        if event == "timeout":
            if "after" in fields:
                after = self.duration(fields["after"], "after")
            else:
                self.error(loc, "missing_key", "a 'timeout' transition needs 'after' (such as 8s)")
        elif "after" in fields:
            self.error(fields["after"], "misplaced_key", f"'after' belongs to timeout transitions, not '{event}'",
                       True)
        intent = None
        if event == "intent":
            if "intent" not in fields:
                self.error(loc, "missing_key", "an 'intent' transition needs 'intent' (the intent's name)")
            else:
                intent = self.string(fields["intent"], "intent")
                if intent is not None and intent not in self.intents:
                    known = ", ".join(sorted(self.intents)) or "none declared (add 'intents:' to the dialog)"
                    self.error(fields["intent"], "unknown_intent", f"unknown intent '{intent}'; intents: {known}")
        elif "intent" in fields:
            self.error(fields["intent"], "misplaced_key", f"'intent' belongs to intent transitions, not '{event}'",
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
                            count=count, intent=intent, returns=returns, line=loc.line, origin=origin)

    # -- actions (dispatched by type through a registry) ------------------------------------
