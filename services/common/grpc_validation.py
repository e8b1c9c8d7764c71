"""Checks servicers run on every request before acting on it (raise InvalidArgument)."""

from __future__ import annotations

import grpc
from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.common.ids import SESSION_ID_RULE, valid_session_id


def require_session_id(session_id: str, what: str) -> None:
    if not session_id:
        raise InvalidArgument(f"{what}: session_id is required")
    if not valid_session_id(session_id):
        raise InvalidArgument(f"{what}: session_id {quote_prefix(session_id)} is invalid ({SESSION_ID_RULE})")


def require_max_length(value: str | bytes, limit: int, what: str) -> None:
    """Refuse a field by its size before anything else is done with it."""
    if len(value) > limit:
        unit = "bytes" if isinstance(value, bytes) else "characters"
        raise InvalidArgument(f"{what} is {len(value)} {unit}; the limit is {limit}")


async def abort_invalid(context: grpc.aio.ServicerContext, exc: InvalidArgument) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
