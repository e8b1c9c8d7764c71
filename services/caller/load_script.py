"""A load script: a caller's script whose lines change on every call (``dialtone load --script``).

The YAML of ``dialtone call --script`` plus ``vary``, values drawn afresh for each call and put
into the steps wherever ``{name}`` appears::

    call: sip:order_status@127.0.0.1:5060    # optional; the URI on the command line wins
    timeout: 90                              # optional, seconds per call
    vary:
      order: {digits: 5}                     # 5 digits 1-9, never the same twice in one run
      name: {choice: [Alice, Bob, Carol]}    # one of these
    steps:
      - say: "my name is {name}"
      - say: "{order}"                       # spoken digit by digit: "four seven two one five"
      - dtmf: "{order}#"                     # keyed: 47215#
      - wav: "lines/{name}.wav"              # a WAV file per value
      - wait: bye

In a ``say`` line each value is a phrase of its own and every digit a word of its own, rendered
once and reused (``Voices.render_phrases``): a thousand different order numbers cost ten renderings.
Elsewhere (dtmf, expect, wav file names) a value goes in as it is. Pure data and parsing.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

from dialtone.caller.script import ScriptError, Step, load_script_yaml, parse_step

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_DIGITS = 12
MAX_CHOICES = 1000
MAX_VALUE_LENGTH = 200
UNIQUE_DRAWS = 50      # tries for a value not used yet in this run before a repeat is accepted
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# `dialtone load` without --script: the packaged order_status dialog with a fresh order number per
# call (digits 1-9: the example backend finds every such order), then the dialog reads the status
# out and hangs up.
DEFAULT_SCRIPT = """
timeout: 90
vary:
  order: {digits: 5}
steps:
  - say: "{order}"
  - wait: bye
