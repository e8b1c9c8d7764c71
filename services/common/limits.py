"""Bounds checked on caller input before it is parsed or stored.

JSON nesting is checked on the text, without recursion, before ``json.loads``: the
parser recurses once per level, so 30,000 nested brackets (60 kB) would raise
RecursionError inside it instead of a clear refusal.
"""

from __future__ import annotations

import json
import math
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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number is out of the range of a double")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON (RFC 8259) from caller input, or ValueError with a reason that never quotes the
    text (``JsonTooDeep``, ``json.JSONDecodeError``, UnicodeDecodeError, or a plain ValueError).

    Refused besides malformed text: nesting deeper than ``max_depth`` (checked first, without
    recursion), NaN and Infinity, numbers out of float range or longer than Python's int limit, bytes
    that are not UTF-8, and \\u escapes of lone surrogates: each decodes in Python but fails later,
    when the value is encoded again for a backend or a log line."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")  # RFC 8259 section 8.1; json.loads would pass surrogates through
    if not json_depth_ok(text, max_depth):
        raise JsonTooDeep(max_depth)
    value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    if "\\u" in text and _has_lone_surrogate(value):  # an escape is the only way to write one
        raise ValueError("a string holds a \\u escape of a lone surrogate (D800-DFFF), which is not a character")
    return value


# RFC 9110 section 5.5 (and RFC 3261's SIP header values): no control character but HTAB, so no
# CR, LF or NUL that would end the header early and start another one.
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_VALUE_FORBIDDEN_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def header_value_ok(value: str | bytes) -> bool:
    """Whether ``value`` may be sent as one header field value (HTTP or SIP)."""
    forbidden = _HEADER_VALUE_FORBIDDEN if isinstance(value, str) else _HEADER_VALUE_FORBIDDEN_BYTES
    return forbidden.search(value) is None
