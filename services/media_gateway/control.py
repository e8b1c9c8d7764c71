"""The operator control API, transport-free: originate, list, hang up.

Both the gRPC servicer (``service.py``) and the HTTP/JSON server (``control_http.py``)
call these functions, so the two stay the same API. Bad input raises ``InvalidArgument``
with a message for the operator that quotes at most a short prefix of the value; sizes
are checked before anything else. A draining gateway raises ``Unavailable``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.common.grpc_validation import require_max_length, require_session_id
from dialtone.common.limits import header_value_ok
from dialtone.media_gateway.calls import CallManager, CallView
from dialtone.media_gateway.sip_syntax import TOKEN, valid_host, valid_port

MAX_URI_LENGTH = 256
MAX_DIALOG_LENGTH = 128
MAX_CALLER_ID_LENGTH = 64
MAX_EXTRA_HEADERS = 32
MAX_HEADER_NAME_LENGTH = 64
MAX_HEADER_VALUE_LENGTH = 512
# All extra headers together, UTF-8: the INVITE goes out as one UDP datagram with them in it.
MAX_EXTRA_HEADER_BYTES = 2048

# sip[s]:[user@]host[:port][;param[=value]]... with no ?headers. The user is RFC 3261's unreserved
# characters, escapes and & = + $ , (not ; ? / which would end it early); host and port are then
# checked by the rules the SIP stack applies to every target it sends to.
_USER = r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})+"
_PARAM = r"[A-Za-z0-9\-_.!~*'%]+"
_ORIGINATE_URI = re.compile(rf"sips?:(?:{_USER}@)?(?P<host>\[[^\]]*\]|[^:;?@\[\]]+)(?::(?P<port>[0-9]+))?"
                            rf"(?:;{_PARAM}(?:={_PARAM})?)*")


class Unavailable(Exception):
    """The gateway is draining or not started: try another replica."""


@dataclasses.dataclass(frozen=True)
class OriginateResult:
    session_id: str
    call_id: str


def check_target(to_uri: str) -> None:
    """Refuse a to_uri the gateway could not call: a call to it would ring for ever or nowhere."""
    require_max_length(to_uri, MAX_URI_LENGTH, "Originate: to_uri")
    match = _ORIGINATE_URI.fullmatch(to_uri)
    if match is None:
        raise InvalidArgument(f"Originate: to_uri {quote_prefix(to_uri)} is not a SIP URI "
                              "(sip:user@host[:port], host a name or an IP address)")
    host, port = match.group("host"), match.group("port")
    if not valid_host(host):
        raise InvalidArgument(f"Originate: to_uri host {quote_prefix(host)} is not a host name or IP address")
    if port is not None and not valid_port(port):
        raise InvalidArgument(f"Originate: to_uri port {quote_prefix(port, 12)} is not 1-65535")


def check_headers(headers: list[tuple[str, str]]) -> None:
    """Extra INVITE headers: X- headers only (the contract), so none can repeat or replace a header
    the gateway writes itself (Call-ID, Content-Length, Max-Forwards, Via, ...); bounded in count and size."""
    if len(headers) > MAX_EXTRA_HEADERS:
        raise InvalidArgument(f"Originate: {len(headers)} headers; the limit is {MAX_EXTRA_HEADERS}")
    total = 0
    for name, value in headers:
        if not 2 < len(name) <= MAX_HEADER_NAME_LENGTH or name[:2].lower() != "x-" or TOKEN.fullmatch(name) is None:
            raise InvalidArgument(f"Originate: header name {quote_prefix(name)} must be X- and a SIP token "
                                  f"(letters, digits, -.!%*_+`'~; at most {MAX_HEADER_NAME_LENGTH})")
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            raise InvalidArgument(f"Originate: header {name} value is {len(value)} characters; "
                                  f"the limit is {MAX_HEADER_VALUE_LENGTH}")
        if not header_value_ok(value):
            raise InvalidArgument(f"Originate: header {name} value must be one line without control characters")
        total += len(name) + len(value.encode("utf-8", errors="replace"))
    if total > MAX_EXTRA_HEADER_BYTES:
        raise InvalidArgument(f"Originate: the headers are {total} bytes together; the limit is "
                              f"{MAX_EXTRA_HEADER_BYTES}")


async def originate(manager: CallManager | None, draining: bool, *, to_uri: str, dialog: str, caller_id: str,
                    headers: list[tuple[str, str]], ring_timeout_s: float = 0.0) -> OriginateResult:
    require_max_length(dialog, MAX_DIALOG_LENGTH, "Originate: dialog")
    require_max_length(caller_id, MAX_CALLER_ID_LENGTH, "Originate: caller_id")
    check_target(to_uri)
    if dialog and not dialog.isprintable():
        raise InvalidArgument(f"Originate: dialog {quote_prefix(dialog)} must not hold control characters")
    if caller_id and not all(c.isascii() and (c.isalnum() or c in "+-_.") for c in caller_id):
        raise InvalidArgument(f"Originate: caller_id {quote_prefix(caller_id)} may hold letters, digits, "
                              "+ - _ . only")
    check_headers(headers)
    if manager is None or draining:
        raise Unavailable("the media gateway is draining or not started")
    if not 0 <= ring_timeout_s <= 600:
        raise InvalidArgument(f"Originate: ring_timeout_s must be 0..600, got {ring_timeout_s}")
    try:
        call = await manager.originate(to_uri, dialog, caller_id, headers, ring_timeout_s)
    except ValueError as exc:   # a transport this gateway cannot use for that URI (TLS, SRTP policy)
        raise InvalidArgument(f"Originate: {exc}") from None
    return OriginateResult(call.session_id, call.leg.call_id)


def list_calls(manager: CallManager | None) -> list[CallView]:
    if manager is None:
        return []
    return [CallView.of(call) for call in list(manager.calls.values())]


def hangup(manager: CallManager | None, session_id: str) -> bool:
    require_session_id(session_id, "HangupCall")
    if manager is None:
        return False
    return manager.hangup(session_id)


def view_json(view: CallView) -> dict[str, Any]:
    return dataclasses.asdict(view)
