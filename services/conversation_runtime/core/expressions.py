"""CEL conditions and ``set`` expressions, and ``${...}`` templates, compiled once at load.

cel-python evaluates a parsed tree with an activation of names; there is no Python ``eval``.
Only the names the engine puts in the activation exist: the dialog's variables, the event's
fields and ``call`` (caller, callee, headers). ``names`` lists the identifiers an expression
reads, so the loader can refuse references to unknown variables before a call ever runs.

cel-python walks the parsed tree by recursion (about five Python frames per level) and runs
each step in Python (about 6 µs). Unbounded, 200 nested brackets or 1,000 `!` pass validation
and raise RecursionError on a call's first event, and three nested comprehensions over 30
elements hold the event loop for seconds. So an expression is bounded when it compiles, with
an ExpressionError the loader reports at file:line:col: at most ``MAX_EXPRESSION_CHARS``
characters, a parse tree at most ``MAX_NESTING`` levels deep, comprehensions (``all``,
``exists``, ``exists_one``, ``map``, ``filter``) nested at most ``MAX_NESTED_COMPREHENSIONS``
deep, no ``reduce`` (a cel-python extension that can double a value at each step), and over
literal lists at most ``MAX_STEPS`` steps. Every evaluation then runs on a budget of
``MAX_STEPS`` steps (about 60 ms; comprehensions over lists that arrive at run time, from a
backend say, are only known then): an expression that spends it fails, as one with a missing
field does, and a warning is logged.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import celpy
import lark
import re2
from celpy import celtypes
from celpy.evaluation import Evaluator
from dialtone.language import say_as

log = logging.getLogger(__name__)

MAX_EXPRESSION_CHARS = 1000
MAX_NESTING = 100        # parse-tree levels: a pair of brackets is about 10, an operator 1 or 2
MAX_NESTED_COMPREHENSIONS = 2
MAX_STEPS = 10_000       # parse-tree nodes visited in one evaluation
# A rendered template (a say's text, a transfer target, a payload string) is cut here: it must fit
# the runtime's gRPC messages (256 kB), and 16,384 characters are a quarter of an hour of speech.
MAX_RENDERED_CHARS = 16_384


class _StepsSpent(Exception):  # noqa: N818 - internal; cel-python catches only its own and builtin errors
    pass


class _Budget:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise _StepsSpent


class _BudgetedEvaluator(Evaluator):
    """cel-python's evaluator, counting each node it visits (comprehension bodies included)."""

    def __init__(self, ast: lark.Tree, activation: Any, budget: _Budget) -> None:
        super().__init__(ast, activation)
        self.budget = budget

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        return _BudgetedEvaluator(ast, self.activation, self.budget)

    def visit(self, tree: lark.Tree) -> Any:
        self.budget.spend(1)
        return super().visit(tree)

    def visit_children(self, tree: lark.Tree) -> list[Any]:
        self.budget.spend(len(tree.children))
        return super().visit_children(tree)


class _BudgetedRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _BudgetedEvaluator(self.ast, self.new_activation(), _Budget(MAX_STEPS)).evaluate(context)


_ENV = celpy.Environment(runner_class=_BudgetedRunner)


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
def _upper(text: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).upper())


def _trim(text: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).strip())


def _replace(text: Any, old: Any, new: Any) -> celtypes.StringType:
    return celtypes.StringType(str(text).replace(str(old), str(new))[:MAX_RENDERED_CHARS])


def _substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType:
    value = str(text)
    return celtypes.StringType(value[int(start):] if end is None else value[int(start):int(end)])


def _split(text: Any, separator: Any) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(text).split(str(separator))[:256]])


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_RE = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(spec: str) -> list[tuple[set[str], int, int]]:
    """"mon-fri 09:00-17:30, sat 10:00-14:00" -> [(days, start minute, end minute)]; ValueError when bad."""
    out = []
    for part in str(spec).lower().split(","):
        match = _HOURS_RE.match(part)
        short = [d[:3] for d in _DAYS]
        if match is None or match[1] not in short or (match[2] and match[2] not in short):
            raise ValueError(f"opening hours {part.strip()!r}: write them as 'mon-fri 09:00-17:30, sat 10:00-14:00'")
        first = short.index(match[1])
        last = short.index(match[2]) if match[2] else first
        days = {_DAYS[(first + i) % 7] for i in range((last - first) % 7 + 1)}
        start, end = int(match[3]) * 60 + int(match[4]), int(match[5]) * 60 + int(match[6])
        if not (0 <= start < end <= 24 * 60):
            raise ValueError(f"opening hours {part.strip()!r}: the start must be before the end, within a day")
        out.append((days, start, end))
    return out


