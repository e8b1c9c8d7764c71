"""SDP offer/answer for one audio stream (RFC 4566 syntax, RFC 3264 negotiation). Sans-I/O.

``parse_sdp(text)`` reads a session description into plain values (raising ``SdpError``
with the SIP status to answer); ``negotiate_answer(offer, prefs)`` picks the best common
codec in our preference order and our direction (``SdpNotAcceptable`` -> 488 when there is
none), and SRTP keys when the offer is RTP/SAVP with an SDES ``a=crypto`` we support and the
policy and signalling allow it (RFC 4568: keys only over TLS); ``build_answer`` /
``build_offer`` write the SDP we send; ``accept_answer`` reads the peer's answer to an offer
we made (UAC side).

Hand-written on purpose: sippy's ``SdpBody`` only splits lines and keeps strings, it has no
offer/answer rules, and its parse errors cannot be told apart from bugs. The grammar we need
(v/o/s/c/t/m/a lines) is small; the negotiation rules are the part that matters.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress

from dialtone.media_gateway.media_types import Direction, NegotiatedMedia, SrtpKeys, SrtpPolicy

__all__ = [
    "CODECS", "SRTP_KEY_BYTES", "Codec", "Crypto", "MediaDescription", "SdpError", "SdpNotAcceptable",
    "SessionDescription",
    "accept_answer", "build_answer", "build_offer", "negotiate_answer", "parse_sdp",
]

MAX_SDP_BYTES = 16 * 1024
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")   # in our preference order
SRTP_KEY_BYTES = 30   # 16-byte master key + 14-byte salt (RFC 4568 §6.2.1)
_PLAIN_PROTOS = ("RTP/AVP", "RTP/AVPF")
_SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")


class SdpError(ValueError):
    """The body is not SDP we can read; ``sip_status`` is the answer to give the INVITE."""

    sip_status = 400

    def __init__(self, message: str, sip_status: int | None = None) -> None:
        super().__init__(message)
        if sip_status is not None:
            self.sip_status = sip_status


class SdpNotAcceptable(SdpError):
    """Readable SDP, but nothing we can accept (no common codec, no audio): 488."""

    sip_status = 488


@dataclasses.dataclass(frozen=True)
class Codec:
    name: str          # canonical spelling: "PCMU", "PCMA", "opus"
    clock_rate: int
    channels: int
    static_pt: int | None


# What we can decode/encode, by lower-case encoding name.
CODECS: dict[str, Codec] = {
    "pcmu": Codec("PCMU", 8000, 1, 0),
    "pcma": Codec("PCMA", 8000, 1, 8),
    "opus": Codec("opus", 48000, 2, None),
}
_STATIC_PTS = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 18: ("G729", 8000, 1), 9: ("G722", 8000, 1),
               3: ("GSM", 8000, 1), 4: ("G723", 8000, 1)}
_DIRECTIONS = {d.value: d for d in Direction}
_ANSWER_DIRECTION = {  # RFC 3264 §6.1: the answer's direction for the offer's direction
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


@dataclasses.dataclass(frozen=True)
class RtpFormat:
    payload_type: int
    encoding: str       # as written in a=rtpmap (or the static table)
    clock_rate: int
    channels: int
    fmtp: str = ""


@dataclasses.dataclass(frozen=True)
class Crypto:
    """One ``a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI]`` line (RFC 4568)."""

    tag: int
    suite: str
    key: bytes      # decoded master key + salt


@dataclasses.dataclass(frozen=True)
class MediaDescription:
    media: str                  # "audio", "video", ...
    port: int
    proto: str                  # "RTP/AVP", ...
    formats: tuple[RtpFormat, ...]
    connection: str | None      # c= of this m-line, else the session's
    direction: Direction        # as the offerer wrote it (session-level default applied)
    ptime_ms: int | None
    raw_fmt: str                # the m-line's format list, echoed when we reject the line
    crypto: tuple[Crypto, ...] = ()   # SDES keys we can use (other suites and unreadable lines left out)

    @property
    def secure(self) -> bool:
        return self.proto in _SECURE_PROTOS


@dataclasses.dataclass(frozen=True)
class SessionDescription:
    origin_user: str
    session_id: str
    session_version: int
    media: tuple[MediaDescription, ...]

    def audio_index(self) -> int | None:
        for index, media in enumerate(self.media):
            if media.media == "audio" and media.port > 0 and media.proto in (*_PLAIN_PROTOS, *_SECURE_PROTOS):
                return index
        return None


def _parse_int(text: str, what: str, low: int, high: int) -> int:
    # Length check first: int() on thousands of digits is slow and then raises.
    if not text.isdigit() or len(text) > 10:
        raise SdpError(f"SDP: {what} must be a number, got {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"SDP: {what} {value} is out of range {low}..{high}")
    return value


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"SDP: c= line must be 'IN IP4|IP6 address', got {value[:80]!r}")
    address = parts[2].split("/", 1)[0]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        # Hostnames are legal in c= but we never resolve them on the call path.
        raise SdpNotAcceptable(f"SDP: c= address must be a literal IP address, got {address[:80]!r}") from None
    return address


class _MediaBuilder:
    def __init__(self, media: str, port: int, proto: str, pts: list[int], raw_fmt: str) -> None:
        self.media, self.port, self.proto, self.pts, self.raw_fmt = media, port, proto, pts, raw_fmt
        self.rtpmap: dict[int, tuple[str, int, int]] = {}
        self.fmtp: dict[int, str] = {}
        self.connection: str | None = None
        self.direction: Direction | None = None
        self.ptime: int | None = None
        self.unreadable: set[int] = set()
        self.crypto: list[Crypto] = []

    def attribute(self, name: str, value: str) -> None:
        if name == "rtpmap":
            pt_text, _, enc = value.partition(" ")
            pt = _parse_int(pt_text, "rtpmap payload type", 0, 127)
            parts = enc.strip().split("/")
            try:
                if len(parts) < 2 or not parts[0]:
                    raise SdpError(f"SDP: a=rtpmap must be 'PT name/rate[/channels]', got {value[:80]!r}")
                rate = _parse_int(parts[1], "rtpmap clock rate", 1, 1_000_000)
                channels = _parse_int(parts[2], "rtpmap channels", 1, 8) if len(parts) > 2 and parts[2] else 1
            except SdpError:
                # A format we cannot read is a format we do not use (real offers carry 'a=rtpmap:31 LPC').
                self.rtpmap.pop(pt, None)
                self.unreadable.add(pt)
                return
            self.rtpmap[pt] = (parts[0], rate, channels)
        elif name == "fmtp":
            pt_text, _, params = value.partition(" ")
            if pt_text.isdigit() and len(pt_text) <= 3:
                self.fmtp[int(pt_text)] = params.strip()
        elif name in _DIRECTIONS:
            self.direction = _DIRECTIONS[name]
        elif name == "ptime":
            self.ptime = _parse_int(value.strip(), "ptime", 1, 1000)
        elif name == "crypto" and len(self.crypto) < 16:
            crypto = _parse_crypto(value)
            if crypto is not None:
                self.crypto.append(crypto)

    def build(self, session_connection: str | None, session_direction: Direction) -> MediaDescription:
        formats = []
        for pt in self.pts:
            if pt in self.unreadable:
                continue
            if pt in self.rtpmap:
                enc, rate, channels = self.rtpmap[pt]
            elif pt in _STATIC_PTS:
                enc, rate, channels = _STATIC_PTS[pt]
            else:
                continue  # a dynamic PT without rtpmap: unusable, ignore it
            formats.append(RtpFormat(pt, enc, rate, channels, self.fmtp.get(pt, "")))
        return MediaDescription(self.media, self.port, self.proto, tuple(formats),
                                self.connection or session_connection,
                                self.direction or session_direction, self.ptime, self.raw_fmt, tuple(self.crypto))


def _parse_crypto(value: str) -> Crypto | None:
    """An a=crypto value we can use, or None (another suite, session parameters, MKI, a bad key)."""
    parts = value.split()
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 9 or parts[1] not in SRTP_SUITES:
        return None
    params = parts[2]
    if not params.startswith("inline:") or ";" in params:   # one key only: no multiple key params
        return None
    key_text, *rest = params[len("inline:"):].split("|")
    if any(":" in item for item in rest):   # an MKI: pylibsrtp sessions here run without one
        return None
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(key) != SRTP_KEY_BYTES:
        return None
    return Crypto(int(parts[0]), parts[1], key)


def parse_sdp(text: str) -> SessionDescription:
    """Read an SDP body; raises ``SdpError`` (400) or ``SdpNotAcceptable`` (488) with the reason."""
    if len(text) > MAX_SDP_BYTES:
        raise SdpError(f"SDP: body of {len(text)} bytes is over the {MAX_SDP_BYTES}-byte limit")
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP: must start with v=0")
    origin: tuple[str, str, int] | None = None
    session_connection: str | None = None
    session_direction = Direction.SENDRECV
    builders: list[_MediaBuilder] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"SDP: line is not 'x=value': {line[:80]!r}")
        kind, value = line[0], line[2:].strip()
        current = builders[-1] if builders else None
        if kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpError(f"SDP: o= line needs 6 fields, got {value[:80]!r}")
            version = parts[2]
            origin = (parts[0], parts[1], int(version) if version.isdigit() and len(version) <= 18 else 0)
        elif kind == "c":
            address = _parse_connection(value)
            if current is None:
                session_connection = address
            else:
                current.connection = address
        elif kind == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpError(f"SDP: m= line needs 'media port proto fmt...', got {value[:80]!r}")
            port = _parse_int(parts[1].split("/", 1)[0], "m= port", 0, 65535)
            pts = [int(p) for p in parts[3:] if p.isdigit() and len(p) <= 3 and int(p) <= 127]
            builders.append(_MediaBuilder(parts[0], port, parts[2], pts, " ".join(parts[3:])))
        elif kind == "a":
            name, _, attr_value = value.partition(":")
            if current is None:
                if name in _DIRECTIONS:
                    session_direction = _DIRECTIONS[name]
            else:
                current.attribute(name, attr_value)
    if origin is None:
        raise SdpError("SDP: missing o= line")
    if not builders:
        raise SdpNotAcceptable("SDP: no m= line")
    media = tuple(b.build(session_connection, session_direction) for b in builders)
    for item in media:
        if item.port > 0 and item.connection is None:
            raise SdpError(f"SDP: m={item.media} has no c= line (session or media level)")
    return SessionDescription(origin[0], origin[1], origin[2], media)


def _is_hold_address(address: str | None) -> bool:
    return address in ("0.0.0.0", "::")


def _pick(media: MediaDescription, preference: tuple[str, ...]) -> tuple[RtpFormat, Codec]:
    offered = {}
    for fmt in media.formats:
        offered.setdefault(fmt.encoding.lower(), fmt)
    for name in preference:
        key = name.lower()
        codec = CODECS.get(key)
        fmt = offered.get(key)
        if codec is not None and fmt is not None and fmt.clock_rate == codec.clock_rate:
            return fmt, codec
    names = ", ".join(f"{f.encoding}/{f.clock_rate}" for f in media.formats) or "none"
    raise SdpNotAcceptable(f"SDP: no common codec; offered {names}; we accept {', '.join(preference)}")


def _telephone_event(media: MediaDescription, clock_rate: int) -> RtpFormat | None:
    for fmt in media.formats:
        if fmt.encoding.lower() == "telephone-event" and fmt.clock_rate == clock_rate:
            return fmt
    return None


def _srtp_keys(media: MediaDescription, policy: SrtpPolicy, secure_signalling: bool,
               local_key: bytes) -> SrtpKeys | None:
    """The SRTP keys for an offered stream, or None for plain RTP; SdpNotAcceptable (488) when the offer
    and the policy cannot meet."""
    if not media.secure:
        if policy is SrtpPolicy.REQUIRED:
            raise SdpNotAcceptable("SDP: SRTP is required here and the offer is plain RTP/AVP")
        return None
    if policy is SrtpPolicy.OFF:
        raise SdpNotAcceptable("SDP: the offer is RTP/SAVP only and SRTP is off here")
    if not secure_signalling:
        raise SdpNotAcceptable("SDP: SDES keys are only taken over TLS (sips: or transport=tls)")
    for suite in SRTP_SUITES:
        crypto = next((c for c in media.crypto if c.suite == suite), None)
        if crypto is not None:
            if len(local_key) != SRTP_KEY_BYTES:
                raise ValueError(f"local SRTP key must be {SRTP_KEY_BYTES} bytes")
            return SrtpKeys(crypto.suite, crypto.tag, local_key, crypto.key)
    raise SdpNotAcceptable(f"SDP: no a=crypto with a suite we support ({', '.join(SRTP_SUITES)})")


def negotiate_answer(offer: SessionDescription, preference: tuple[str, ...], *,
                     local_hold: bool = False, srtp: SrtpPolicy = SrtpPolicy.OFF, secure_signalling: bool = False,
                     local_key: bytes = b"") -> NegotiatedMedia:
    """Choose codec, telephone-event, ptime, our direction and SRTP keys for the offer's first audio
    stream. ``local_key`` (30 random bytes) is ours should the stream be SRTP; the caller makes it, so
    this stays a pure function."""
    index = offer.audio_index()
    if index is None:
        raise SdpNotAcceptable("SDP: no audio stream over RTP/AVP or RTP/SAVP in the offer")
    media = offer.media[index]
    keys = _srtp_keys(media, srtp, secure_signalling, local_key)
    fmt, codec = _pick(media, preference)
    event = _telephone_event(media, codec.clock_rate)
    offered = media.direction
    if _is_hold_address(media.connection) and offered.we_send:
        # RFC 2543-style hold (c=0.0.0.0): the peer will not receive, treat it as sendonly.
        offered = Direction.SENDONLY if offered is Direction.SENDRECV else Direction.INACTIVE
    direction = _ANSWER_DIRECTION[offered]
    if local_hold:
        direction = Direction.SENDONLY if direction.we_send else Direction.INACTIVE
    return NegotiatedMedia(
        codec=codec.name, payload_type=fmt.payload_type, clock_rate=codec.clock_rate,
        channels=fmt.channels if codec.name == "opus" else 1,
        ptime_ms=media.ptime_ms or 20,
        telephone_event_pt=event.payload_type if event else None,
        remote_host=media.connection or "0.0.0.0", remote_port=media.port, direction=direction, srtp=keys)


def _rtpmap_lines(pt: int, name: str, rate: int, channels: int, fmtp: str = "") -> list[str]:
    lines = [f"a=rtpmap:{pt} {name}/{rate}" + (f"/{channels}" if channels > 1 else "")]
    if fmtp:
        lines.append(f"a=fmtp:{pt} {fmtp}")
    return lines


def _header(local_host: str, session_id: int, version: int) -> list[str]:
    family = "IP6" if ":" in local_host else "IP4"
    return ["v=0", f"o=dialtone {session_id} {version} IN {family} {local_host}", "s=dialtone",
            f"c=IN {family} {local_host}", "t=0 0"]


def build_answer(offer: SessionDescription, negotiated: NegotiatedMedia, *, local_host: str,
                 local_port: int, session_id: int, version: int) -> str:
    """Our answer: one m-line per offered one (RFC 3264 §6), non-chosen streams rejected with port 0."""
    lines = _header(local_host, session_id, version)
    chosen = offer.audio_index()
    for index, media in enumerate(offer.media):
        if index != chosen:
            lines.append(f"m={media.media} 0 {media.proto} {media.raw_fmt}")
            continue
        pts = [negotiated.payload_type]
        if negotiated.telephone_event_pt is not None:
            pts.append(negotiated.telephone_event_pt)
        lines.append(f"m=audio {local_port} {media.proto} {' '.join(map(str, pts))}")
        fmtp = "useinbandfec=1" if negotiated.codec == "opus" else ""
        lines += _rtpmap_lines(negotiated.payload_type, negotiated.codec, negotiated.clock_rate,
                               negotiated.channels, fmtp)
        if negotiated.telephone_event_pt is not None:
            lines += _rtpmap_lines(negotiated.telephone_event_pt, "telephone-event", negotiated.clock_rate, 1,
                                   "0-16")
        lines.append(f"a=ptime:{negotiated.ptime_ms}")
        lines.append(f"a={negotiated.direction.value}")
        if negotiated.srtp is not None:
            key = base64.b64encode(negotiated.srtp.local_key).decode("ascii")
            lines.append(f"a=crypto:{negotiated.srtp.tag} {negotiated.srtp.suite} inline:{key}")
    return "\r\n".join(lines) + "\r\n"


# Dynamic payload types we use in our own offers.
OPUS_PT = 111
TELEPHONE_EVENT_PTS = {8000: 101, 48000: 110}


def build_offer(preference: tuple[str, ...], *, local_host: str, local_port: int, session_id: int,
                version: int, direction: Direction = Direction.SENDRECV, ptime_ms: int = 20,
                srtp_key: bytes | None = None) -> str:
    """An offer with every codec we support, in preference order, plus telephone-event; with ``srtp_key``
    an RTP/SAVP offer carrying it (AES_CM_128_HMAC_SHA1_80)."""
    lines = _header(local_host, session_id, version)
    formats: list[tuple[int, str, int, int]] = []
    for name in preference:
        codec = CODECS.get(name.lower())
        if codec is None:
            continue
        pt = codec.static_pt if codec.static_pt is not None else OPUS_PT
        formats.append((pt, codec.name, codec.clock_rate, codec.channels))
    rates = sorted({rate for _, _, rate, _ in formats})
    events = [(TELEPHONE_EVENT_PTS[rate], "telephone-event", rate, 1) for rate in rates if rate in TELEPHONE_EVENT_PTS]
    all_formats = formats + events
    proto = "RTP/SAVP" if srtp_key is not None else "RTP/AVP"
    lines.append(f"m=audio {local_port} {proto} {' '.join(str(f[0]) for f in all_formats)}")
    for pt, name, rate, channels in all_formats:
        lines += _rtpmap_lines(pt, name, rate, channels, "0-16" if name == "telephone-event" else "")
    lines.append(f"a=ptime:{ptime_ms}")
    lines.append(f"a={direction.value}")
    if srtp_key is not None:
        lines.append(f"a=crypto:1 {SRTP_SUITES[0]} inline:{base64.b64encode(srtp_key).decode('ascii')}")
    return "\r\n".join(lines) + "\r\n"


def accept_answer(answer: SessionDescription, preference: tuple[str, ...],
                  offered_direction: Direction = Direction.SENDRECV, srtp_key: bytes | None = None) -> NegotiatedMedia:
    """Read the peer's answer to our offer (UAC): the first codec it kept that we offered, and its SRTP
    key when we offered ``srtp_key``."""
    index = answer.audio_index()
    if index is None:
        raise SdpNotAcceptable("SDP answer: the audio stream was rejected")
    media = answer.media[index]
    keys = None
    if srtp_key is not None:
        crypto = next((c for c in media.crypto if c.suite == SRTP_SUITES[0]), None)
        if not media.secure or crypto is None:
            raise SdpNotAcceptable("SDP answer: we offered SRTP and the answer has no usable a=crypto")
        keys = SrtpKeys(crypto.suite, crypto.tag, srtp_key, crypto.key)
    fmt, codec = None, None
    wanted = {name.lower() for name in preference}
    for candidate in media.formats:
        known = CODECS.get(candidate.encoding.lower())
        if known is not None and known.name.lower() in wanted:
            fmt, codec = candidate, known
            break
    if fmt is None or codec is None:
        raise SdpNotAcceptable("SDP answer: no codec we offered")
    event = _telephone_event(media, codec.clock_rate)
    their = media.direction
    # Our direction is the mirror of theirs, limited by what we offered.
    mirrored = _ANSWER_DIRECTION[their]
    if not offered_direction.we_send and mirrored.we_send:
        mirrored = Direction.RECVONLY if mirrored.we_receive else Direction.INACTIVE
    return NegotiatedMedia(
        codec=codec.name, payload_type=fmt.payload_type, clock_rate=codec.clock_rate,
        channels=fmt.channels if codec.name == "opus" else 1, ptime_ms=media.ptime_ms or 20,
        telephone_event_pt=event.payload_type if event else None,
        remote_host=media.connection or "0.0.0.0", remote_port=media.port, direction=mirrored, srtp=keys)
