"""Errors of the dialog core (free of gRPC: the service maps them at its boundary).

    DialogError            one problem in a dialog file, at file:line:col (for operators)
    DialogLoadError        a dialog refused whole: every DialogError found in it
"""

from __future__ import annotations

import dataclasses


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

    def __init__(self, errors: list[DialogError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        super().__init__("\n".join(str(e) for e in self.errors))
