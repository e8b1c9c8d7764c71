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


def load_located(text: str) -> tuple[Loc | None, list[tuple[int, int, str]]]:
    """Parse ``text``; return the located tree and duplicate-key problems (line, col, message)."""
    try:
        _check_depth(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(line, col, f"invalid YAML: {exc.problem or exc.context}") from exc
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
