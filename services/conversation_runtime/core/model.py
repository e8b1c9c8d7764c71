"""The compiled dialog: immutable data the engine executes and ``dialtone dialog graph`` draws.

A dialog compiles to states, each with its ``on_enter`` actions and an ordered transition table
``event -> [Transition(condition, target, actions)]`` (STYLE "transitions are data").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dialtone.conversation_runtime.core.expressions import Expression, Template

EVENTS = ("speech", "dtmf", "digits", "intent", "filled", "failed", "returned", "timeout", "no_input", "no_match",
          "backend.result", "playback.finished", "transfer.result", "hangup", "max_duration", "dead_air")

# Names each event puts in front of conditions and actions, besides variables and ``call``.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "speech": ("transcript", "confidence"),
    "dtmf": ("digit",),
    "digits": ("digits",),
    "intent": ("intent", "confidence", "transcript"),
    "filled": ("value",),
    "failed": ("count",),
    "returned": ("value",),
    "backend.result": ("result",),
    "playback.finished": ("playback",),
    "transfer.result": ("transfer",),
    "no_input": ("count",),
    "no_match": ("count",),
    "hangup": ("reason",),
    "timeout": (),
    "max_duration": (),
    "dead_air": (),
}
# Their CEL types, for load-time checks of conditions ("dyn": anything).
EVENT_FIELD_TYPES: dict[str, str] = {
    "transcript": "string", "confidence": "double", "digit": "string", "digits": "string", "intent": "string",
    "value": "dyn", "count": "int", "result": "map", "playback": "map", "transfer": "map", "reason": "string",
    "call": "map", "now": "map",
}
# Names every condition and action can read besides variables and the event's fields.
ALWAYS_NAMES = frozenset({"call", "now"})
RESERVED_NAMES = frozenset({*ALWAYS_NAMES, *[n for fields in EVENT_FIELDS.values() for n in fields]})
# A target that re-enters whichever state the call is in (a dialog handler's "ask again"): its
# on_enter runs again. No state can have this name.
CURRENT_STATE = "$current"
INPUT_EVENTS = frozenset({"speech", "dtmf", "digits", "intent"})
BARGE_IN_MODES = ("on", "off", "dtmf_only", "after_words")
INPUT_MODES = ("speech", "dtmf", "both")


@dataclasses.dataclass(frozen=True)
class BargeIn:
    mode: str = "on"
    min_words: int = 0


@dataclasses.dataclass(frozen=True)
class DigitCollection:
    max_digits: int = 0               # 0 = until the finish key or the inter-digit timeout
    finish_key: str | None = "#"
    inter_digit_timeout: float = 3.0


@dataclasses.dataclass(frozen=True)
class InputSettings:
    mode: str = "both"
    barge_in: BargeIn = BargeIn()
    no_input: float | None = None     # seconds of silence after the prompts before a no_input event
    digits: DigitCollection | None = None


@dataclasses.dataclass(frozen=True)
class Confirmation:
    prompt: Template                  # reads the value back ("I heard ${rx | digits}. Is that right?")
    retry: Template | None = None     # after "no" (default: the slot's prompt again)


@dataclasses.dataclass(frozen=True)
class Collect:
    """A slot the state fills: ask, extract a value of ``entity``, check it, maybe confirm it, then
    the state's ``filled`` transition (or ``failed`` after ``max_attempts`` misses)."""

    slot: str
    entity: str
    constraints: dict[str, Any]
    prompt: Template
    reprompts: tuple[Template, ...] = ()   # the Nth miss says the Nth (the last one repeats)
    validate: Expression | None = None     # over the slot's name, the candidate value
    invalid: Template | None = None        # said when validate is false
    confirm: Confirmation | None = None
    max_attempts: int = 3
    line: int = 0
    # other slots the same answer may fill ("a large pepperoni for delivery"): (slot, entity, constraints)
    also: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    skip_if_filled: bool = False      # entered with the slot already set (by an `also`): filled at once


@dataclasses.dataclass(frozen=True)
class RunFlow:
    """A state that runs a flow: its parameters set, the flow's copy of states entered (named
    ``state.flow_state``); the flow's ``return`` comes back here as the ``returned`` event."""

    flow: str
    initial: str                                      # the first state of this use's copy
    params: tuple[tuple[str, Expression], ...] = ()   # variable <- expression, evaluated on entry
    into: str | None = None                           # the variable that receives the returned value


