"""RTP/RTCP port pairs from a configured range: even RTP port, RTCP on the odd one above it.

We bind the sockets ourselves and hand them over bound, instead of aiortp's probe-then-close
``PortAllocator``, so no other process can take a port between the check and the use, and IPv6
bind addresses work.
"""

from __future__ import annotations

import ipaddress
import socket


class PortsExhausted(RuntimeError):
    """No free RTP port pair in the range (a call should be refused with 503)."""


class PortAllocator:
    """Even RTP ports in [low, high); a released pair goes to the back of the rotation."""

    def __init__(self, low: int, high: int) -> None:
        if not (1024 <= low < high <= 65536):
            raise ValueError(f"RTP port range [{low}, {high}) must lie within [1024, 65536)")
        self._low = low + (low % 2)
        self._high = high
        if self._low + 1 >= high:
            raise ValueError(f"RTP port range [{low}, {high}) holds no even/odd port pair")
        self._in_use: set[int] = set()
        self._next = self._low

    @property
    def capacity(self) -> int:
        return len(range(self._low, self._high - 1, 2))

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def allocate(self, host: str) -> tuple[int, socket.socket, socket.socket]:
        """(rtp_port, rtp_socket, rtcp_socket), both bound to ``host``; PortsExhausted when none is free."""
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        for _ in range(self.capacity):
            port = self._next
            self._next += 2
            if self._next + 1 >= self._high:
                self._next = self._low
            if port in self._in_use:
                continue
            rtp = socket.socket(family, socket.SOCK_DGRAM)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            self._in_use.add(port)
            return port, rtp, rtcp
        raise PortsExhausted(f"no free RTP port pair in [{self._low}, {self._high}) on {host}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
