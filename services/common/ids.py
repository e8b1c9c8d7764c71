"""Session ids and idempotency keys (``session:seq:index``).

Ids are checked with ``fullmatch``: a pattern ending in ``$`` also accepts a trailing
newline, and an id with one passes here only to be refused later (by httpx, as a header
value) where the refusal looks like a failure of someone else.
"""

from __future__ import annotations

import re
import uuid
from typing import NamedTuple

from dialtone.common.errors import quote_prefix

MAX_SESSION_ID_LENGTH = 128
# session id, ":", seq (at most 18 digits), ":", index (at most 9 digits)
MAX_IDEMPOTENCY_KEY_LENGTH = MAX_SESSION_ID_LENGTH + 1 + 18 + 1 + 9

SESSION_ID_PATTERN = re.compile(rf"[A-Za-z0-9._\-]{{1,{MAX_SESSION_ID_LENGTH}}}")
SESSION_ID_RULE = f"1-{MAX_SESSION_ID_LENGTH} characters of letters, digits, '.', '_' or '-'"


class IdempotencyKey(NamedTuple):
    session_id: str
    seq: int
    index: int

    def __str__(self) -> str:
        return f"{self.session_id}:{self.seq}:{self.index}"


def new_session_id() -> str:
    return uuid.uuid4().hex


def valid_session_id(session_id: str) -> bool:
    return isinstance(session_id, str) and SESSION_ID_PATTERN.fullmatch(session_id) is not None


def idempotency_key(session_id: str, seq: int, index: int) -> str:
    return str(IdempotencyKey(session_id, seq, index))


def parse_idempotency_key(key: str) -> IdempotencyKey:
    """Parse ``session:seq:index``; raises ValueError with the reason (quoting a short prefix)."""
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"idempotency key of {len(key)} characters is longer than "
                         f"{MAX_IDEMPOTENCY_KEY_LENGTH}")
    parts = key.rsplit(":", 2)
    if len(parts) != 3:
        raise ValueError(f"idempotency key {quote_prefix(key)} is not of the form session:seq:index")
    session_id, seq, index = parts
    if not valid_session_id(session_id):
        raise ValueError(f"idempotency key {quote_prefix(key)} has an invalid session id ({SESSION_ID_RULE})")
    # isascii: str.isdigit also accepts digits such as "²" that int() refuses
    if not (seq.isascii() and index.isascii() and seq.isdigit() and index.isdigit()) \
            or len(seq) > 18 or len(index) > 9:
        raise ValueError(f"idempotency key {quote_prefix(key)}: seq and index must be non-negative integers")
    return IdempotencyKey(session_id, int(seq), int(index))
