"""Bounds checked on caller input before it is parsed or stored.

JSON nesting is checked on the text, without recursion, before ``json.loads``: the
parser recurses once per level, so 30,000 nested brackets (60 kB) would raise
RecursionError inside it instead of a clear refusal.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64

# A JSON string literal (possessive: no backtracking), a run of brackets, or an unterminated quote.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]+|"', re.DOTALL)
_JSON_TOKENS_BYTES = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]+|"', re.DOTALL)
_STEPS = {"[": 1, "{": 1, "]": -1, "}": -1}
_STEPS.update({ord(c): step for c, step in list(_STEPS.items())})
_QUOTE = {'"', ord('"')}


class JsonTooDeep(ValueError):
    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON is nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def _text_depth_ok(text: str | bytes, max_depth: int) -> bool:
    is_text = isinstance(text, str)
    openers = text.count("[" if is_text else b"[") + text.count("{" if is_text else b"{")
    if openers <= max_depth:  # the common case: too few brackets to be too deep, whatever the strings
        return True
    # Brackets inside string literals are text: keep only the runs outside them, then the deepest
    # running total of +1/-1 steps (computed in C by accumulate) is the nesting depth.
    runs = []
    for token in (_JSON_TOKENS if is_text else _JSON_TOKENS_BYTES).findall(text):
        if token[0] not in _QUOTE:
            runs.append(token)
        elif len(token) == 1:
            break  # an unterminated string: invalid JSON, and the parser stops there too
    brackets = ("" if is_text else b"").join(runs)
    return max(accumulate(map(_STEPS.__getitem__, brackets), initial=0)) <= max_depth


def _object_depth_ok(value: Any, max_depth: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def json_depth_ok(text_or_obj: Any, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text (str or bytes), or an already decoded value, nests at most ``max_depth``
    arrays/objects deep. Iterative; the text check never decodes the text."""
    if isinstance(text_or_obj, str | bytes | bytearray):
        return _text_depth_ok(bytes(text_or_obj) if isinstance(text_or_obj, bytearray) else text_or_obj,
                              max_depth)
    return _object_depth_ok(text_or_obj, max_depth)


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` first. Raises ValueError
    (``JsonTooDeep`` or ``json.JSONDecodeError``); neither message quotes the text."""
    if not json_depth_ok(text, max_depth):
        raise JsonTooDeep(max_depth)
    return json.loads(text)
