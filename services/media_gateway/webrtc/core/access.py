"""The access key that guards the page and its API when it is reachable beyond loopback (pure).

The loopback rule and the constant-time compare are the common ones (``dialtone.common.auth``)
that guard the control APIs and metrics too.
"""

from __future__ import annotations

from dialtone.common.auth import is_loopback_host, token_allows

__all__ = ["check_access_config", "is_loopback_host", "key_allows"]


def check_access_config(host: str, access_key: str) -> None:
    """Refuse, at startup, to expose the softphone beyond loopback without a key."""
    if not access_key and not is_loopback_host(host):
        raise ValueError(
            f"webrtc.host is {host!r}, which is reachable beyond loopback: set webrtc.access_key "
            "(or DIALTONE_MEDIA_GATEWAY__WEBRTC__ACCESS_KEY) so the softphone is not open to anyone")


def key_allows(expected: str, provided: str | None) -> bool:
    """True when no key is configured, or the provided one matches (constant-time compare)."""
    return token_allows(expected, provided)