def _within_hours(now: Any, spec: Any) -> celtypes.BoolType:
    """``within_hours(now, "mon-fri 09:00-17:30, sat 10:00-14:00")``: is ``now`` (the dialog's clock)
    inside the opening hours?"""
    try:
        periods = parse_hours(str(spec))
        weekday, minute = str(now["weekday"]), int(now["hour"]) * 60 + int(now["minute"])
    except (ValueError, KeyError, TypeError) as exc:
        raise celpy.CELEvalError(str(exc)) from exc
    return celtypes.BoolType(any(weekday in days and start <= minute < end for days, start, end in periods))


FUNCTIONS = {"only_digits": _only_digits, "lower": _lower, "upper": _upper, "trim": _trim, "replace": _replace,
             "substring": _substring, "split": _split, "within_hours": _within_hours}

# What CEL itself provides (cel-python's standard set), for the load-time check of function names.
_CEL_FUNCTIONS = {"size", "int", "uint", "double", "string", "bytes", "bool", "type", "has", "dyn", "timestamp",
                  "duration", "matches"}
_CEL_METHODS = {"contains", "startsWith", "endsWith", "matches", "size", "getDate", "getDayOfMonth", "getDayOfWeek",
                "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes", "getMonth",
                "getSeconds", "all", "exists", "exists_one", "map", "filter"}
# Names people reach for from other languages.
_FUNCTION_ALIASES = {"len": "size", "length": "size", "count": "size", "str": "string", "float": "double",
                     "toLowerCase": "lower", "toUpperCase": "upper", "strip": "trim", "startswith": "startsWith",
                     "endswith": "endsWith", "includes": "contains", "substr": "substring"}
# Macros whose first argument binds a local name (``items.exists(x, x > 1)``): comprehensions.
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
        except _StepsSpent:
            log.warning("expression %s gave up after %d steps (the limit; see docs/dialogs.md)",
                        _quote(self.source), MAX_STEPS)
            raise EvaluationError(f"{_quote(self.source)}: more than {MAX_STEPS} steps") from None
        except celpy.CELEvalError as exc:
            raise EvaluationError(f"{self.source!r}: {exc.args[0] if exc.args else exc}") from exc
        if isinstance(result, celpy.CELEvalError):
            raise EvaluationError(f"{self.source!r}: {result.args[0] if result.args else result}")
        return cel_to_python(result)

    def test(self, activation: Mapping[str, Any]) -> bool:
        """A condition's truth; an expression that fails or is not a boolean is false."""
        return self.check(activation)[0]

    def check(self, activation: Mapping[str, Any]) -> tuple[bool, str]:
        """(truth, why it could not be computed: "" when it could). False with a reason for a failure
        (a missing field, a wrong type) or a value that is not true/false."""
        try:
            value = self.evaluate(activation)
        except EvaluationError as exc:
            return False, str(exc)
        if not isinstance(value, bool):
            return False, f"{self.source!r} gave {type(value).__name__} {str(value)[:40]!r}, not true or false"
        return value, ""


class EvaluationError(ValueError):
    """A CEL expression that compiled but failed on these values (a missing field, wrong type)."""


def compile_expression(source: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is {len(source)} characters long; the limit is {MAX_EXPRESSION_CHARS} "
                              "(move the logic to the backend, or split it into set steps)", kind="expression_too_long")
    try:
        tree = _ENV.compile(source)
    except celpy.CELParseError as exc:
        first = str(exc.args[0]).splitlines()[0] if exc.args else source
        return_col = int(getattr(exc, "column", 1) or 1)
        raise ExpressionError(f"CEL syntax error in {first!r} at column {return_col}", return_col) from exc
    _check_size(tree)  # first: the checks after it walk the tree by recursion
    _check_regexes(tree)
    names = frozenset(_free_names(tree))
    return Expression(source, _ENV.program(tree, functions=FUNCTIONS), names, tuple(sorted(names)))


def _quote(source: str) -> str:
    return repr(source) if len(source) <= 64 else repr(source[:64]) + "..."


