"""What the gateway checks in a SIP datagram before sippy parses it. Sans-I/O.

sippy is a solid RFC 3261 stack but it trusts its input: it cuts datagrams at 8 KiB,
``int()`` raises on a 5,000-digit CSeq, and RFC 4475 shows about 20 messages it answers
wrongly or not at all. ``SipGuard.inspect`` looks at the raw bytes first and returns one
``Verdict``: PASS to sippy, REPLY with a response we formed from the request's own
headers (400 with the reason, 505, 416, ...), or DROP (counted by reason). It also enforces
the trunk ACL (allowed source networks) and a per-source token bucket against floods.

This is not a SIP parser: it splits the header block into (name, value) lines, which is
all the checks below need, and leaves transactions and dialogs to sippy.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from dialtone.common.metrics import counter

GUARD_ACTIONS = counter("media_sip_guard_total", "SIP datagrams the guard did not pass to the stack, by reason",
                        ["action", "reason"])


class Verdict(enum.Enum):
    PASS = "pass"
    REPLY = "reply"
    DROP = "drop"


# Compact header forms (RFC 3261 §7.3.3) -> full lower-case names.
_COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
            "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via"}
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_REQUEST_LINE = re.compile(r"^([^ ]+) ([^ ]+) SIP/(\d+)\.(\d+)$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3}) ")
_KNOWN_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY", "UPDATE",
                            "PRACK", "SUBSCRIBE", "MESSAGE", "REGISTER", "PUBLISH"})
_NUMERIC_HEADERS = {"content-length": 2**31, "max-forwards": 255, "expires": 2**32}
_REQUIRED = ("via", "from", "to", "call-id", "cseq")
_SUPPORTED_SCHEMES = ("sip", "sips", "tel")


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    max_datagram_bytes: int = 60_000
    allowed_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    flood_rate_per_s: float = 200.0      # sustained datagrams per second per source address
    flood_burst: int = 400
    max_sources_tracked: int = 10_000


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


@dataclasses.dataclass
class ParsedHead:
    """The start line and header lines of a message, unfolded, names as sent."""

    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> list[str]:
        return [value for key, value in self.headers if _canonical(key) == name]


def _canonical(name: str) -> str:
    lowered = name.strip().lower()
    return _COMPACT.get(lowered, lowered)


class MalformedError(ValueError):
    """The message cannot be read; ``status`` is what to answer (None: no response can be formed)."""

    def __init__(self, message: str, status: int | None = 400) -> None:
        super().__init__(message)
        self.status = status


def split_message(data: bytes) -> ParsedHead:
    """Split raw bytes into start line, unfolded header lines and body. Raises MalformedError."""
    head_end = data.find(b"\r\n\r\n")
    sep = 4
    if head_end < 0:
        head_end = data.find(b"\n\n")
        sep = 2
    if head_end < 0:
        raise MalformedError("no empty line after the headers", status=None)
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("header block is not UTF-8", status=None) from None
    lines = head.replace("\r\n", "\n").split("\n")
    start_line = lines[0].strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 §7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or not _TOKEN.match(name.strip()):
            raise MalformedError(f"header line is not 'Name: value': {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    return ParsedHead(start_line, headers, data[head_end + sep:])


class SipGuard:
    """Stateful only in the flood buckets; safe to call from one receive thread."""

    def __init__(self, config: GuardConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._networks = [ipaddress.ip_network(net, strict=False) for net in config.allowed_networks]
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allowed(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def _within_rate(self, source: str, now: float) -> bool:
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(float(self._config.flood_burst), now)
            self._buckets[source] = bucket
            if len(self._buckets) > self._config.max_sources_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            bucket.tokens = min(float(self._config.flood_burst),
                                bucket.tokens + (now - bucket.stamp) * self._config.flood_rate_per_s)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def inspect(self, data: bytes, source: str, transport: str = "udp") -> tuple[Verdict, bytes | None]:
        """Decide what happens to one datagram from ``source``; REPLY comes with the bytes to send."""
        verdict, reply, reason = self._inspect(data, source, transport)
        if verdict is not Verdict.PASS:
            GUARD_ACTIONS.labels(verdict.value, reason).inc()
        return verdict, reply

    def _inspect(self, data: bytes, source: str, transport: str) -> tuple[Verdict, bytes | None, str]:
        if not self.allowed(source):
            return Verdict.DROP, None, "acl"
        if not self._within_rate(source, self._clock()):
            return Verdict.DROP, None, "flood"
        if len(data) > self._config.max_datagram_bytes:
            return Verdict.DROP, None, "oversized"
        if len(data.strip()) == 0:
            return Verdict.DROP, None, "keepalive"
        try:
            message = split_message(data)
        except MalformedError:
            return Verdict.DROP, None, "unreadable"
        if _STATUS_LINE.match(message.start_line):
            return Verdict.PASS, None, ""
        try:
            problem = check_request(message, len(data))
        except MalformedError as exc:
            if exc.status is None:
                return Verdict.DROP, None, "unanswerable"
            return self._reply(message, exc.status, str(exc), transport)
        if problem is not None:
            status, reason, extra = problem
            return self._reply(message, status, reason, transport, extra)
        return Verdict.PASS, None, ""

    def _reply(self, message: ParsedHead, status: int, reason: str, transport: str,
               extra: Iterable[tuple[str, str]] = ()) -> tuple[Verdict, bytes | None, str]:
        method = message.start_line.split(" ", 1)[0]
        if method == "ACK":
            return Verdict.DROP, None, "bad_ack"  # never answer an ACK
        response = build_response(message, status, reason, extra)
        if response is None:
            return Verdict.DROP, None, "unanswerable"
        return Verdict.REPLY, response, str(status)


_REASONS = {400: "Bad Request", 416: "Unsupported URI Scheme", 420: "Bad Extension", 483: "Too Many Hops",
            505: "Version Not Supported", 501: "Not Implemented", 513: "Message Too Large"}


def build_response(message: ParsedHead, status: int, detail: str,
                   extra: Iterable[tuple[str, str]] = ()) -> bytes | None:
    """A stateless response copying Via/From/To/Call-ID/CSeq as received; None if they are missing."""
    copied: dict[str, list[str]] = {name: message.get(name) for name in _REQUIRED}
    if any(len(copied[name]) == 0 for name in _REQUIRED) or len(copied["call-id"]) > 1:
        return None
    if len(copied["cseq"]) > 1 or len(copied["from"]) > 1 or len(copied["to"]) > 1:
        return None
    reason = _REASONS.get(status, "Bad Request")
    # The reason phrase carries our diagnosis (RFC 3261 allows any text); keep it one short line.
    safe_detail = re.sub(r"[^\x20-\x7e]", "?", detail)[:100]
    lines = [f"SIP/2.0 {status} {reason} ({safe_detail})"]
    lines += [f"Via: {via}" for via in copied["via"]]
    to = copied["to"][0]
    if ";tag=" not in to.lower():
        to = f"{to};tag=dtguard"
    lines += [f"From: {copied['from'][0]}", f"To: {to}", f"Call-ID: {copied['call-id'][0]}",
              f"CSeq: {copied['cseq'][0]}"]
    lines += [f"{name}: {value}" for name, value in extra]
    lines += ["Server: dialtone", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8", errors="replace")


def check_request(message: ParsedHead, size: int) -> tuple[int, str, list[tuple[str, str]]] | None:
    """The checks sippy gets wrong. Returns (status, reason, extra headers) to answer, or None to pass."""
    match = _REQUEST_LINE.match(message.start_line)
    if match is None:
        raise MalformedError(f"request line is not 'METHOD URI SIP/2.0': {message.start_line[:60]!r}")
    method, uri, major, minor = match.groups()
    if not _TOKEN.match(method):
        raise MalformedError("method is not a token")
    for name in _REQUIRED:
        if not message.get(name):
            raise MalformedError(f"missing {name} header")
    if (major, minor) != ("2", "0"):
        return 505, "only SIP/2.0 is supported", []
    cseq = message.get("cseq")
    if len(cseq) != 1:
        raise MalformedError("more than one CSeq header")
    cseq_parts = cseq[0].split()
    if len(cseq_parts) != 2 or not cseq_parts[0].isdigit() or len(cseq_parts[0]) > 10 \
            or int(cseq_parts[0]) >= 2**31:
        raise MalformedError("CSeq number must be a 32-bit number")
    if cseq_parts[1] != method:
        raise MalformedError("CSeq method does not match the request line")
    for name, limit in _NUMERIC_HEADERS.items():
        for value in message.get(name):
            digits = value.split(";", 1)[0].strip()
            if not digits.isdigit() or len(digits) > 10 or int(digits) > limit:
                raise MalformedError(f"{name} must be a number up to {limit}")
    lengths = message.get("content-length")
    if len(lengths) > 1:
        raise MalformedError("more than one Content-Length header")
    if lengths and int(lengths[0].split(";", 1)[0]) > len(message.body):
        raise MalformedError("Content-Length is larger than the body")
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme not in _SUPPORTED_SCHEMES:
        if method in _KNOWN_METHODS:
            return 416, f"URI scheme {scheme[:20]!r} is not supported", []
    return None
