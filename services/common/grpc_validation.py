"""Checks servicers run on every request before acting on it (raise InvalidArgument)."""

from __future__ import annotations

import grpc
from dialtone.common.errors import InvalidArgument
from dialtone.common.ids import valid_session_id


def require_session_id(session_id: str, what: str) -> None:
    if not session_id:
        raise InvalidArgument(f"{what}: session_id is required")
    if not valid_session_id(session_id):
        raise InvalidArgument(f"{what}: session_id {session_id[:64]!r} is invalid "
                              "(1-128 characters of letters, digits, '.', '_' or '-')")


async def abort_invalid(context: grpc.aio.ServicerContext, exc: InvalidArgument) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
