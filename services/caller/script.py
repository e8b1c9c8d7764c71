"""A caller's script: the steps ``dialtone call`` runs, from the command line or a YAML file.

Pure data and parsing (no I/O besides reading the YAML text handed in). A step is one of:
say (TTS text), wav (a file), dtmf (digits), expect (text the bot must say), silence (stay
quiet for S seconds), wait (for ``speech``, ``refer`` or ``bye``), hangup. ``interrupt`` is a
flag on a say/wav/dtmf: act during the bot's prompt instead of waiting for it to finish.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

DTMF_DIGITS = frozenset("0123456789*#ABCD")
WAIT_EVENTS = ("speech", "refer", "bye")
KINDS = ("say", "wav", "dtmf", "expect", "silence", "wait", "hangup")
DEFAULT_INTERRUPT_AFTER_MS = 1000
MAX_SILENCE_S = 600.0


class ScriptError(ValueError):
    """A script that cannot run; the message says where and why."""


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str                 # one of KINDS
    value: str = ""           # text, file, digits, event
    seconds: float = 0.0      # silence
    interrupt: bool = False   # say/wav/dtmf: start while the bot is talking
    interrupt_after_ms: int = DEFAULT_INTERRUPT_AFTER_MS  # ... this long after its speech began
    phrases: tuple[str, ...] = ()   # say: rendered one by one and joined (see Voices.render_phrases)

    def describe(self) -> str:
        if self.kind == "silence":
            return f"silence {self.seconds:g} s"
        if self.kind == "hangup":
            return "hangup"
        prefix = "interrupt + " if self.interrupt else ""
        return f"{prefix}{self.kind} {self.value!r}"


def make_step(kind: str, value: Any = "", *, interrupt: bool = False,
              interrupt_after_ms: int = DEFAULT_INTERRUPT_AFTER_MS, where: str = "") -> Step:
    """One checked step; ScriptError names ``where`` and the problem."""
    at = f"{where}: " if where else ""
    if kind not in KINDS:
        raise ScriptError(f"{at}unknown step {kind!r}; expected one of {', '.join(KINDS)}")
    if interrupt and kind not in ("say", "wav", "dtmf"):
        raise ScriptError(f"{at}'interrupt' applies to a say, wav or dtmf step, not {kind}")
    if not 0 <= interrupt_after_ms <= 60_000:
        raise ScriptError(f"{at}interrupt_after_ms must be within 0..60000, got {interrupt_after_ms}")
    if kind == "hangup":
        return Step("hangup")
    if kind == "silence":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ScriptError(f"{at}silence needs a number of seconds, got {value!r}") from None
        if not 0 < seconds <= MAX_SILENCE_S:
            raise ScriptError(f"{at}silence must be within 0..{MAX_SILENCE_S:g} s, got {seconds:g}")
        return Step("silence", seconds=seconds)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise ScriptError(f"{at}{kind} needs a non-empty text value, got {value!r}")
    text = str(value).strip()
    if kind == "dtmf":
        text = text.upper()
        bad = sorted(set(text) - DTMF_DIGITS)
        if bad:
            raise ScriptError(f"{at}dtmf digits must be 0-9 * # A-D, got {''.join(bad)!r}")
    if kind == "wait" and text not in WAIT_EVENTS:
        raise ScriptError(f"{at}wait is for one of {', '.join(WAIT_EVENTS)}, got {text!r}")
    return Step(kind, text, interrupt=interrupt, interrupt_after_ms=interrupt_after_ms)


@dataclasses.dataclass(frozen=True)
class Script:
    uri: str
    steps: tuple[Step, ...]
    timeout_s: float | None = None


def parse_script(text: str, source: str = "<script>") -> Script:
    """A YAML script::

        call: sip:order_status@127.0.0.1:5060   # optional when the URI is given on the command line
        timeout: 60                             # optional, seconds
        steps:
          - say: "one two three four five"
          - expect: shipped
          - say: {text: "stop", interrupt: true, after_ms: 800}
          - dtmf: "0"
          - wait: refer
          - silence: 7
          - hangup
    """
    data = load_script_yaml(text, source, ("call", "timeout", "steps"))
    steps = tuple(parse_step(item, f"{source}: steps[{index}]") for index, item in enumerate(data["steps"]))
    uri = data.get("call", "")
    if not isinstance(uri, str):
        raise ScriptError(f"{source}: 'call' must be a SIP URI string")
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
        raise ScriptError(f"{source}: 'timeout' must be a positive number of seconds")
    return Script(uri, steps, float(timeout) if timeout is not None else None)


def load_script_yaml(text: str, source: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The script's YAML mapping, with only ``keys`` at the top and a non-empty ``steps`` list."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{source}: expected a mapping with 'steps'")
    unknown = sorted(set(map(str, data)) - set(keys))
    if unknown:
        raise ScriptError(f"{source}: unknown key(s) {', '.join(unknown)}; expected {', '.join(keys)}")
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise ScriptError(f"{source}: 'steps' must be a non-empty list")
    return data


def parse_step(item: Any, where: str) -> Step:
    """One step of a YAML script (``{say: text}``, ``{dtmf: {digits: "0", interrupt: true}}``, ``hangup``...)."""
    if item == "hangup":
        return Step("hangup")
    if not isinstance(item, dict) or len(item) != 1:
        raise ScriptError(f"{where}: a step is a one-key mapping such as {{say: text}} (or 'hangup')")
    ((kind, value),) = item.items()
    if isinstance(value, dict) and kind in ("say", "wav", "dtmf"):
        extra = sorted(set(value) - {"text", "file", "digits", "interrupt", "after_ms"})
        if extra:
            raise ScriptError(f"{where}: unknown key(s) {', '.join(map(str, extra))} in {kind}")
        interrupt = value.get("interrupt", False)
        if not isinstance(interrupt, bool):
            raise ScriptError(f"{where}: 'interrupt' must be true or false")
        after = value.get("after_ms", DEFAULT_INTERRUPT_AFTER_MS)
        if not isinstance(after, int) or isinstance(after, bool):
            raise ScriptError(f"{where}: 'after_ms' must be an integer")
        field = {"say": "text", "wav": "file", "dtmf": "digits"}[kind]
        return make_step(kind, value.get(field, ""), interrupt=interrupt,
                         interrupt_after_ms=after, where=where)
    return make_step(str(kind), value, where=where)


_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces (punctuation dropped), for matching transcripts."""
    return " ".join(_WORD.findall(text.lower()))


def heard_contains(heard: str, expected: str) -> bool:
    """Whether ``expected`` occurs in ``heard`` as whole words, ignoring case and punctuation."""
    want = normalise(expected)
    return bool(want) and f" {want} " in f" {normalise(heard)} "
