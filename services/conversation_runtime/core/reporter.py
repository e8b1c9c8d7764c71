"""Reporting problems in a dialog file, and reading its typed values with their locations."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from dialtone.conversation_runtime.core.durations import parse_duration
from dialtone.conversation_runtime.core.errors import DialogError
from dialtone.conversation_runtime.core.expressions import (
    Expression,
    ExpressionError,
    Template,
    check_expression,
    compile_expression,
    compile_template,
)
from dialtone.conversation_runtime.core.located import Loc
from dialtone.conversation_runtime.core.model import EVENT_FIELD_TYPES

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Reporter:
    """Collects every DialogError of one file (with the state being read) instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[DialogError] = []
        self.warnings: list[DialogError] = []   # printed by validate; the dialog still loads
        self.state: str | None = None
        self.variables: set[str] = set()
        self.intents: dict[str, object] = {}
        self.variable_types: dict[str, str] = {}   # declared variables and slots: their CEL types
        self.flows: dict[str, dict[str, Loc]] = {}
        self.flow_prefix = ""                        # while a flow's states are expanded: "caller."

    def error(self, loc: Loc | tuple[int, int], kind: str, message: str, at_key: bool = False) -> None:
        if isinstance(loc, Loc):
            line, col = (loc.key_line, loc.key_col) if at_key and loc.key_line else (loc.line, loc.col)
        else:
            line, col = loc
        self.errors.append(DialogError(self.file, line, col, kind, message, self.state))

    def warn(self, line: int, col: int, kind: str, message: str) -> None:
        self.warnings.append(DialogError(self.file, line, col, kind, message, self.state))

    def mapping(self, loc: Loc, what: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Loc]:
        if not isinstance(loc.value, dict):
            self.error(loc, "wrong_type", f"{what} must be a mapping, got {kind_of(loc.value)}")
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
        self.error(loc, "wrong_type", f"{what} must be a non-empty string, got {kind_of(loc.value)}")
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
            self.error(loc, "wrong_type", f"{what} must be a CEL expression (a string), got {kind_of(loc.value)}")
            return None
        try:
            expr = compile_expression(source)
        except ExpressionError as exc:
            self.error(loc, exc.kind, f"{what}: {exc}")
            return None
        self.check_names(loc, what, expr.names, names)
        self.check_types(loc, what, expr.source, names)
        return expr

    def template(self, loc: Loc, what: str, names: set[str]) -> Template | None:
        if not isinstance(loc.value, str):
            self.error(loc, "wrong_type", f"{what} must be a string, got {kind_of(loc.value)}")
            return None
        try:
            template = compile_template(loc.value)
        except ExpressionError as exc:
            self.error(loc, exc.kind, f"{what}: {exc}")
            return None
        self.check_names(loc, what, template.names, names)
        for part in template.parts:
            if not isinstance(part, str):
                source = part.expression.source if hasattr(part, "expression") else part.source
                self.check_types(loc, what, source, names)
        return template

    def check_types(self, loc: Loc, what: str, source: str, names: set[str]) -> None:
        """Unknown functions and comparisons that can never hold, which CEL would only find on a call."""
        types = {name: self.variable_types.get(name) or EVENT_FIELD_TYPES.get(name, "dyn") for name in names}
        for problem in check_expression(source, types):
            kind = "unknown_function" if problem.startswith("unknown") else "type_mismatch"
            self.error(loc, kind, f"{what}: {problem}")

    def check_names(self, loc: Loc, what: str, used: frozenset[str], names: set[str]) -> None:
        for name in sorted(used - names):
            self.error(loc, "unknown_variable",
                       f"{what} refers to unknown name '{name}'; known here: {', '.join(sorted(names))}")



def kind_of(value: object) -> str:
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


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for a misspelled name, or ""."""
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
