"""The access key that guards the page and its API when it is reachable beyond loopback (pure)."""

from __future__ import annotations

import hmac
import ipaddress


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_access_config(host: str, access_key: str) -> None:
    """Refuse, at startup, to expose the softphone beyond loopback without a key."""
    if not access_key and not is_loopback_host(host):
        raise ValueError(
            f"webrtc.host is {host!r}, which is reachable beyond loopback: set webrtc.access_key "
            "(or DIALTONE_MEDIA_GATEWAY__WEBRTC__ACCESS_KEY) so the softphone is not open to anyone")


def key_allows(expected: str, provided: str | None) -> bool:
    """True when no key is configured, or the provided one matches (constant-time compare)."""
    if not expected:
        return True
    if not provided:
        return False
    return hmac.compare_digest(expected.encode(), provided.encode())
