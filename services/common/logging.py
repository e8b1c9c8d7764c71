"""One logging setup: structured JSON lines on stderr, each carrying the service
name and, inside a call, its ``session_id``.

Use ``logging.getLogger(__name__)`` with %-style arguments everywhere; wrap a
call's work in ``session_context(session_id)`` (or pass ``extra={"session_id": ...}``)
so every line it logs carries the id. Extra fields given with ``extra=`` appear as
JSON keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dialtone_session_id", default=None)

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def session_context(session_id: str) -> Iterator[None]:
    token = _session_id.set(session_id)
    try:
        yield
    finally:
        _session_id.reset(token)


def set_session(session_id: str | None) -> None:
    """Set the session id for the current task (a task's context is its own copy)."""
    _session_id.set(session_id)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        session_id = getattr(record, "session_id", None) or _session_id.get()
        if session_id:
            entry["session_id"] = session_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        session_id = getattr(record, "session_id", None) or _session_id.get()
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        tag = f" [{session_id}]" if session_id else ""
        text = f"{when} {record.levelname:<7} {self._service}{tag} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class RateLimitedLog:
    """At most one line per key every ``every_s`` seconds, saying how many were held back since:
    bad input arriving at line rate must not flood the log. Safe from any thread (a lost race
    only lets one extra line through)."""

    def __init__(self, logger: logging.Logger, every_s: float) -> None:
        self._logger = logger
        self._every_s = every_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def _due(self, key: str) -> int | None:
        now = time.monotonic()
        if now - self._last.get(key, -self._every_s) < self._every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) > 1000:   # keys come from a bounded set in practice; stay bounded anyway
            self._last.clear()
        self._last[key] = now
        return self._held.pop(key, 0)

    def warning(self, key: str, msg: str, *args: Any, exc_info: bool = False, extra: dict[str, Any] | None = None,
                ) -> None:
        self.log(logging.WARNING, key, msg, *args, exc_info=exc_info, extra=extra)

    def log(self, level: int, key: str, msg: str, *args: Any, exc_info: bool = False,
            extra: dict[str, Any] | None = None) -> None:
        held = self._due(key)
        if held is None:
            return
        if held:
            msg += " (%d more like it held back)"
            args = (*args, held)
        self._logger.log(level, msg, *args, exc_info=exc_info, extra=extra)


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log per packet or per request stay at WARNING.
    for noisy in ("aioice", "aiortc", "aiortp", "httpx", "httpcore", "faster_whisper", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
