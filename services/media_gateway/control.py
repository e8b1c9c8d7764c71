"""The operator control API, transport-free: originate, list, hang up.

Both the gRPC servicer (``service.py``) and the HTTP/JSON server (``control_http.py``)
call these functions, so the two stay the same API. Bad input raises ``InvalidArgument``
with a message for the operator; a draining gateway raises ``Unavailable``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dialtone.common.errors import InvalidArgument
from dialtone.common.ids import valid_session_id
from dialtone.media_gateway.call_rules import parse_sip_uri
from dialtone.media_gateway.calls import CallManager, CallView

_HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Unavailable(Exception):
    """The gateway is draining or not started: try another replica."""


@dataclasses.dataclass(frozen=True)
class OriginateResult:
    session_id: str
    call_id: str


def _check_headers(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if not name or not set(name) <= _HEADER_NAME_CHARS:
            raise InvalidArgument(f"header name {name[:40]!r} is not a SIP token")
        if "\r" in value or "\n" in value:
            raise InvalidArgument(f"header {name} value must be one line")


async def originate(manager: CallManager | None, draining: bool, *, to_uri: str, dialog: str, caller_id: str,
                    headers: list[tuple[str, str]], ring_timeout_s: float = 0.0) -> OriginateResult:
    try:
        parse_sip_uri(to_uri)
    except ValueError as exc:
        raise InvalidArgument(f"Originate: to_uri: {exc}") from None
    if caller_id and not all(c.isalnum() or c in "+-_." for c in caller_id):
        raise InvalidArgument(f"Originate: caller_id {caller_id[:40]!r} may hold letters, digits, + - _ . only")
    _check_headers(headers)
    if manager is None or draining:
        raise Unavailable("the media gateway is draining or not started")
    if not 0 <= ring_timeout_s <= 600:
        raise InvalidArgument(f"Originate: ring_timeout_s must be 0..600, got {ring_timeout_s}")
    call = await manager.originate(to_uri, dialog, caller_id, headers, ring_timeout_s)
    return OriginateResult(call.session_id, call.leg.call_id)


def list_calls(manager: CallManager | None) -> list[CallView]:
    if manager is None:
        return []
    return [CallView.of(call) for call in list(manager.calls.values())]


def hangup(manager: CallManager | None, session_id: str) -> bool:
    if not session_id:
        raise InvalidArgument("HangupCall: session_id is required")
    if not valid_session_id(session_id):
        raise InvalidArgument(f"HangupCall: session_id {session_id[:64]!r} is invalid")
    if manager is None:
        return False
    return manager.hangup(session_id)


def view_json(view: CallView) -> dict[str, Any]:
    return dataclasses.asdict(view)
