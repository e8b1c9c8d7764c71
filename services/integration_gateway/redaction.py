"""PII redaction for logs: configured field names anywhere in a JSON value, and
card numbers, phone numbers and e-mail addresses anywhere in text."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

MASK = "[redacted]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by spaces or dashes (payment card numbers).
_CARD = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
# 7-15 digits with an optional leading + and common separators (phone numbers, E.164 and national).
_PHONE = re.compile(r"(?<![\w])\+?\(?\d(?:[\d\s().\-]{5,18})\d(?![\w])")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _phone_or_keep(match: re.Match[str]) -> str:
    text = match.group(0)
    if _ISO_DATE.fullmatch(text.strip()) or not 7 <= _digits(text) <= 15:
        return text  # dates (appointments) are not phone numbers
    return MASK


def redact_text(text: str) -> str:
    text = _EMAIL.sub(MASK, text)
    text = _CARD.sub(MASK, text)
    return _PHONE.sub(_phone_or_keep, text)


def redact_value(value: Any, fields: Collection[str]) -> Any:
    """A copy of a JSON value with ``fields`` (case-insensitive keys) masked and PII in strings redacted."""
    lowered = {f.lower() for f in fields}
    return _walk(value, lowered)


def _walk(value: Any, fields: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if str(k).lower() in fields else _walk(v, fields)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fields) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= 7:
        return redact_text(str(value))
    return value


def redact_json_text(text: str, fields: Collection[str], limit: int = 512) -> str:
    """Redact a JSON document given as text (or plain text), cut to ``limit`` characters for a log line."""
    if not text:
        return ""
    try:
        shown = json.dumps(redact_value(json.loads(text), fields), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        shown = redact_text(text)
    return shown if len(shown) <= limit else shown[:limit] + "..."
