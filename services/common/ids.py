"""Session ids and idempotency keys (``session:seq:index``)."""

from __future__ import annotations

import re
import uuid
from typing import NamedTuple

_SESSION_RE = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class IdempotencyKey(NamedTuple):
    session_id: str
    seq: int
    index: int

    def __str__(self) -> str:
        return f"{self.session_id}:{self.seq}:{self.index}"


def new_session_id() -> str:
    return uuid.uuid4().hex


def valid_session_id(session_id: str) -> bool:
    return bool(_SESSION_RE.match(session_id))


def idempotency_key(session_id: str, seq: int, index: int) -> str:
    return str(IdempotencyKey(session_id, seq, index))


def parse_idempotency_key(key: str) -> IdempotencyKey:
    """Parse ``session:seq:index``; raises ValueError with the reason."""
    parts = key.rsplit(":", 2)
    if len(parts) != 3:
        raise ValueError(f"idempotency key {key!r} is not of the form session:seq:index")
    session_id, seq, index = parts
    if not valid_session_id(session_id):
        raise ValueError(f"idempotency key {key!r} has an invalid session id")
    if not (seq.isdigit() and index.isdigit()) or len(seq) > 18 or len(index) > 9:
        raise ValueError(f"idempotency key {key!r}: seq and index must be non-negative integers")
    return IdempotencyKey(session_id, int(seq), int(index))
