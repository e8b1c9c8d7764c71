"""A call's whole dialog state, as plain data that round-trips through JSON (the stores keep it)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

OUTBOX_LIMIT = 64  # stream actions kept for re-sending to a resumed stream


@dataclasses.dataclass
class Session:
    session_id: str
    dialog: str
    version: str
    state: str = ""
    variables: dict[str, Any] = dataclasses.field(default_factory=dict)
    call: dict[str, Any] = dataclasses.field(default_factory=dict)
    started_at: float = 0.0
    entered_at: float = 0.0
    timers: dict[str, float] = dataclasses.field(default_factory=dict)   # name -> deadline
    no_input_count: int = 0
    no_match_count: int = 0
    digit_buffer: str = ""
    event_seq: int = 0          # last event sequence number applied
    step: int = 0               # handle() calls that changed something; part of idempotency keys
    action_seq: int = 0         # last stream action sequence number issued
    outbox: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # recent stream actions
    pending_calls: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # key -> call
    playing: list[str] = dataclasses.field(default_factory=list)   # prompts issued, not reported finished
    ended: bool = False
    end_reason: str = ""
    # A call whose stream closed without its end: nothing fires until a stream resumes it; at
    # this time it ends as stream_lost (0 = not parked). See engine.park.
    parked_until: float = 0.0
    # The state's collect: "ask" (waiting for the value), "confirm" (for yes or no to ``collect_value``),
    # "" (not collecting); misses so far (no value, an invalid one, no answer).
    collect_phase: str = ""
    collect_value: Any = None
    collect_misses: int = 0

    def copy(self) -> Session:
        # Shallow copies suffice: the engine replaces nested values, it never mutates them.
        return dataclasses.replace(self, variables=dict(self.variables), timers=dict(self.timers),
                                   outbox=list(self.outbox), pending_calls=dict(self.pending_calls),
                                   playing=list(self.playing))

    def next_deadline(self) -> float | None:
        """The next timer's deadline."""
        return min(self.timers.values()) if self.timers else None

    def wake_at(self) -> float | None:
        """When a replica without the call's stream must next act on it (the stores index this):
        a parked call's end, or else the next timer (a stream that died with its replica)."""
        return self.parked_until or self.next_deadline()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Session:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        return cls.from_dict(json.loads(text))
