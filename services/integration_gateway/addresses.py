"""Which addresses a backend call may reach (SSRF defence): never loopback, link-local, unspecified,
multicast or a cloud metadata address, unless the service's ``allow_networks`` names it.

The rule is applied twice. At start, to a base URL (or token URL) written as an IP address, so a
wrong config is refused with its key. On every connection, to each address the host name resolves
to (``CheckedBackend``, the network layer under httpx), and the connection goes to the address that
was checked, so a name that later resolves elsewhere (DNS rebinding) cannot slip past. A refused
address raises ``AddressRefused`` before any byte is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services: AWS (IPv4, IPv6), GCP, Azure, OpenStack (169.254.169.254), Alibaba.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254",
                                                                 "100.100.100.200"))


class AddressRefused(Exception):
    """A backend address outside what the service may call; the message names it and the setting."""


def parse_networks(networks: Iterable[str], where: str) -> tuple[IpNetwork, ...]:
    parsed = []
    for item in networks:
        try:
            parsed.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{where}: {item!r} is not a network (e.g. 127.0.0.0/8 or ::1/128)") from None
    return tuple(parsed)


def forbidden_kind(address: IpAddress) -> str:
    """What makes ``address`` off limits by default ("" when it is an ordinary address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    return ""


class AddressPolicy:
    def __init__(self, service: str, allow_networks: tuple[IpNetwork, ...]) -> None:
        self.service = service
        self.allow_networks = allow_networks

    def check(self, address: IpAddress, host: str) -> None:
        """Raise AddressRefused unless ``address`` (which ``host`` names) may be called."""
        kind = forbidden_kind(address)
        if not kind:
            return
        plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
        if any(plain in network or address in network for network in self.allow_networks):
            return
        named = "" if str(address) == host else f" ({host[:64]} resolves to it)"
        raise AddressRefused(f"backend address {address}{named} is {kind}: refused; list it in "
                             f"services.{self.service}.allow_networks to allow it")

    def check_literal(self, host: str) -> None:
        """Check a host written as an IP address (a name is checked when it is resolved)."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        self.check(address, host)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer with the policy in front: resolve, check every address, connect to a
    checked one (TLS still verifies the host name: httpcore passes it to ``start_tls`` itself)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, policy: AddressPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host[:64]} took over {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host[:64]}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for address in addresses:   # every one: a name that also resolves to a forbidden address is refused
            self._policy.check(address, host)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host[:64]} resolves to no address")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("backends are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
