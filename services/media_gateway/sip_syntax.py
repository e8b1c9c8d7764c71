"""Strict reading of one SIP message's framing and key headers, and its canonical re-writing. Sans-I/O.

This is the part of "do better than the library" that needs to see the message: sippy drops
or mis-answers messages whose syntax is legal but unusual (folded headers, LWS around ``/``
``;`` ``=``, RFC 2543 INVITEs without Contact, bodies that are not UTF-8), and accepts some
that are illegal (spaces inside ``<>``, unquoted commas in display names, empty parameters).
``read_request`` validates what RFC 3261/4475 require and raises ``SipSyntaxError`` with the
status to answer; ``canonical_request`` re-writes a valid request in the plain form sippy
parses reliably. Transactions and dialogs stay sippy's.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re

# Compact header forms (RFC 3261 §7.3.3) and the spelling we write for headers sippy reads.
COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via"}
CANONICAL_NAMES = {"call-id": "Call-ID", "cseq": "CSeq", "via": "Via", "from": "From", "to": "To",
                   "contact": "Contact", "content-type": "Content-Type", "content-length": "Content-Length",
                   "max-forwards": "Max-Forwards", "record-route": "Record-Route", "route": "Route",
                   "expires": "Expires", "require": "Require", "supported": "Supported"}
TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_REQUEST_LINE = re.compile(r"^([^ ]+) ([^ ]+) SIP/(\d+)\.(\d+)$")
RESPONSE_LINE = re.compile(r"^SIP/2\.0 [1-6]\d\d(?: .*)?$")
_NUMERIC_LIMITS = {"content-length": 2**31 - 1, "max-forwards": 255, "expires": 2**32 - 1}
REQUIRED = ("via", "from", "to", "call-id", "cseq")
_SINGLE = ("from", "to", "call-id", "cseq", "content-length", "max-forwards", "content-type")
_ADDRESS_HEADERS = ("from", "to", "contact")
_ROUTE_HEADERS = ("record-route", "route")      # checked, passed on as written
_LIST_HEADERS = ("contact", "record-route", "route")


class SipSyntaxError(ValueError):
    """Unreadable or illegal message; ``status`` is the answer (None: drop, no response can be formed)."""

    def __init__(self, message: str, status: int | None = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Message:
    """Start line, unfolded (name, value) header lines as sent, and the body bytes."""

    start_line: str
    raw_start_line: str
    headers: list[tuple[str, str]]
    body: bytes
    defects: list[str] = dataclasses.field(default_factory=list)   # header lines we could not read

    def get(self, name: str) -> list[str]:
        """Every value of the header ``name`` (lower-case, long form), in order."""
        return self._by_name.get(name, [])

    @functools.cached_property
    def _by_name(self) -> dict[str, list[str]]:
        # a request's checks look up a dozen names: one pass over the headers, not one per lookup
        by_name: dict[str, list[str]] = {}
        for key, value in self.headers:
            by_name.setdefault(canonical_name(key), []).append(value)
        return by_name

    @property
    def is_response(self) -> bool:
        return self.start_line.startswith("SIP/")

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]


_TRANSPORT_PARAM = re.compile(r";transport=([A-Za-z]+)", re.IGNORECASE)
_TRANSPORT_PARAM_BYTES = re.compile(rb";transport=([A-Za-z]+)", re.IGNORECASE)


def lower_transport_params(head: str) -> str:
    """URI ``transport=`` values are case-insensitive, sippy only knows 'udp': write them lower-case."""
    return _TRANSPORT_PARAM.sub(lambda m: m.group(0).lower(), head)


def canonical_response(data: bytes) -> bytes:
    """A response passes as received except for the URI transport parameter case (see above)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return data
    head = _TRANSPORT_PARAM_BYTES.sub(lambda m: m.group(0).lower(), data[:head_end])
    return head + data[head_end:]


def canonical_name(name: str) -> str:
    lowered = name.strip().lower()
    return COMPACT.get(lowered, lowered)


def split_message(data: bytes) -> Message:
    """Split raw bytes into start line, unfolded header lines and body. A message cut off inside its
    headers (no empty line) comes back with a defect, so it is answered 400 rather than processed."""
    data = data.lstrip(b"\r\n")   # CRLFs before the start line are ignored (RFC 3261 §7.5; keep-alives)
    head_end, sep = data.find(b"\r\n\r\n"), 4
    if head_end < 0:
        head_end, sep = data.find(b"\n\n"), 2
    truncated = head_end < 0
    if truncated:
        if not data.endswith(b"\n"):
            raise SipSyntaxError("no empty line after the headers", status=None)
        head_end, sep = len(data), 0
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipSyntaxError("header block is not UTF-8", status=None) from None
    lines = head.replace("\r\n", "\n").split("\n")
    headers: list[tuple[str, str]] = []
    defects: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 §7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not TOKEN.match(name.strip()):
            defects.append(f"header line is not 'Name: value': {line[:60]!r}")
            continue
        headers.append((name.strip(), value.strip()))
    if truncated:
        defects.insert(0, "message ends inside its headers (no empty line after them)")
    return Message(lines[0].strip(), lines[0], headers, data[head_end + sep:], defects)