def _macro(node: lark.Tree) -> tuple[str, lark.Tree | None, lark.Tree | None] | None:
    """(name, target, body) of ``target.name(x, body)``; None when ``node`` is no such call."""
    if node.data != "member_dot_arg" or len(node.children) < 3:
        return None
    name, args = str(node.children[1]), node.children[2]
    if name not in _BINDING_MACROS and name != "reduce":
        return None
    body = args.children[-1] if isinstance(args, lark.Tree) and args.children else None
    return name, node.children[0], body if isinstance(body, lark.Tree) else None


def _literal_list_size(node: lark.Tree) -> int | None:
    """The number of elements when ``node`` is a list literal (through its one-child wrappers)."""
    while node.data != "list_lit":
        trees = [c for c in node.children if isinstance(c, lark.Tree)]
        if len(trees) != 1 or len(node.children) != 1:
            return None
        node = trees[0]
    items = [c for c in node.children if isinstance(c, lark.Tree)]
    return len(items[0].children) if items else 0


def _check_size(tree: lark.Tree) -> None:
    """Nesting, nested comprehensions and the steps over literal lists, without recursion."""
    order: list[lark.Tree] = []
    depth: dict[int, int] = {id(tree): 1}
    loops: dict[int, int] = {id(tree): 0}   # comprehensions this node is in the body of
    bodies: dict[int, int] = {}             # a comprehension's body: the count for it
    stack = [tree]
    while stack:
        node = stack.pop()
        order.append(node)
        level, inside = depth[id(node)], loops[id(node)]
        if level > MAX_NESTING:
            raise ExpressionError(f"the expression nests more than {MAX_NESTING} levels deep as CEL reads it "
                                  "(each pair of brackets is about 10, each operator 1 or 2): split it into set steps",
                                  kind="expression_too_deep")
        macro = _macro(node)
        if macro is not None and macro[0] == "reduce":
            raise ExpressionError("reduce() is not supported (it can double a value at each step); use map, "
                                  "filter, all or exists", kind="expression_too_costly")
        body = macro[2] if macro is not None else None
        if body is not None and inside + 1 > MAX_NESTED_COMPREHENSIONS:
            raise ExpressionError(f"more than {MAX_NESTED_COMPREHENSIONS} comprehensions (all, exists, exists_one, "
                                  "map, filter) inside each other: each multiplies the work of the ones inside it",
                                  kind="expression_too_costly")
        if body is not None:
            bodies[id(body)] = inside + 1
        for child in node.children:
            if isinstance(child, lark.Tree):
                depth[id(child)] = level + 1
                loops[id(child)] = bodies.get(id(child), inside)
                stack.append(child)
    # Steps over literal lists, children before parents: a comprehension costs its body once per element.
    steps: dict[int, int] = {}
    for node in reversed(order):
        total = 1 + sum(steps[id(c)] for c in node.children if isinstance(c, lark.Tree))
        macro = _macro(node)
        if macro is not None and macro[2] is not None:
            size = _literal_list_size(macro[1]) if isinstance(macro[1], lark.Tree) else None
            total += ((size or 1) - 1) * steps[id(macro[2])]
        steps[id(node)] = total
    if steps[id(tree)] > MAX_STEPS:
        raise ExpressionError(f"evaluating the expression takes about {steps[id(tree)]} steps over its lists; the "
                              f"limit is {MAX_STEPS}", kind="expression_too_costly")


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
    """Text with ``${expression}`` parts, e.g. ``"Your order ${order_id} is ${status}."``; a part may
    end in a say-as filter, ``${rx | digits}``, that reads the value as words for the TTS."""

    source: str
    parts: tuple[str | Expression | SaidAs, ...]

    @property
    def names(self) -> frozenset[str]:
        out: set[str] = set()
        for part in self.parts:
            if not isinstance(part, str):
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
        return "".join(out)[:MAX_RENDERED_CHARS]


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


@dataclasses.dataclass(frozen=True)
class SaidAs:
    """``${expression | filter}``: the value rendered by a dialtone.language say-as filter (a value the
    filter cannot read, such as letters through ``| number``, is said as plain text)."""

    expression: Expression
    filter: str

    @property
    def names(self) -> frozenset[str]:
        return self.expression.names

    @property
    def source(self) -> str:
        return f"{self.expression.source} | {self.filter}"

    def evaluate(self, activation: Mapping[str, Any]) -> str:
        value = self.expression.evaluate(activation)
        if value is None or value == "":
            return ""
        try:
            return say_as.render(value, self.filter)
        except ValueError:
            return _to_text(value)


