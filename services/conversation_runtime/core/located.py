"""YAML read into values that remember where they were written (line and column, 1-based).

PyYAML's composed nodes carry marks; we turn them into ``Loc`` values so validation can point
an operator at the exact ``file:line:col`` of a problem. Duplicate keys, which PyYAML silently
accepts, are reported here.

Composing and converting recurse once per level of nesting, and an alias (``*name``) is
converted again wherever it is used: nesting deeper than ``MAX_DEPTH`` (checked first, on the
event stream, without recursion) and more than ``MAX_NODES`` values once aliases are expanded
are refused as YAML errors, instead of a RecursionError or a loader that never finishes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_NODES = 100_000


@dataclasses.dataclass(frozen=True)
class Loc:
    """A YAML value with its position. ``value`` is a dict[str, Loc], list[Loc] or a scalar."""

    value: Any
    line: int
    col: int
    key_line: int = 0  # where the key naming this value was written (0 when none)
    key_col: int = 0

    def plain(self) -> Any:
        """The value without positions."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


class YamlSyntaxError(Exception):
    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.message = message


_OPENERS = {"a quoted scalar": "quote", "a flow sequence": "'['", "a flow mapping": "'{'"}


def _plain_yaml_error(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """PyYAML's message in an operator's words, at the line where the mistake is (where a quote or
    bracket was opened, not the end of the file where the parser noticed)."""
    problem, context = exc.problem or "", exc.context or ""
    at = exc.problem_mark or exc.context_mark
    line, col = (at.line + 1, at.column + 1) if at else (1, 1)
    opened = exc.context_mark
    for what, opener in _OPENERS.items():
        if context.endswith(what) and opened is not None and (
                "end of stream" in problem or "document separator" in problem or what != "a quoted scalar"):
            return (opened.line + 1, opened.column + 1,
                    f"invalid YAML: the {opener} opened here is never closed (the parser reached line {line} "
                    "looking for its end): close it on this line")
    quote_line = _unbalanced_quote_before(text, line)
    if quote_line:
        return (quote_line, 1, f"invalid YAML: the quote opened on line {quote_line} is closed only on line {line}, "
                "so the lines between became one text: close it on its own line")
    if "expected <block end>" in problem or "expected <block mapping start>" in problem:
        shown = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        indent = len(shown) - len(shown.lstrip(" "))
        return (line, col, f"invalid YAML: line {line} is indented by {indent} spaces, which lines up with none of "
                "the lines above it: indent it like the other keys of the mapping it belongs to")
    if "mapping values are not allowed here" in problem:
        return (line, col, "invalid YAML: a 'key: value' where plain text was expected: is this line indented "
                "further than the keys beside it, or is there a ': ' in text that needs quotes?")
    if "'\\t'" in problem or "\t" in problem:
        return (line, col, "invalid YAML: a tab character; YAML indents with spaces only")
    where = f" ({context} at line {opened.line + 1})" if context and opened is not None else ""
    return line, col, f"invalid YAML: {problem or context}{where}"


def _quotes(line: str) -> tuple[int, int]:
    """Unescaped double quotes, and single quotes outside double-quoted text, in one line (a comment
    after # ignored)."""
    double = single = 0
    inside_double = False
    previous = ""
    for char in line:
        if char == "#" and not inside_double and single % 2 == 0 and previous in ("", " "):
            break
        if char == '"' and previous != "\\" and single % 2 == 0:
            double += 1
            inside_double = not inside_double
        elif char == "'" and not inside_double:
            single += 1
        previous = char
    return double, single


def _unbalanced_quote_before(text: str, error_line: int) -> int:
    """The line where a quote was left open, when the parser failed later on the line that closes it:
    that line holds an odd number of one kind of quote, the failing line one of that kind, and no line
    between holds any."""
    lines = text.splitlines()
    if not 0 < error_line <= len(lines):
        return 0
    closing = lines[error_line - 1]   # read from inside the open quote: any quote of its kind closes it
    for number in range(error_line - 1, 0, -1):
        counts = _quotes(lines[number - 1])
        for kind, mark in ((0, '"'), (1, "'")):
            if counts[kind] % 2 and mark in closing:
                return number
        if any(counts):
            return 0
    return 0


def load_located(text: str) -> tuple[Loc | None, list[tuple[int, int, str]]]:
    """Parse ``text``; return the located tree and duplicate-key problems (line, col, message)."""
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(*_plain_yaml_error(exc, text)) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, 1, f"invalid YAML: {exc}") from exc
    if node is None:
        return None, []
    problems: list[tuple[int, int, str]] = []
    constructor = yaml.constructor.SafeConstructor()
    return _convert(node, constructor, problems, [MAX_NODES]), problems


def _check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise YamlSyntaxError(mark.line + 1, mark.column + 1,
                                      f"invalid YAML: lists and mappings nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _convert(node: yaml.Node, constructor: yaml.constructor.SafeConstructor, problems: list[tuple[int, int, str]],
             left: list[int], key_mark: yaml.Mark | None = None) -> Loc:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    left[0] -= 1
    if left[0] < 0:
        raise YamlSyntaxError(line, col, f"invalid YAML: more than {MAX_NODES} values once aliases (*name) are "
                                         "expanded")
    key_line, key_col = (key_mark.line + 1, key_mark.column + 1) if key_mark else (0, 0)
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)
        out: dict[str, Loc] = {}
        for key_node, value_node in node.value:
            key = str(constructor.construct_object(key_node, deep=True))
            if key in out:
                problems.append((key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                 f"duplicate key '{key}'"))
                continue
            out[key] = _convert(value_node, constructor, problems, left, key_node.start_mark)
        return Loc(out, line, col, key_line, key_col)
    if isinstance(node, yaml.SequenceNode):
        return Loc([_convert(item, constructor, problems, left) for item in node.value], line, col, key_line,
                   key_col)
    return Loc(constructor.construct_object(node, deep=True), line, col, key_line, key_col)
