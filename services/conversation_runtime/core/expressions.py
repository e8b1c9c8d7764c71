"""CEL conditions and ``set`` expressions, and ``${...}`` templates, compiled once at load.

cel-python evaluates a parsed tree with an activation of names; there is no Python ``eval``.
Only the names the engine puts in the activation exist: the dialog's variables, the event's
fields and ``call`` (caller, callee, headers). ``names`` lists the identifiers an expression
reads, so the loader can refuse references to unknown variables before a call ever runs.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import celpy
import lark
import re2
from celpy import celtypes

_ENV = celpy.Environment()


_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_WORD_OR_DIGITS = re.compile(r"[a-z]+|[0-9]+")


def _only_digits(text: Any) -> celtypes.StringType:
    """``only_digits("order 12 34.")`` == "1234" and ``only_digits("one two oh 4")`` == "1204".

    ASR writes numbers with spaces and punctuation, and sometimes spells digits out as words
    ("One, two, three."), so both are read, in order; other words are ignored.
    """
    out = []
    for token in _WORD_OR_DIGITS.findall(str(text).lower()):
        out.append(token if token.isdigit() else _DIGIT_WORDS.get(token, ""))
    return celtypes.StringType("".join(out))


def _lower(text: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).lower())


# Functions dialogs may call besides CEL's standard ones (pure, deterministic).
FUNCTIONS = {"only_digits": _only_digits, "lower": _lower}
# Macros whose first argument binds a local name (``items.exists(x, x > 1)``).
_BINDING_MACROS = {"all", "exists", "exists_one", "map", "filter"}


class ExpressionError(ValueError):
    """A CEL expression that does not compile; ``column`` is 1-based within the expression."""

    def __init__(self, message: str, column: int = 1, kind: str = "cel_syntax") -> None:
        super().__init__(message)
        self.column = column
        self.kind = kind


_SCALARS = (str, int, float, bool, type(None))
_CACHE_LIMIT = 1024
_ABSENT = object()


@dataclasses.dataclass(frozen=True, eq=False)
class Expression:
    source: str
    program: Any
    names: frozenset[str]
    # CEL is pure, so a result depends only on the values of the names read: results for scalar
    # inputs (a key, a counter) are remembered, which spares cel-python's tree walk (~0.1-0.3 ms).
    _order: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    _cache: dict[tuple[Any, ...], tuple[bool, Any]] = dataclasses.field(default_factory=dict, repr=False)

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """The value as plain Python; raises EvaluationError when CEL cannot compute it."""
        key = tuple(activation.get(name, _ABSENT) for name in self._order)
        cacheable = all(isinstance(v, _SCALARS) or v is _ABSENT for v in key)
        if cacheable:
            # type() in the key: 1, 1.0 and True are equal in Python but not in CEL.
            key = tuple((type(v), v) for v in key)
            hit = self._cache.get(key)
            if hit is not None:
                if hit[0]:
                    return hit[1]
                raise EvaluationError(hit[1])
        try:
            value = self._evaluate(activation)
        except EvaluationError as exc:
            if cacheable:
                self._remember(key, (False, str(exc)))
            raise
        if cacheable:
            self._remember(key, (True, value))
        return value

    def _remember(self, key: tuple[Any, ...], entry: tuple[bool, Any]) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = entry

    def _evaluate(self, activation: Mapping[str, Any]) -> Any:
        cel_activation = {name: celpy.json_to_cel(activation[name]) for name in self.names if name in activation}
        try:
            result = self.program.evaluate(cel_activation)
        except celpy.CELEvalError as exc:
            raise EvaluationError(f"{self.source!r}: {exc.args[0] if exc.args else exc}") from exc
        if isinstance(result, celpy.CELEvalError):
            raise EvaluationError(f"{self.source!r}: {result.args[0] if result.args else result}")
        return cel_to_python(result)

    def test(self, activation: Mapping[str, Any]) -> bool:
        """A condition's truth; an expression that fails or is not a boolean is false."""
        try:
            return self.evaluate(activation) is True
        except EvaluationError:
            return False


