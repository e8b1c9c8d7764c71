"""Sending raw SIP datagrams (RFC 4475 torture messages, our malformed corpus) to a running gateway."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

TORTURE_DIR = Path("/work/shared/sip-torture/rfc4475")
_VIA_LINE = re.compile(rb"^(via|v)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_SENT_BY = re.compile(rb"SIP[ \t\r\n]*/[ \t\r\n]*2\.0[ \t\r\n]*/[ \t\r\n]*[A-Za-z]+[ \t\r\n]+([^;,\s]+)")


def torture_message(name: str) -> bytes:
    path = TORTURE_DIR / f"{name}.dat"
    if not path.exists():
        raise AssertionError(f"missing torture message {path} (shared/sip-torture)")
    return path.read_bytes()


def point_top_via_at(message: bytes, host: str, port: int) -> bytes:
    """Rewrite the sent-by of the first Via header so responses come back to our socket.

    Only the host[:port] token changes; folding, odd spacing and parameters stay as the RFC wrote them.
    The Request-URI is left alone: a UAS answers whatever host it names.
    """
    match = _VIA_LINE.search(message)
    if match is None:
        return message
    sent_by = _SENT_BY.search(message, match.end())
    if sent_by is None:
        return message
    start, end = sent_by.span(1)
    return message[:start] + f"{host}:{port}".encode() + message[end:]


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)

    def status_codes(self) -> list[int]:
        codes = []
        for data in self.received:
            first = data.split(b"\r\n", 1)[0].split(b" ")
            if len(first) >= 2 and first[0] == b"SIP/2.0" and first[1].isdigit():
                codes.append(int(first[1]))
        return codes


async def open_collector() -> tuple[Collector, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    return protocol, transport.get_extra_info("sockname")[1]


async def exchange(gateway_port: int, message: bytes, wait_s: float = 0.6, rewrite: bool = True,
                   sink: list[bytes] | None = None) -> list[int]:
    """Send one datagram from a fresh socket; return the status codes of what came back within ``wait_s``."""
    collector, port = await open_collector()
    assert collector.transport is not None
    try:
        data = point_top_via_at(message, "127.0.0.1", port) if rewrite else message
        collector.transport.sendto(data, ("127.0.0.1", gateway_port))
        await asyncio.sleep(wait_s)
        if sink is not None:
            sink.extend(collector.received)
        return collector.status_codes()
    finally:
        collector.transport.close()
