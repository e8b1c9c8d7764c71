"""Idempotency records: one per action key, ``pending`` while a replica calls the
backend, ``done`` with the result once it has.

    (none) --claim--> pending --complete--> done
    pending --release (a transient failure)--> (none)
    pending --older than pending_ttl (owner died)--> taken over by the next claim
"""

from __future__ import annotations

import dataclasses
import enum


class ClaimAction(enum.Enum):
    CALL = "call"  # this caller owns the key now: call the backend
    WAIT = "wait"  # another caller is calling the backend: wait for its result
    REPLAY = "replay"  # the result is recorded: answer with it


@dataclasses.dataclass(frozen=True)
class ClaimDecision:
    action: ClaimAction
    result: dict | None = None  # the recorded result, for REPLAY


def claim(record: dict | None, now: float, owner: str, pending_ttl_s: float) -> tuple[dict | None, ClaimDecision]:
    """Try to claim a key. Returns the record to store (None = leave it) and what to do."""
    if record is None:
        return {"state": "pending", "owner": owner, "at": now}, ClaimDecision(ClaimAction.CALL)
    if record["state"] == "done":
        return None, ClaimDecision(ClaimAction.REPLAY, record["result"])
    if record["owner"] == owner:
        return None, ClaimDecision(ClaimAction.CALL)
    if now >= float(record["at"]) + pending_ttl_s:
        return {"state": "pending", "owner": owner, "at": now}, ClaimDecision(ClaimAction.CALL)
    return None, ClaimDecision(ClaimAction.WAIT)


def complete(result: dict) -> dict:
    return {"state": "done", "result": result}


def owned_by(record: dict | None, owner: str) -> bool:
    return record is not None and record.get("state") == "pending" and record.get("owner") == owner