@dataclasses.dataclass(frozen=True)
class Say:
    text: Template
    voice: str = ""
    barge_in: BargeIn | None = None   # None = the state's policy


@dataclasses.dataclass(frozen=True)
class Play:
    file: str
    barge_in: BargeIn | None = None


@dataclasses.dataclass(frozen=True)
class Call:
    service: str
    method: str
    payload: Any                      # JSON-like tree whose strings are Templates
    timeout_ms: int = 0
    line: int = 0
    col: int = 0


@dataclasses.dataclass(frozen=True)
class SetVariables:
    assignments: tuple[tuple[str, Expression], ...]


@dataclasses.dataclass(frozen=True)
class Transfer:
    target: Template


@dataclasses.dataclass(frozen=True)
class Hangup:
    reason: str = "dialog"


Action = Say | Play | Call | SetVariables | Transfer | Hangup


@dataclasses.dataclass(frozen=True)
class Transition:
    event: str
    target: str | None
    condition: Expression | None = None
    actions: tuple[Action, ...] = ()
    after: float | None = None        # timeout: seconds after entering the state
    count: int | None = None          # no_input / no_match: the Nth occurrence (None = any)
    intent: str | None = None         # intent transitions: the intent it takes
    returns: Expression | None = None  # in a flow: end the flow with this value (back to the state that ran it)
    line: int = 0
    origin: str = ""                  # the state it belongs to, or "*" for dialog-wide handlers

    @property
    def label(self) -> str:
        """How coverage reports and graphs name it."""
        extra = ""
        if self.after is not None:
            extra = f" after {self.after:g}s"
        if self.count is not None:
            extra = f" #{self.count}"
        if self.intent is not None:
            extra = f" {self.intent}"
        if self.condition is not None:
            extra += f" [{self.condition.source}]"
        return f"{self.origin} --{self.event}{extra}--> {self.target or '(stay)'}"


@dataclasses.dataclass(frozen=True)
class State:
    name: str
    on_enter: tuple[Action, ...]
    transitions: tuple[Transition, ...]
    input: InputSettings
    final: bool
    line: int = 0
    collect: Collect | None = None
    hints: str = ""                   # what the caller is likely to say here, for the recognizer
    run: RunFlow | None = None
    caller: str = ""                  # a flow's state: the state that ran the flow (its return goes there)

    @property
    def expects_input(self) -> bool:
        """The state waits for the caller: only such states arm no_input and count no_match."""
        return not self.final and (self.collect is not None or any(
            t.event in INPUT_EVENTS for t in self.transitions))

    @property
    def intents(self) -> tuple[str, ...]:
        """The intents the state's own transitions take."""
        return tuple(dict.fromkeys(t.intent for t in self.transitions if t.intent))

    def handles(self, event: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.event == event)


@dataclasses.dataclass(frozen=True)
class Dialog:
    name: str
    initial: str
    variables: dict[str, Any]
    states: dict[str, State]
    handlers: tuple[Transition, ...]
    version: str
    source: str                       # the file it came from
    max_duration: float | None = None
    dead_air: float | None = None
    time_zone: str = "UTC"            # dates and times callers say are read in it
    intents: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> dialtone.language Intent
    matcher: Any = dataclasses.field(default=None, compare=False, repr=False)  # IntentMatcher, or None
    warnings: tuple[Any, ...] = ()    # DialogErrors that do not refuse the dialog (validate prints them)

    def candidates(self, state: State, event: str) -> list[tuple[Transition, ...]]:
        """Transitions to try for ``event`` in ``state``: the state's own first, then the dialog's."""
        return [state.handles(event), tuple(t for t in self.handlers if t.event == event)]

    def listened_intents(self, state: State) -> tuple[str, ...]:
        """The intents a caller can say in ``state``: its own, then the dialog handlers'."""
        return tuple(dict.fromkeys([*state.intents, *(t.intent for t in self.handlers if t.intent)]))

    def all_transitions(self) -> list[Transition]:
        out = [t for s in self.states.values() for t in s.transitions]
        return out + list(self.handlers)
