"""Which local addresses ICE offers as host candidates (process-wide).

aioice lists every interface address except 127.0.0.1 and has no option to choose them.
``webrtc.ice_host_addresses`` does: ``["127.0.0.1"]`` keeps a one-machine setup (and the
tests) on loopback, a LAN address pins a multi-homed server to one network. Empty (the
default) leaves aioice's own choice. aioice reads the list through one module function,
``aioice.ice.get_host_addresses``; this module puts a filter in front of it, once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice

_aioice_host_addresses = aioice.ice.get_host_addresses
_configured: tuple[str, ...] = ()


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if not _configured:
        return _aioice_host_addresses(use_ipv4, use_ipv6)
    return [a for a in _configured if (use_ipv6 if ":" in a else use_ipv4)]


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Offer exactly these addresses as host candidates from now on (empty: aioice's default)."""
    global _configured
    checked = []
    for address in addresses:
        try:
            checked.append(str(ipaddress.ip_address(address)))
        except ValueError as exc:
            raise ValueError(f"webrtc.ice_host_addresses: {address!r} is not an IP address") from exc
    _configured = tuple(checked)
    aioice.ice.get_host_addresses = _host_addresses


def host_addresses() -> tuple[str, ...]:
    return _configured