def _split_outside(value: str, separator: str) -> list[str]:
    """Split on ``separator`` outside quoted strings and <...>; raises on an unterminated quote."""
    if '"' not in value and "<" not in value:
        return value.split(separator)   # nothing to stay outside of: most Via and parameter lists
    parts, current, quoted, angle, escaped = [], [], False, False, False
    for char in value:
        if quoted:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        elif char == "<":
            angle = True
        elif char == ">":
            angle = False
        elif char == separator and not angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise SipSyntaxError("unterminated quoted string")
    if angle:
        raise SipSyntaxError("'<' without '>'")
    parts.append("".join(current))
    return parts


def _params(text: str, where: str) -> list[tuple[str, str | None]]:
    """';name[=value]' list (LWS allowed around ';' and '='); empty parameters are an error."""
    text = text.strip()
    if not text:
        return []
    if not text.startswith(";"):
        raise SipSyntaxError(f"{where}: unexpected text {text[:30]!r} before parameters")
    out: list[tuple[str, str | None]] = []
    for item in _split_outside(text[1:], ";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not name or not TOKEN.match(name):
            raise SipSyntaxError(f"{where}: empty or invalid parameter {item.strip()[:30]!r}")
        out.append((name, value.strip() if eq else None))
    return out


def _write_params(params: list[tuple[str, str | None]]) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def _address(value: str, header: str) -> str:
    """Validate one name-addr / addr-spec (RFC 3261 §25.1); return it as 'display <uri>;params'."""
    item = value.strip()
    if not item:
        raise SipSyntaxError(f"{header}: empty address")
    if item == "*" and header == "contact":
        return item
    quoted_end = -1
    if item.startswith('"'):
        _split_outside(item, ",")  # raises on an unterminated quote
        index, escaped = 1, False
        while index < len(item):
            char = item[index]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted_end = index
                break
            index += 1
    search_from = quoted_end + 1 if quoted_end >= 0 else 0
    open_at = item.find("<", search_from)
    if open_at >= 0:
        display = item[:open_at].strip()
        if quoted_end >= 0:
            if item[quoted_end + 1:open_at].strip():
                raise SipSyntaxError(f"{header}: text between display name and '<'")
        elif display and not all(TOKEN.match(word) for word in display.split()):
            raise SipSyntaxError(f"{header}: display name has characters that need quotes")
        close_at = item.find(">", open_at)
        if close_at < 0:
            raise SipSyntaxError(f"{header}: '<' without '>'")
        uri = item[open_at + 1:close_at]
        if not uri or _WHITESPACE.search(uri) or ":" not in uri:
            raise SipSyntaxError(f"{header}: URI inside <> must be an absolute URI without spaces")
        params = _params(item[close_at + 1:], header)
        return (f"{display} " if display else "") + f"<{uri}>" + _write_params(params)
    if quoted_end >= 0 or '"' in item:
        raise SipSyntaxError(f"{header}: quoted display name without <URI>")
    uri, _, rest = item.partition(";")
    uri = uri.strip()
    if not uri or _WHITESPACE.search(uri) or ":" not in uri or "?" in uri or "," in uri:
        raise SipSyntaxError(f"{header}: addr-spec must be a URI without spaces, '?' or ','")
    params = _params(";" + rest if rest or item.rstrip().endswith(";") else "", header)
    return f"<{uri}>" + _write_params(params)


# RFC 3261 §25.1 hostname (underscores tolerated, as PBXs use them); the top label starts with a letter,
# so '192.0.2.999' is neither an IPv4 address nor a hostname.
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?\.)*"
                       r"[A-Za-z](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?\.?")
_PORT = re.compile(r"[0-9]{1,5}")
_WHITESPACE = re.compile(r"\s")   # what str.isspace() takes: Unicode whitespace too


@functools.lru_cache(maxsize=4096)   # the same few peers send every message; ipaddress is slow to parse
def valid_host(host: str) -> bool:
    """A hostname, an IPv4 address or a bracketed IPv6 reference: something a socket can be aimed at."""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if not host or len(host) > 253:
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return bool(_HOSTNAME.fullmatch(host))
    return True


