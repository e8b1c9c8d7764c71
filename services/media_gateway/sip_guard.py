"""What the gateway does with a SIP datagram before sippy sees it. Sans-I/O.

sippy is a solid RFC 3261 stack but it trusts its input: it cuts datagrams at 8 KiB,
``int()`` raises on a 5,000-digit CSeq, and RFC 4475 shows about 20 messages it answers
wrongly or not at all. ``SipGuard.inspect`` looks at the raw bytes first and returns one
``Verdict``: PASS (with the request re-written plainly, see ``sip_syntax``), REPLY with a
stateless response formed from the request's own headers (400 with the reason, 505, 416,
420, 415, 406, 405, 501), or DROP (counted by reason). It also enforces the trunk ACL
(allowed source networks) and a per-source token bucket against floods.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from dialtone.common import token_bucket
from dialtone.common.metrics import counter
from dialtone.media_gateway.config import SipConfig
from dialtone.media_gateway.sip_digest import DigestAuthenticator
from dialtone.media_gateway.sip_syntax import (
    RESPONSE_LINE,
    Message,
    SipSyntaxError,
    canonical_name,
    canonical_request,
    canonical_response,
    check_response_targets,
    read_request,
    sdp_part_of_multipart,
    split_message,
)

GUARD_ACTIONS = counter("media_sip_guard_total", "SIP datagrams the guard did not pass to the stack, by reason",
                        ["action", "reason"])

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY"
_STACK_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY", "UPDATE",
                            "PRACK"})
_NOT_OURS = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"})   # we are not a registrar/presence server
_SUPPORTED_EXTENSIONS = frozenset({"timer"})   # RFC 4028 session timers (calls.session_timer)
_SCHEMES = ("sip", "sips", "tel")
_SDP_ACCEPTS = ("application/sdp", "application/*", "*/*")
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            405: "Method Not Allowed", 406: "Not Acceptable", 415: "Unsupported Media Type",
            416: "Unsupported URI Scheme", 420: "Bad Extension", 501: "Not Implemented",
            505: "Version Not Supported"}


class Verdict(enum.Enum):
    PASS = "pass"
    REPLY = "reply"
    DROP = "drop"


class GuardedMessage(str):
    """The canonical text handed to sippy, carrying the headers as received (what CallStart reports),
    so the stack need not read the datagram a second time."""

    raw: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class _Refuse(Exception):
    def __init__(self, status: int, detail: str, extra: list[tuple[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.extra = extra or []


class SipGuard:
    """Stateful only in the flood buckets; called from the one receive thread. ``config`` gives the ACL,
    the datagram size limit and the flood rate; ``authenticator`` (sip_digest) checks new calls, None:
    the allow-list alone decides. The least recently seen sources beyond ``max_sources_tracked`` lose
    their buckets (a spoofed-source flood must not grow the table without bound)."""

    def __init__(self, config: SipConfig, authenticator: DigestAuthenticator | None = None,
                 clock: Callable[[], float] = time.monotonic, max_sources_tracked: int = 10_000) -> None:
        self._max_datagram_bytes = config.max_datagram_bytes
        self._flood_rate_per_s = config.flood_rate_per_s
        self._flood_burst = config.flood_burst
        self._authenticator = authenticator
        self._clock = clock
        self._max_sources_tracked = max_sources_tracked
        self._networks = [ipaddress.ip_network(net, strict=False) for net in config.allowed_networks]
        self._buckets: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._trusted: set[tuple[str, int]] = set()

    def allowed(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def _within_rate(self, source: str, now: float) -> bool:
        state, decision = token_bucket.take(self._buckets.get(source), now, self._flood_rate_per_s, self._flood_burst)
        self._buckets[source] = state
        self._buckets.move_to_end(source)
        if len(self._buckets) > self._max_sources_tracked:
            self._buckets.popitem(last=False)
        return decision.allowed

    def trust(self, source: str, port: int) -> None:
        """Exempt one exact source address and port (the gateway's own liveness probe) from the ACL
        and the flood bucket; its messages are still checked like any other."""
        self._trusted.add((source, port))

    def inspect(self, data: bytes, source: str, port: int = 0) -> tuple[Verdict, bytes | str | None]:
        """One datagram from ``source``: (PASS, text for sippy) | (REPLY, response bytes) | (DROP, None)."""
        verdict, payload, reason = self._inspect(data, source, (source, port) in self._trusted)
        if verdict is not Verdict.PASS:
            GUARD_ACTIONS.labels(verdict.value, reason).inc()
        return verdict, payload

    def _inspect(self, data: bytes, source: str, trusted: bool) -> tuple[Verdict, bytes | str | None, str]:
        if not trusted:
            if not self.allowed(source):
                return Verdict.DROP, None, "acl"
            if not self._within_rate(source, self._clock()):
                return Verdict.DROP, None, "flood"
        if len(data) > self._max_datagram_bytes:
            return Verdict.DROP, None, "oversized"
        if len(data) < 16 or not data.strip():
            return Verdict.DROP, None, "keepalive"
        try:
            message = split_message(data)
        except SipSyntaxError:
            return Verdict.DROP, None, "unreadable"
        if message.is_response:
            if not RESPONSE_LINE.match(message.start_line):
                return Verdict.DROP, None, "bad_response"
            try:
                check_response_targets(message)
            except SipSyntaxError:
                return Verdict.DROP, None, "bad_response_target"   # a response is never answered
            return Verdict.PASS, canonical_response(data), ""
        try:
            text = self._check_request(message, source)
        except SipSyntaxError as exc:
            if exc.status is None:
                return Verdict.DROP, None, "unanswerable"
            return self._reply(message, exc.status, str(exc))
        except _Refuse as refuse:
            return self._reply(message, refuse.status, str(refuse), refuse.extra)
        guarded = GuardedMessage(text)
        guarded.raw = data
        guarded.headers = tuple(message.headers)
        return Verdict.PASS, guarded, ""

    def _check_request(self, message: Message, source: str) -> str:
        request = read_request(message)
        method = request.method
        if method in _NOT_OURS:
            raise _Refuse(405, f"{method} is not served here", [("Allow", ALLOW)])
        if method not in _STACK_METHODS:
            raise _Refuse(501, "unknown method", [("Allow", ALLOW)])
        scheme = request.uri.split(":", 1)[0].lower() if ":" in request.uri else ""
        if scheme not in _SCHEMES:
            raise _Refuse(416, f"URI scheme {scheme[:20]!r} is not supported")
        if method not in ("ACK", "CANCEL"):
            unsupported = [tag.strip() for value in message.get("require") for tag in value.split(",")
                           if tag.strip() and tag.strip().lower() not in _SUPPORTED_EXTENSIONS]
            if unsupported:
                raise _Refuse(420, "extension not supported", [("Unsupported", ", ".join(unsupported))])
        authenticator = self._authenticator
        if authenticator is not None and method == "INVITE" and not _has_to_tag(message):
            # a new call; an INVITE inside a call (To tag) belongs to a dialog already authenticated
            verdict = authenticator.check(method, source, message.get("authorization"))
            if not verdict.ok:
                raise _Refuse(verdict.status, verdict.detail, list(verdict.headers))
        override = None
        if method == "INVITE":
            full_type = (message.get("content-type") or [""])[0]
            content_type = full_type.split(";", 1)[0].strip().lower()
            if request.body and content_type == "multipart/mixed":
                sdp_part = sdp_part_of_multipart(full_type, request.body)
                if sdp_part is None:
                    raise _Refuse(415, "multipart INVITE without an application/sdp part",
                                  [("Accept", "application/sdp")])
                override = ("application/sdp", sdp_part)   # sippy and we only need the SDP
            elif request.body and content_type != "application/sdp":
                raise _Refuse(415, "INVITE body must be application/sdp", [("Accept", "application/sdp")])
            accepts = [a.split(";", 1)[0].strip().lower() for value in message.get("accept")
                       for a in value.split(",") if a.strip()]
            if accepts and not any(a in _SDP_ACCEPTS for a in accepts):
                raise _Refuse(406, "we answer with application/sdp only", [("Accept", "application/sdp")])
        return canonical_request(request, override)

    def _reply(self, message: Message, status: int, detail: str,
               extra: Iterable[tuple[str, str]] = ()) -> tuple[Verdict, bytes | str | None, str]:
        if message.method == "ACK":
            return Verdict.DROP, None, "bad_ack"  # an ACK is never answered
        response = build_response(message, status, detail, extra)
        if response is None:
            return Verdict.DROP, None, "unanswerable"
        return Verdict.REPLY, response, str(status)


def _has_to_tag(message: Message) -> bool:
    return any(";tag=" in value.replace(" ", "").lower() for value in message.get("to"))


def build_response(message: Message, status: int, detail: str,
                   extra: Iterable[tuple[str, str]] = ()) -> bytes | None:
    """A stateless response: Vias, and the first From/To/Call-ID/CSeq as received. None without a Via."""
    vias = [value for name, value in message.headers if canonical_name(name) == "via"]
    if not vias:
        return None
    reason = _REASONS.get(status, "Bad Request")
    # The reason phrase carries our diagnosis (RFC 3261 allows any text); one printable line.
    safe_detail = re.sub(r"[^\x20-\x7e]", "?", detail)[:100]
    lines = [f"SIP/2.0 {status} {reason} ({safe_detail})"]
    lines += [f"Via: {via}" for via in vias]
    for name, label in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        values = message.get(name)
        if values:
            value = values[0]
            if name == "to" and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag=dtguard"
            lines.append(f"{label}: {value}")
    lines += [f"{name}: {value}" for name, value in extra]
    lines += ["Server: dialtone", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8", errors="replace")