# "expr | filter" (CEL has no single '|', so the last one that is not '||' is the filter's)
_FILTER_RE = re.compile(r"^(?P<expr>.*?)(?<!\|)\|(?!\|)\s*(?P<filter>[A-Za-z_]\w*)\s*$", re.DOTALL)


def _compile_part(text: str) -> Expression | SaidAs:
    match = _FILTER_RE.match(text)
    if match is None:
        return compile_expression(text)
    name = match["filter"]
    if name not in say_as.SAY_AS_FILTERS:
        raise ExpressionError(f"unknown say-as filter '{name}'; filters: {', '.join(say_as.SAY_AS_FILTERS)}",
                              match.start("filter") + 1, "unknown_filter")
    return SaidAs(compile_expression(match["expr"]), name)


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
            parts.append(_compile_part(source[start + 2:end]))
        except ExpressionError as exc:
            raise ExpressionError(str(exc), start + 2 + exc.column, exc.kind) from exc
        pos = end + 1
    return Template(source, tuple(parts))


# --- load-time checks of functions and types ------------------------------------------------------

_LITERAL_TYPES = {"INT_LIT": "int", "UINT_LIT": "int", "FLOAT_LIT": "double", "STRING_LIT": "string",
                  "MLSTRING_LIT": "string", "BYTES_LIT": "bytes", "BOOL_LIT": "bool", "NULL_LIT": "null"}
_NUMBERS = {"int", "double"}
_ARITHMETIC = {"addition_add": "+", "addition_sub": "-", "multiplication_mul": "*", "multiplication_div": "/",
               "multiplication_mod": "%"}
_STRING_METHODS = {"contains", "startsWith", "endsWith", "matches", "lower", "upper", "trim", "replace", "substring",
                   "split"}
_COMPARISONS = {"relation_eq": "==", "relation_ne": "!=", "relation_lt": "<", "relation_le": "<=",
                "relation_gt": ">", "relation_ge": ">="}


_VALUE_TYPES = ((bool, "bool"), (int, "int"), (float, "double"), (str, "string"), (list, "list"), (dict, "map"))


def type_of_value(value: Any) -> str:
    """A variable's CEL type from its starting value; "dyn" when it says nothing (null). bool before
    int: True is an int to Python."""
    return next((name for kind, name in _VALUE_TYPES if isinstance(value, kind)), "dyn")


def check_expression(source: str, types: Mapping[str, str]) -> list[str]:
    """What cel-python would only fail on at run time, found at load: unknown functions (with a
    suggestion) and comparisons of a name with a literal of another type (``digit == 0``, where digit
    is a string). ``types`` maps names to CEL types ("string", "int", "double", "bool", "list", "map",
    "dyn"); a name without one is not checked. Returns the problems, in the operator's words."""
    try:
        tree = _ENV.compile(source)
    except celpy.CELParseError:
        return []  # compile_expression reports syntax
    problems: list[str] = []
    known_functions = _CEL_FUNCTIONS | set(FUNCTIONS)
    known_methods = _CEL_METHODS | set(FUNCTIONS)
    for node in tree.iter_subtrees_topdown():
        if node.data == "ident_arg" and node.children:
            name = str(node.children[0])
            if name == "within_hours":
                problems += _check_hours_literal(node)
            if name == "size" and len(node.children) > 1:
                argument = _operand(node.children[1], types)
                if argument is not None and argument[1] in ("int", "double", "bool", "null"):
                    problems.append(f"size() counts the characters of a string or the items of a list or map; "
                                    f"{argument[0]} is {_KIND_WORDS[argument[1]]}")
            if name not in known_functions:
                problems.append(f"unknown function '{name}()'{_suggest(name, known_functions)}; functions: "
                                f"{', '.join(sorted(known_functions))}")
        elif node.data == "member_dot_arg" and len(node.children) >= 2:
            name = str(node.children[1])
            target = _operand(node.children[0], types)
            if name in _STRING_METHODS and target is not None and target[1] not in ("string", "bytes"):
                hint = f": convert with string({target[0].strip(chr(39))})" if target[1] in _NUMBERS else ""
                problems.append(f"'.{name}()' works on strings; {target[0]} is "
                                f"{_KIND_WORDS.get(target[1], target[1])}{hint}")
            if name not in known_methods:
                problems.append(f"unknown method '.{name}()'{_suggest(name, known_methods)}; methods: "
                                f"{', '.join(sorted(known_methods))}")
        elif node.data in ("addition", "multiplication", "relation") and len(node.children) == 2 \
                and isinstance(node.children[0], lark.Tree) and node.children[0].data in _BINARY:
            operator, judge_pair = _BINARY[node.children[0].data]
            left = _operand(node.children[0].children[0] if node.children[0].children else None, types)
            problem = judge_pair(left, _operand(node.children[1], types), operator)
            if problem:
                problems.append(problem)
    return problems


