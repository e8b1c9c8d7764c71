"""Durations as operators write them: ``8s``, ``500ms``, ``2m``, ``1m30s``, ``1h``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: object) -> float:
    """Seconds in ``text``; raises ValueError with an operator-readable reason."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"bad duration {text!r}: write a number with a unit, such as 8s, 500ms or 2m")
    compact = text.strip().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(compact) or not compact:
        raise ValueError(f"bad duration {text!r}: write a number with a unit, such as 8s, 500ms or 2m")
    if total <= 0:
        raise ValueError(f"bad duration {text!r}: must be longer than zero")
    return total
