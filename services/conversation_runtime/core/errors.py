"""Errors of the dialog core.

    DialogError            one problem in a dialog file, at file:line:col (for operators)
    DialogLoadError        a dialog refused whole: every DialogError found in it
    SessionError           an event the engine cannot accept (gRPC INVALID_ARGUMENT)
"""

from __future__ import annotations

import dataclasses

import grpc


@dataclasses.dataclass(frozen=True)
class DialogError:
    file: str
    line: int
    col: int
    kind: str      # a stable name tests and tools can match: unknown_key, unknown_target, ...
    message: str
    state: str | None = None

    def __str__(self) -> str:
        where = f" (state '{self.state}')" if self.state else ""
        return f"{self.file}:{self.line}:{self.col}: {self.message}{where}"


class DialogLoadError(Exception):
    """The dialog was refused; ``errors`` lists every problem with its location."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, errors: list[DialogError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        super().__init__("\n".join(str(e) for e in self.errors))


class SessionError(Exception):
    """An event that does not fit the session (wrong session, ended call, bad field)."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
