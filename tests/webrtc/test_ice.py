"""Choosing the ICE host candidate addresses (webrtc.ice_host_addresses)."""

from __future__ import annotations

import aioice.ice
import pytest
from dialtone.media_gateway.webrtc.ice import host_addresses, use_host_addresses


def test_configured_addresses_replace_aioice_choice_by_family():
    """Only the configured addresses are offered, IPv4 and IPv6 each when that family is gathered."""
    use_host_addresses(["127.0.0.1", "::1"])
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert host_addresses() == ("127.0.0.1", "::1")


def test_empty_list_restores_aioice_default():
    """No configured addresses: aioice's own list (which never holds 127.0.0.1)."""
    use_host_addresses([])
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_bad_address_is_refused():
    """A name or junk is a config error naming the key."""
    with pytest.raises(ValueError, match="webrtc.ice_host_addresses: 'eth0' is not an IP address"):
        use_host_addresses(["eth0"])
