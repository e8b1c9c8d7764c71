"""What happens to a call (events in) and what the dialog does (actions out), free of protobuf.

Only the servicer converts between these and ``dialtone.v1`` messages.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class CallInfo:
    caller: str = ""
    callee: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    dialog: str = ""
    call_id: str = ""

    def as_variables(self) -> dict[str, Any]:
        """``call`` as conditions see it: caller, callee, call_id, headers (X-* headers by name)."""
        headers = {name: value for name, value in self.headers if name.lower().startswith("x-")}
        return {"caller": self.caller, "callee": self.callee, "call_id": self.call_id, "headers": headers}


@dataclasses.dataclass(frozen=True)
class SpeechStarted:
    """The caller started talking (the no_input timer stops while they talk)."""


@dataclasses.dataclass(frozen=True)
class SpeechEnded:
    """The caller stopped talking (the no_input timer starts again if nothing comes of it)."""


@dataclasses.dataclass(frozen=True)
class SpeechResult:
    transcript: str
    confidence: float = 1.0


@dataclasses.dataclass(frozen=True)
class ProvisionalSpeech:
    """The speculative transcript of a pause that may end the caller's turn: nothing changes; the runtime
    previews the reply (``engine.preview``) so the speech gateway can render it ahead."""

    transcript: str
    confidence: float = 1.0


@dataclasses.dataclass(frozen=True)
class DtmfPressed:
    digit: str


@dataclasses.dataclass(frozen=True)
class BackendResult:
    key: str                       # the idempotency key of the call action it answers
    ok: bool
    status: int = 0
    body: Any = None
    error_kind: str = ""           # an integration_gateway.errors.ErrorKind; "" when ok
    error_message: str = ""


@dataclasses.dataclass(frozen=True)
class PlaybackStarted:
    utterance_id: str


@dataclasses.dataclass(frozen=True)
class PlaybackFinished:
    utterance_id: str
    interrupted: bool = False
    played_ms: int = 0


@dataclasses.dataclass(frozen=True)
class TransferResult:
    target_uri: str
    ok: bool
    sip_status: int = 0


@dataclasses.dataclass(frozen=True)
class CallerHungUp:
    reason: str = "caller"


@dataclasses.dataclass(frozen=True)
class Tick:
    """Nothing happened but time passed: fire the timers that are due."""


Event = (SpeechStarted | SpeechEnded | SpeechResult | DtmfPressed | BackendResult | PlaybackStarted | PlaybackFinished
         | TransferResult | CallerHungUp | Tick)


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing the dialog does. ``kind``: say, play, call, transfer, hangup, state_changed.

    ``seq`` numbers the actions sent on the stream (0 for ``call``, which goes to the integration
    gateway instead); ``key`` is the idempotency key ``session:step:index``.
    """

    kind: str
    seq: int
    key: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "key": self.key, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Action:
        return cls(raw["kind"], int(raw["seq"]), raw["key"], dict(raw["data"]))