"""
DEFAULT_URI = "sip:order_status@127.0.0.1:5060"


@dataclasses.dataclass(frozen=True)
class Vary:
    """How one value is drawn: ``digits`` (``length`` digits 1-9) or one of ``choices``."""

    kind: str
    length: int = 0
    choices: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        if self.kind == "digits":
            return "".join(rng.choice("123456789") for _ in range(self.length))
        return rng.choice(self.choices)

    def phrases(self, value: str) -> tuple[str, ...]:
        """How ``value`` is said: digit by digit, or as one phrase."""
        if self.kind == "digits":
            return tuple(DIGIT_WORDS[int(d)] for d in value)
        return (value,)

    def every_phrase(self) -> tuple[str, ...]:
        return DIGIT_WORDS[1:] if self.kind == "digits" else self.choices


@dataclasses.dataclass(frozen=True)
class LoadScript:
    uri: str
    timeout_s: float | None
    vary: dict[str, Vary]
    items: tuple[Any, ...]           # the YAML steps, placeholders still in
    source: str = "<script>"

    def draw(self, rng: random.Random, used: set[tuple[str, str]] | None = None) -> dict[str, str]:
        """Fresh values for one call; with ``used``, a value already drawn in this run is avoided
        (and recorded), as long as ``UNIQUE_DRAWS`` tries find one."""
        values = {}
        for name, vary in self.vary.items():
            value = vary.draw(rng)
            if used is not None:
                for _ in range(UNIQUE_DRAWS):
                    if (name, value) not in used:
                        break
                    value = vary.draw(rng)
                used.add((name, value))
            values[name] = value
        return values

    def steps_for(self, values: dict[str, str]) -> tuple[Step, ...]:
        """The steps of one call, with ``values`` put in. ScriptError when a step is not valid then."""
        return tuple(self._step(item, values, f"{self.source}: steps[{index}]")
                     for index, item in enumerate(self.items))

    def expects(self) -> bool:
        """Whether a step checks what the bot said (and so the caller must transcribe)."""
        return any(isinstance(item, dict) and "expect" in item for item in self.items)

    def phrases(self) -> tuple[str, ...]:
        """Every phrase a say step can need (to render them all before the first call)."""
        found: dict[str, None] = {}
        for item in self.items:
            template = _say_template(item)
            if template is None:
                continue
            if not _PLACEHOLDER.search(template):
                found[template.strip()] = None
                continue
            for literal in _PLACEHOLDER.split(template)[::2]:
                if literal.strip():
                    found[literal.strip()] = None
            for name in _PLACEHOLDER.findall(template):
                found.update(dict.fromkeys(self.vary[name].every_phrase()))
        return tuple(found)

    def _step(self, item: Any, values: dict[str, str], where: str) -> Step:
        step = parse_step(_substitute(item, values, where), where)
        template = _say_template(item)
        if template is None or not _PLACEHOLDER.search(template):
            return step
        phrases: list[str] = []
        pieces = _PLACEHOLDER.split(template)
        for position, piece in enumerate(pieces):
            if position % 2 == 0:
                if piece.strip():
                    phrases.append(piece.strip())
            else:
                phrases.extend(self.vary[piece].phrases(values[piece]))
        return dataclasses.replace(step, value=" ".join(phrases), phrases=tuple(phrases))


def parse_load_script(text: str, source: str = "<script>") -> LoadScript:
    """A load script (see the module docstring); ScriptError says where and why when it is not valid."""
    data = load_script_yaml(text, source, ("call", "timeout", "vary", "steps"))
    uri = data.get("call", "")
    if not isinstance(uri, str):
        raise ScriptError(f"{source}: 'call' must be a SIP URI string")
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
        raise ScriptError(f"{source}: 'timeout' must be a positive number of seconds")
    vary_data = data.get("vary") or {}
    if not isinstance(vary_data, dict):
        raise ScriptError(f"{source}: 'vary' must be a mapping of name: {{digits: N}} or {{choice: [...]}}")
    vary = {str(name): _parse_vary(spec, f"{source}: vary.{name}") for name, spec in vary_data.items()}
    for name in vary:
        if not _PLACEHOLDER.fullmatch("{" + name + "}"):
            raise ScriptError(f"{source}: vary name {name[:40]!r} must be letters, digits and _ (not first a digit)")
    script = LoadScript(uri, float(timeout) if timeout is not None else None, vary, tuple(data["steps"]), source)
    script.steps_for(script.draw(random.Random(0)))    # every step valid with some values drawn
    return script


def _parse_vary(spec: Any, where: str) -> Vary:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ScriptError(f"{where}: expected {{digits: N}} or {{choice: [values]}}")
    ((kind, value),) = spec.items()
    if kind == "digits":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DIGITS:
            raise ScriptError(f"{where}: digits must be a whole number within 1..{MAX_DIGITS}")
        return Vary("digits", length=value)
    if kind == "choice":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHOICES:
            raise ScriptError(f"{where}: choice must be a list of 1..{MAX_CHOICES} values")
        choices = []
        for entry in value:
            if not isinstance(entry, str | int) or isinstance(entry, bool) or not str(entry).strip() \
                    or len(str(entry)) > MAX_VALUE_LENGTH:
                raise ScriptError(f"{where}: each choice must be a non-empty text of at most "
                                  f"{MAX_VALUE_LENGTH} characters")
            choices.append(str(entry).strip())
        return Vary("choice", choices=tuple(choices))
    raise ScriptError(f"{where}: unknown kind {str(kind)[:40]!r}; expected digits or choice")


def _say_template(item: Any) -> str | None:
    """The text of a say step (plain or ``{text: ...}``), else None."""
    if not isinstance(item, dict) or len(item) != 1 or "say" not in item:
        return None
    value = item["say"]
    if isinstance(value, dict):
        value = value.get("text", "")
    return value if isinstance(value, str) else None


def _substitute(item: Any, values: dict[str, str], where: str) -> Any:
    if isinstance(item, str):
        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise ScriptError(f"{where}: {{{name}}} is not a name under 'vary'")
            return values[name]
        return _PLACEHOLDER.sub(value_of, item)
    if isinstance(item, dict):
        return {key: _substitute(value, values, where) for key, value in item.items()}
    return item
