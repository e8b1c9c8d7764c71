"""Small pure rules the call layer applies to SIP values: INFO DTMF bodies, SIP URIs, session timers."""

from __future__ import annotations

import re

__all__ = ["SessionIntervalTooSmall", "parse_dtmf_info", "parse_sip_uri", "session_timer", "sip_uri_transport"]

_INFO_SIGNAL = re.compile(r"^\s*signal\s*=\s*([0-9*#A-Da-d])\s*$", re.IGNORECASE | re.MULTILINE)
_INFO_DURATION = re.compile(r"^\s*duration\s*=\s*(\d{1,6})\s*$", re.IGNORECASE | re.MULTILINE)
_SIP_URI = re.compile(r"^(?P<scheme>sips?):(?:(?P<user>[^@;?]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:;?]+)"
                      r"(?::(?P<port>\d{1,5}))?(?P<params>;[^?]*)?")


def parse_dtmf_info(content_type: str, body: str) -> tuple[str, int] | None:
    """(digit, duration_ms) from an INFO body (application/dtmf-relay or application/dtmf), else None."""
    content_type = content_type.lower()
    if content_type == "application/dtmf-relay":
        signal = _INFO_SIGNAL.search(body)
        if signal is None:
            return None
        duration = _INFO_DURATION.search(body)
        return signal.group(1).upper(), int(duration.group(1)) if duration else 100
    if content_type == "application/dtmf":
        digit = body.strip()
        if len(digit) == 1 and digit.upper() in "0123456789*#ABCD":
            return digit.upper(), 100
    return None


class SessionIntervalTooSmall(ValueError):
    """Session-Expires below our Min-SE: answer 422 with Min-SE (RFC 4028 §8.1)."""


def session_timer(headers: tuple[tuple[str, str], ...], min_se_s: int) -> tuple[int, str] | None:
    """(interval_s, refresher) to put in our 200 when the INVITE asks for session timers, else None.

    We keep the caller's interval (raised to its Min-SE) and its choice of refresher; when it left
    the choice to us, the caller refreshes ('uac'). Raises SessionIntervalTooSmall below ``min_se_s``."""
    values = {name.lower(): value for name, value in headers}
    raw = values.get("session-expires", values.get("x"))
    if raw is None:
        return None
    number, _, params = raw.partition(";")
    number = number.strip()
    if not number.isdigit() or len(number) > 9:
        return None
    interval = int(number)
    if interval < min_se_s:
        raise SessionIntervalTooSmall(f"Session-Expires {interval} s is below our Min-SE {min_se_s} s")
    their_min = values.get("min-se", "").split(";", 1)[0].strip()
    if their_min.isdigit() and len(their_min) <= 9:
        interval = max(interval, int(their_min))
    refresher = "uac"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "refresher" and value.strip().lower() in ("uac", "uas"):
            refresher = value.strip().lower()
    return interval, refresher


def parse_sip_uri(uri: str) -> tuple[str, str, int]:
    """(user, host, port) of a sip: URI; ValueError with the reason otherwise."""
    match = _SIP_URI.match(uri.strip())
    if match is None:
        raise ValueError(f"not a SIP URI (sip:user@host[:port]): {uri[:80]!r}")
    port = int(match.group("port") or (5061 if sip_uri_transport(uri) == "tls" else 5060))
    if not 0 < port < 65536:
        raise ValueError(f"SIP URI port out of range: {port}")
    return match.group("user") or "", match.group("host").strip("[]"), port


def sip_uri_transport(uri: str) -> str:
    """How to reach a SIP URI (RFC 3261 §19.1.2, §26.2): "tls" for sips: or ;transport=tls, "tcp" for
    ;transport=tcp, else "udp". ValueError for a transport we do not speak."""
    match = _SIP_URI.match(uri.strip())
    if match is None:
        raise ValueError(f"not a SIP URI (sip:user@host[:port]): {uri[:80]!r}")
    transport = "udp"
    for param in (match.group("params") or "").split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "transport":
            transport = value.strip().lower()
    if match.group("scheme").lower() == "sips":
        if transport not in ("udp", "tls", "tcp"):
            raise ValueError(f"sips: URI with transport={transport}: sips: means TLS")
        return "tls"
    if transport not in ("udp", "tcp", "tls"):
        raise ValueError(f"SIP transport {transport!r} is not supported here (udp, tcp or tls)")
    return transport
