"""The embedded store: one SQLite file (WAL), shared safely by the processes of one machine.

sqlite3 blocks, so every statement runs on one dedicated worker thread that owns the
connection; the event loop only awaits it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dialtone.conversation_runtime.core.session import Session
from dialtone.conversation_runtime.errors import StoreUnavailable

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    next_deadline REAL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_next_deadline ON sessions (next_deadline);
CREATE TABLE IF NOT EXISTS dialogs (version TEXT PRIMARY KEY, file TEXT NOT NULL, source TEXT NOT NULL);
"""


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, timeout=10.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            with contextlib.suppress(sqlite3.OperationalError):  # files from before the step column
                conn.execute("ALTER TABLE sessions ADD COLUMN step INTEGER NOT NULL DEFAULT 0")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"session store {self._path}: {exc}") from exc

    async def load(self, session_id: str) -> Session | None:
        row = await self._run(lambda c: c.execute("SELECT data FROM sessions WHERE id = ?",
                                                  (session_id,)).fetchone())
        return Session.from_json(row[0]) if row else None

    async def save(self, session: Session, expected_step: int | None = None) -> bool:
        data, deadline = session.to_json(), session.wake_at()
        if expected_step is None:
            await self._run(lambda c: c.execute(
                "INSERT INTO sessions (id, data, next_deadline, step) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data, next_deadline = excluded.next_deadline, "
                "step = excluded.step", (session.session_id, data, deadline, session.step)))
            return True
        updated = await self._run(lambda c: c.execute(
            "UPDATE sessions SET data = ?, next_deadline = ?, step = ? WHERE id = ? AND step = ?",
            (data, deadline, session.step, session.session_id, expected_step)).rowcount)
        return bool(updated == 1)

    async def due(self, now: float, limit: int) -> list[str]:
        rows = await self._run(lambda c: c.execute(
            "SELECT id FROM sessions WHERE next_deadline IS NOT NULL AND next_deadline <= ? "
            "ORDER BY next_deadline LIMIT ?", (now, limit)).fetchall())
        return [r[0] for r in rows]

    async def acquire_lease(self, session_id: str, owner: str, now: float, ttl: float,
                            force: bool = False) -> bool:
        def update(c: sqlite3.Connection) -> int:
            cursor = c.execute(
                "UPDATE sessions SET lease_owner = ?, lease_until = ? WHERE id = ? AND "
                "(? OR lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
                (owner, now + ttl, session_id, 1 if force else 0, owner, now))
            return cursor.rowcount
        return await self._run(update) == 1

    async def release_lease(self, session_id: str, owner: str) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE sessions SET lease_owner = NULL, lease_until = 0 WHERE id = ? AND lease_owner = ?",
            (session_id, owner)))

    async def drop(self, session_id: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM sessions WHERE id = ?", (session_id,)))

    async def purge(self, before: float) -> int:
        deleted: int = await self._run(lambda c: c.execute(
            "DELETE FROM sessions WHERE json_extract(data, '$.started_at') < ?", (before,)).rowcount)
        return deleted

    async def put_dialog(self, version: str, file: str, text: str) -> None:
        await self._run(lambda c: c.execute(
            "INSERT OR IGNORE INTO dialogs (version, file, source) VALUES (?, ?, ?)", (version, file, text)))

    async def get_dialog(self, version: str) -> tuple[str, str] | None:
        row: Any = await self._run(lambda c: c.execute(
            "SELECT file, source FROM dialogs WHERE version = ?", (version,)).fetchone())
        return (row[0], row[1]) if row else None

    async def close(self) -> None:
        def close(c: sqlite3.Connection) -> None:
            c.close()
        if self._conn is not None:
            await self._run(close)
            self._conn = None
        self._executor.shutdown(wait=True)
