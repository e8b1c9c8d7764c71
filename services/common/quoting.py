"""Quoting caller input in messages, bounded (no gRPC here: the pure libraries use it too).

An error message quotes caller input only through ``quote_prefix``: a message that echoes a
megabyte of input would itself exceed gRPC's metadata limit, and the caller would see
RESOURCE_EXHAUSTED instead of the real reason.
"""

from __future__ import annotations

QUOTE_LIMIT = 64


def quote_prefix(value: str | bytes, limit: int = QUOTE_LIMIT) -> str:
    """``value`` quoted for an error message: its repr when short, else the repr of its first
    ``limit`` characters (bytes are decoded, undecodable ones escaped) and its full length."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[: limit * 4])  # at most 4 bytes a character: enough for `limit` characters
        text = raw.decode("utf-8", errors="backslashreplace")
        size, unit = len(value), "bytes"
    else:
        text, size, unit = value, len(value), "characters"
    quoted = repr(text[:limit])
    if len(quoted) > limit + 2:
        # each escaped character (a control or non-printable one) takes up to 10 in its repr
        quoted = quoted[:limit + 1] + quoted[0]
    elif size <= limit and len(text) <= limit:
        return quoted
    return f"{quoted}... ({size} {unit})"