def _check_hours_literal(node: lark.Tree) -> list[str]:
    literals = [t for t in node.scan_values(lambda v: isinstance(v, lark.Token) and v.type == "STRING_LIT")]
    for literal in literals:
        try:
            parse_hours(ast.literal_eval(str(literal)))
        except (ValueError, SyntaxError) as exc:
            return [f"within_hours: {exc}"]
    return []


def _suggest(name: str, known: set[str]) -> str:
    close = _FUNCTION_ALIASES.get(name) or next(iter(difflib.get_close_matches(name, sorted(known), n=1)), None)
    return f" (did you mean '{close}()'?)" if close else ""


def _operand(node: Any, types: Mapping[str, str]) -> tuple[str, str] | None:
    """(what it is, its type) when ``node`` is a bare name or a literal, through one-child wrappers."""
    while isinstance(node, lark.Tree):
        if node.data == "ident" and node.children:
            name = str(node.children[0])
            kind = types.get(name)
            return (f"'{name}'", kind) if kind and kind != "dyn" else None
        if node.data == "literal" and node.children:
            token = node.children[0]
            kind = _LITERAL_TYPES.get(getattr(token, "type", ""))
            return (str(token), kind) if kind else None
        trees = [c for c in node.children if isinstance(c, lark.Tree)]
        if len(node.children) != 1 or len(trees) != 1:
            return None
        node = trees[0]
    return None


_KIND_WORDS = {"string": "a string", "int": "a whole number", "double": "a number", "bool": "true or false",
               "list": "a list", "map": "a map", "bytes": "bytes", "null": "null"}


def _arithmetic_mismatch(left: tuple[str, str] | None, right: tuple[str, str] | None, operator: str) -> str | None:
    if left is None or right is None:
        return None
    (left_text, left_kind), (right_text, right_kind) = left, right
    kinds = {left_kind, right_kind}
    if kinds <= _NUMBERS or (operator == "+" and len(kinds) == 1 and kinds <= {"string", "list", "bytes"}):
        return None
    if operator == "+" and "string" in kinds and kinds & _NUMBERS:
        return (f"{left_text} is {_KIND_WORDS[left_kind]} and {right_text} is {_KIND_WORDS[right_kind]}: "
                "'+' does not join them; convert one with string(...) or int(...)")
    return (f"'{operator}' needs numbers (or, for '+', two strings or two lists): {left_text} is "
            f"{_KIND_WORDS.get(left_kind, left_kind)} and {right_text} is {_KIND_WORDS.get(right_kind, right_kind)}")


def _mismatch(left: tuple[str, str] | None, right: tuple[str, str] | None, operator: str) -> str | None:
    if left is None or right is None:
        return None
    (left_text, left_kind), (right_text, right_kind) = left, right
    if left_kind == right_kind or {left_kind, right_kind} <= _NUMBERS or "null" in (left_kind, right_kind):
        return None
    hint = ""
    if left_kind == "string" and right_kind in _NUMBERS:
        hint = f": compare with \"{right_text}\" (a string), or convert with int({left_text.strip(chr(39))})"
    elif right_kind == "string" and left_kind in _NUMBERS:
        hint = f": compare with {right_text.strip(chr(34))} (a number, without quotes)"
    return (f"{left_text} is {_KIND_WORDS.get(left_kind, left_kind)} and {right_text} is "
            f"{_KIND_WORDS.get(right_kind, right_kind)}, so '{operator}' between them is never true{hint}")


# The binary operators the load-time check reads: the tree node of each, its sign, and its judge.
_BINARY = {**{node: (sign, _arithmetic_mismatch) for node, sign in _ARITHMETIC.items()},
           **{node: (sign, _mismatch) for node, sign in _COMPARISONS.items()}}
