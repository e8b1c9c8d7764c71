"""The in-process store: atomic updates, expiry on its clock, and bounded size."""

from __future__ import annotations

from dialtone.integration_gateway.store import DELETE, MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_update_delete_and_expiry() -> None:
    """A written value is read back until its TTL passes; DELETE removes it; None leaves it."""
    clock = Clock()
    store = MemoryStore(clock)
    assert await store.transact("k", lambda v: ({"n": 1}, "wrote"), 10.0) == "wrote"
    assert await store.transact("k", lambda v: (None, v), 10.0) == {"n": 1}
    clock.now = 9.9
    assert await store.get("k") == {"n": 1}
    clock.now = 10.0
    assert await store.get("k") is None
    await store.transact("k", lambda v: ({"n": 2}, None), 10.0)
    await store.transact("k", lambda v: (DELETE, None), 10.0)
    assert await store.get("k") is None


async def test_size_is_bounded_by_dropping_old_idempotency_records() -> None:
    """Past max_entries the oldest idempotency records go; breaker and bucket state stay."""
    store = MemoryStore(Clock(), max_entries=100)
    await store.transact("breaker:svc", lambda v: ({"state": "open"}, None), 1e9)
    for n in range(150):
        await store.transact(f"idem:s:{n}:0", lambda v: ({"state": "done"}, None), 1e9)
    assert await store.get("breaker:svc") == {"state": "open"}
    assert await store.get("idem:s:149:0") is not None and await store.get("idem:s:0:0") is None
    assert len([n for n in range(150) if await store.get(f"idem:s:{n}:0")]) <= 100
