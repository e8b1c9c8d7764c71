"""Idempotency records: one per action key, ``pending`` while a replica calls the
backend, ``done`` with the result once it has.

    (none) --claim--> pending --complete--> done
    pending --release (a transient failure)--> (none)
    pending --older than pending_ttl (owner died)--> taken over by the next claim

A record keeps the fingerprint of its request (service, method, payload): the same key
sent with a different request is a conflict, never a replay of another call's result.
"""

from __future__ import annotations

import dataclasses
import enum


class ClaimAction(enum.Enum):
    CALL = "call"  # this caller owns the key now: call the backend
    WAIT = "wait"  # another caller is calling the backend: wait for its result
    REPLAY = "replay"  # the result is recorded: answer with it
    CONFLICT = "conflict"  # the key belongs to a different request


@dataclasses.dataclass(frozen=True)
class ClaimDecision:
    action: ClaimAction
    result: dict | None = None  # the recorded result, for REPLAY


def claim(record: dict | None, now: float, owner: str, pending_ttl_s: float,
          fingerprint: str = "") -> tuple[dict | None, ClaimDecision]:
    """Try to claim a key. Returns the record to store (None = leave it) and what to do."""
    pending = {"state": "pending", "owner": owner, "at": now, "fp": fingerprint}
    if record is None:
        return pending, ClaimDecision(ClaimAction.CALL)
    if record.get("fp", "") != fingerprint:
        if record["state"] == "pending" and now >= float(record["at"]) + pending_ttl_s:
            return pending, ClaimDecision(ClaimAction.CALL)
        return None, ClaimDecision(ClaimAction.CONFLICT)
    if record["state"] == "done":
        return None, ClaimDecision(ClaimAction.REPLAY, record["result"])
    if record["owner"] == owner:
        return None, ClaimDecision(ClaimAction.CALL)
    if now >= float(record["at"]) + pending_ttl_s:
        return pending, ClaimDecision(ClaimAction.CALL)
    return None, ClaimDecision(ClaimAction.WAIT)


def complete(result: dict, fingerprint: str = "") -> dict:
    return {"state": "done", "result": result, "fp": fingerprint}


def owned_by(record: dict | None, owner: str) -> bool:
    return record is not None and record.get("state") == "pending" and record.get("owner") == owner
