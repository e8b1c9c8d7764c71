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


def refuse(context: grpc.aio.ServicerContext, exc: InvalidArgument) -> None:
    """End the call with INVALID_ARGUMENT; the handler returns next (a unary one an empty response,
    which gRPC discards with a non-OK status).

    Not with context.abort(): abort raises, and the exception's traceback holds the call's state,
    the refused message included, in a reference cycle that only the garbage collector frees, late;
    a thousand refused megabyte messages held hundreds of megabytes."""
    context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
    context.set_details(str(exc))


# What a service answers about a caller's own request: the same request would be refused again, so a
# stream that ended this way is never resumed or retried (a process that dies or drains answers
# UNAVAILABLE). UNKNOWN is an unhandled error in handling this very request: replaying it would hit
# the same error.
REFUSALS = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNKNOWN,
})


def is_refusal(code: grpc.StatusCode) -> bool:
    """Whether a call or stream that ended with ``code`` must not be retried or resumed."""
    return code in REFUSALS