def valid_port(text: str) -> bool:
    return bool(_PORT.fullmatch(text)) and 1 <= int(text) <= 65535


def check_hostport(text: str, where: str) -> None:
    """``host[:port]`` we may send to: raises SipSyntaxError (400) for an unusable host or a port outside 1-65535.
    sippy's sender thread died on ``sendto()`` to port 70000; its URL parser raises on ':::host'."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = (text, "") if end < 0 else (text[:end + 1], text[end + 1:])
    else:
        host, colon, port = text.partition(":")
        rest = colon + port
    if not valid_host(host):
        raise SipSyntaxError(f"{where}: {host[:40]!r} is not a host name or IP address")
    if rest and (not rest.startswith(":") or not valid_port(rest[1:])):
        raise SipSyntaxError(f"{where}: port {rest[1:][:12]!r} is not a number from 1 to 65535")


def check_uri_target(uri: str, where: str) -> None:
    """The host[:port] and maddr of a sip:/sips: URI, read the way sippy reads them (first '@')."""
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        return    # tel: and other schemes carry no host we would send to
    at = rest.find("@") + 1
    hostport = re.split(r"[;?]", rest[at:], maxsplit=1)[0]
    check_hostport(hostport, where)
    for param in rest[at + len(hostport):].split("?", 1)[0].split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "maddr" and not valid_host(value.strip()):
            raise SipSyntaxError(f"{where}: maddr {value[:40]!r} is not a host name or IP address")


def _check_via_params(params: list[tuple[str, str | None]]) -> None:
    for name, value in params:
        key = name.lower()
        if key == "rport" and value is not None and not valid_port(value):
            raise SipSyntaxError(f"Via: rport {value[:12]!r} is not a number from 1 to 65535")
        if key == "received":
            address = value or ""
            try:
                ipaddress.ip_address(address[1:-1] if address[:1] == "[" and address[-1:] == "]" else address)
            except ValueError:
                raise SipSyntaxError(f"Via: received {str(value)[:40]!r} is not an IP address") from None
        if key == "maddr" and not valid_host(value or ""):
            raise SipSyntaxError(f"Via: maddr {str(value)[:40]!r} is not a host name or IP address")


# protocol-name and version are case-insensitive tokens: 'sip/2.0/udp' is legal and written upper-case
_VIA_PROTOCOL = re.compile(r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$", re.DOTALL | re.IGNORECASE)


def _via(value: str) -> str:
    out = []
    for part in _split_outside(value, ","):
        match = _VIA_PROTOCOL.match(part.strip())
        if match is None:
            raise SipSyntaxError(f"Via: not 'SIP/2.0/TRANSPORT host': {part.strip()[:40]!r}")
        transport, rest = match.groups()
        sent_by, _, params = rest.partition(";")
        sent_by = sent_by.strip()
        if not sent_by or any(c.isspace() for c in sent_by):
            raise SipSyntaxError("Via: bad sent-by")
        check_hostport(sent_by, "Via sent-by")
        parsed = _params(";" + params if params or rest.rstrip().endswith(";") else "", "Via")
        _check_via_params(parsed)
        out.append(f"SIP/2.0/{transport.upper()} {sent_by}{_write_params(parsed)}")
    return ", ".join(out)


_ASCII_NUMBER = re.compile(r"0*([0-9]{1,10})")


def _number(value: str, name: str, limit: int) -> int:
    """1*DIGIT (RFC 3261 §25: no sign, no parameters; leading zeros allowed, so thirty zeros is 0).
    str.isdigit() and int() take any Unicode digit ('\uff10'); SIP numbers are ASCII digits only."""
    match = _ASCII_NUMBER.fullmatch(value.strip())
    if match is None or int(match.group(1)) > limit:
        raise SipSyntaxError(f"{name} must be a number up to {limit}")
    return int(match.group(1))


@dataclasses.dataclass(frozen=True)
class Request:
    message: Message
    method: str
    uri: str
    cseq: int
    body: bytes          # exactly Content-Length bytes (or the rest of the datagram without one)


def read_request(message: Message) -> Request:
    """Check a request's start line and key headers (RFC 3261 §7, §8.2, §25; RFC 4475)."""
    if message.raw_start_line.rstrip("\r") != message.start_line:
        raise SipSyntaxError("whitespace around the Request-Line")
    match = _REQUEST_LINE.match(message.start_line)
    if match is None:
        raise SipSyntaxError("Request-Line is not 'METHOD SP Request-URI SP SIP/2.0'")
    method, uri, major, minor = match.groups()
    if not TOKEN.match(method):
        raise SipSyntaxError("method is not a token")
    if not message.get("via"):
        raise SipSyntaxError("missing Via header", status=None)
    if message.defects:
        raise SipSyntaxError(message.defects[0])
    for name in REQUIRED:
        if not message.get(name):
            raise SipSyntaxError(f"missing {name} header")
    for name in _SINGLE:
        if len(message.get(name)) > 1:
            raise SipSyntaxError(f"more than one {name} header")
    if (major, minor) != ("2", "0"):
        raise SipSyntaxError("only SIP/2.0 is supported", status=505)
    if uri.startswith("<"):
        raise SipSyntaxError("Request-URI must not be enclosed in <>")
    if "?" in uri[uri.rfind("@") + 1:]:
        raise SipSyntaxError("Request-URI must not carry headers ('?')")
    cseq_parts = message.get("cseq")[0].split()
    if len(cseq_parts) != 2:
        raise SipSyntaxError("CSeq must be 'number METHOD'")
    cseq = _number(cseq_parts[0], "CSeq", 2**31 - 1)
    if cseq_parts[1] != method:
        raise SipSyntaxError("CSeq method does not match the Request-Line")
    for name, limit in _NUMERIC_LIMITS.items():
        for value in message.get(name):
            _number(value, name, limit)
    for value in message.get("via"):
        _via(value)
    check_uri_target(uri, "Request-URI")
    _check_address_targets(message, (*_ADDRESS_HEADERS, *_ROUTE_HEADERS))
    for value in message.get("date"):
        if not value.rstrip().endswith("GMT"):
            raise SipSyntaxError("Date must be in GMT (RFC 3261 §20.17)")
    lengths = message.get("content-length")
    body = message.body
    if lengths:
        declared = _number(lengths[0], "Content-Length", _NUMERIC_LIMITS["content-length"])
        if declared > len(body):
            raise SipSyntaxError("Content-Length is larger than the body")
        body = body[:declared]  # extra octets in a datagram are ignored (RFC 3261 §18.3)
    return Request(message, method, uri, cseq, body)