class EvaluationError(ValueError):
    """A CEL expression that compiled but failed on these values (a missing field, wrong type)."""


def compile_expression(source: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    try:
        tree = _ENV.compile(source)
    except celpy.CELParseError as exc:
        first = str(exc.args[0]).splitlines()[0] if exc.args else source
        return_col = int(getattr(exc, "column", 1) or 1)
        raise ExpressionError(f"CEL syntax error in {first!r} at column {return_col}", return_col) from exc
    _check_regexes(tree)
    names = frozenset(_free_names(tree))
    return Expression(source, _ENV.program(tree, functions=FUNCTIONS), names, tuple(sorted(names)))


_RE2_QUIET = re2.Options()
_RE2_QUIET.log_errors = False  # the error is reported to the operator; no absl line on stderr


def _check_regexes(tree: lark.Tree) -> None:
    """A literal pattern in ``x.matches("...")`` must be a valid RE2 regular expression."""
    for sub in tree.iter_subtrees():
        if sub.data != "member_dot_arg" or len(sub.children) < 3 or str(sub.children[1]) != "matches":
            continue
        args = sub.children[2]
        literals = [t for t in args.scan_values(lambda v: isinstance(v, lark.Token))] if isinstance(
            args, lark.Tree) else []
        if len(literals) != 1 or literals[0].type != "STRING_LIT":
            continue  # a pattern computed at run time is checked when it runs
        try:
            pattern = ast.literal_eval(str(literals[0]))
        except (ValueError, SyntaxError):
            continue  # CEL escapes Python does not read (rare); checked when it runs
        try:
            re2.compile(pattern, _RE2_QUIET)
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ExpressionError(f"bad regular expression {pattern!r} (RE2: {reason})", kind="bad_regex") from exc


def _free_names(tree: lark.Tree) -> set[str]:
    names: set[str] = set()
    bound: set[str] = set()
    for sub in tree.iter_subtrees():
        if sub.data == "ident" and sub.children and isinstance(sub.children[0], lark.Token):
            names.add(str(sub.children[0]))
        elif sub.data == "member_dot_arg" and len(sub.children) >= 3:
            method = sub.children[1]
            args = sub.children[2]
            if str(method) in _BINDING_MACROS and isinstance(args, lark.Tree) and args.children:
                first = args.children[0]
                for leaf in first.iter_subtrees() if isinstance(first, lark.Tree) else ():
                    if leaf.data == "ident":
                        bound.add(str(leaf.children[0]))
    return names - bound


def cel_to_python(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.BytesType):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, celtypes.ListType | list | tuple):
        return [cel_to_python(v) for v in value]
    if isinstance(value, celtypes.MapType | dict):
        return {str(cel_to_python(k)): cel_to_python(v) for k, v in value.items()}
    return str(value)


@dataclasses.dataclass(frozen=True, eq=False)
class Template:
    """Text with ``${expression}`` parts, e.g. ``"Your order ${order_id} is ${status}."``."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def names(self) -> frozenset[str]:
        out: set[str] = set()
        for part in self.parts:
            if isinstance(part, Expression):
                out |= part.names
        return frozenset(out)

    def render(self, activation: Mapping[str, Any]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                value = part.evaluate(activation)
            except EvaluationError:
                value = ""
            out.append(_to_text(value))
        return "".join(out)


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def compile_template(source: str) -> Template:
    """Split ``source`` at ``${...}``; raises ExpressionError (column within the text) when bad."""
    parts: list[str | Expression] = []
    pos = 0
    while True:
        start = source.find("${", pos)
        if start < 0:
            if pos < len(source):
                parts.append(source[pos:])
            break
        end = source.find("}", start)
        if end < 0:
            raise ExpressionError(f"unterminated '${{' in {source!r}", start + 1)
        if start > pos:
            parts.append(source[pos:start])
        try:
            parts.append(compile_expression(source[start + 2:end]))
        except ExpressionError as exc:
            raise ExpressionError(str(exc), start + 2 + exc.column, exc.kind) from exc
        pos = end + 1
    return Template(source, tuple(parts))
