"""Where sessions live between events: one interface, an SQLite file or Redis behind it.

The runtime keeps nothing in memory that must survive: after every transition (before its
actions are sent) the whole session is saved here, with the time it must next be woken indexed
(``Session.wake_at``) so that any replica can find the calls that lost their stream. A lease
says which replica is driving a session right now (the one holding its stream, or the one
parking or ending it).
Dialog sources are kept by version, so a call resumed on another replica stays on the version
it started with.
"""

from __future__ import annotations

from typing import Protocol

from dialtone.conversation_runtime.config import StoreConfig
from dialtone.conversation_runtime.core.session import Session


class SessionStore(Protocol):
    async def load(self, session_id: str) -> Session | None:
        """The session as last saved, or None."""

    async def save(self, session: Session, expected_step: int | None = None) -> bool:
        """Write the whole session and index when it must next be woken (``Session.wake_at``).

        With ``expected_step``, only if the stored session is still at that step (compare and
        set): False means another replica moved the session on, and nothing was written.
        """

    async def due(self, now: float, limit: int) -> list[str]:
        """Ids of sessions to wake at or before ``now`` (earliest first)."""

    async def acquire_lease(self, session_id: str, owner: str, now: float, ttl: float,
                            force: bool = False) -> bool:
        """Take (or renew) the right to drive ``session_id`` until ``now + ttl``.

        Fails while another owner's lease is unexpired, unless ``force`` (a resumed stream
        arriving here means the previous owner lost its stream).
        """

    async def release_lease(self, session_id: str, owner: str) -> None:
        """Give the lease back if ``owner`` still holds it."""

    async def drop(self, session_id: str) -> None:
        """Forget one session and its timers (e.g. a timer entry whose session expired)."""

    async def purge(self, before: float) -> int:
        """Forget sessions whose call started before ``before``; returns how many (stores with
        their own expiry may return 0)."""

    async def put_dialog(self, version: str, file: str, text: str) -> None:
        """Keep a dialog's source under its version (idempotent)."""

    async def get_dialog(self, version: str) -> tuple[str, str] | None:
        """(file, source text) of a dialog version, or None."""

    async def close(self) -> None:
        """Release connections."""


def open_store(config: StoreConfig) -> SessionStore:
    if config.kind == "redis":
        from dialtone.conversation_runtime.store_redis import RedisStore

        return RedisStore(config.url, config.retention_s, config)
    from dialtone.conversation_runtime.store_sqlite import SqliteStore

    return SqliteStore(config.path)