def _check_address_targets(message: Message, names: tuple[str, ...]) -> None:
    for name in names:
        label = CANONICAL_NAMES[name]
        for value in message.get(name):
            items = _split_outside(value, ",") if name in _LIST_HEADERS else [value]
            for item in items:
                written = _address(item, name)
                if written != "*":
                    check_uri_target(written[written.find("<") + 1:written.find(">")], label)


def check_response_targets(message: Message) -> None:
    """A response's Contact and Record-Route become where we send ACK, BYE and re-INVITEs: raise
    SipSyntaxError when one names a host or port nothing can be sent to."""
    for value in message.get("via"):
        _via(value)
    _check_address_targets(message, ("contact", *_ROUTE_HEADERS))


def sdp_part_of_multipart(content_type: str, body: bytes) -> bytes | None:
    """The application/sdp part of a multipart/mixed body (RFC 5621; e.g. SDP + ISUP from a carrier)."""
    boundary = None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return None
    for part in body.split(b"--" + boundary.encode("utf-8", errors="replace"))[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type" and value.split(b";")[0].strip().lower() == b"application/sdp":
                return content[:-2] if content.endswith(b"\r\n") else content
    return None


def canonical_request(request: Request, body_override: tuple[str, bytes] | None = None) -> str:
    """The request re-written plainly for sippy: canonical names, no folding, tidy Via/addresses.
    ``body_override`` (content type, body) replaces the body (the SDP part of a multipart INVITE)."""
    message = request.message
    lines = [message.start_line]
    has_contact = False
    for name, value in message.headers:
        key = canonical_name(name)
        if key == "content-length" or (body_override is not None and key == "content-type"):
            continue
        if key == "via":
            value = _via(value)
        elif key in _ADDRESS_HEADERS:
            items = _split_outside(value, ",") if key == "contact" else [value]
            value = ", ".join(_address(item, key) for item in items)
            has_contact = has_contact or key == "contact"
        elif key == "cseq":
            value = f"{request.cseq} {request.method}"
        lines.append(f"{CANONICAL_NAMES.get(key, name)}: {value}")
    if request.method == "INVITE" and not has_contact:
        # RFC 2543 INVITEs may lack Contact; its remote target was the From URI. sippy needs one.
        from_uri = _address(message.get("from")[0], "from")
        lines.append("Contact: " + from_uri[from_uri.find("<"):from_uri.find(">") + 1])
    raw_body = request.body
    if body_override is not None:
        lines.append(f"Content-Type: {body_override[0]}")
        raw_body = body_override[1]
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        body = raw_body.decode("latin-1")  # one char per octet keeps Content-Length true
    lines.append(f"Content-Length: {len(body)}")  # sippy counts characters of the decoded text
    return lower_transport_params("\r\n".join(lines)) + "\r\n\r\n" + body
