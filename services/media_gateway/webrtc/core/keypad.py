"""Key presses from the page's keypad, sent over the ``dtmf`` data channel (pure).

aiortc does not decode RFC 4733 telephone-events, so the page sends each press as a
small JSON message on a data channel (the issue allows either): ``{"digit": "5", "duration_ms": 120}``.
"""

from __future__ import annotations

import dataclasses
import json

DIGITS = frozenset("0123456789*#ABCD")
DEFAULT_DURATION_MS = 100
MAX_MESSAGE_BYTES = 256
MAX_DURATION_MS = 10_000


@dataclasses.dataclass(frozen=True)
class KeyPress:
    digit: str
    duration_ms: int


def parse_key_message(message: str | bytes) -> KeyPress:
    """Decode one data-channel message; raise ValueError with a precise reason when it isn't a key press."""
    if isinstance(message, bytes):
        try:
            message = message.decode()
        except UnicodeDecodeError as exc:
            raise ValueError("key message is not UTF-8") from exc
    if len(message) > MAX_MESSAGE_BYTES:
        raise ValueError(f"key message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ValueError("key message is not JSON") from exc
    if not isinstance(body, dict):
        raise ValueError("key message must be a JSON object")
    digit = body.get("digit")
    if not isinstance(digit, str) or digit.upper() not in DIGITS or len(digit) != 1:
        raise ValueError(f"key message digit must be one of 0-9 * # A-D, got {str(digit)[:8]!r}")
    duration = body.get("duration_ms", DEFAULT_DURATION_MS)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 < duration <= MAX_DURATION_MS:
        raise ValueError(f"key message duration_ms must be an integer in 1..{MAX_DURATION_MS}")
    return KeyPress(digit.upper(), duration)
