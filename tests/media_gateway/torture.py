"""Sending raw SIP datagrams (RFC 4475 torture messages, our malformed corpus) to a running gateway."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

TORTURE_DIR = Path(__file__).parent / "data" / "rfc4475"   # RFC 4475 Appendix A, see its README
_VIA_LINE = re.compile(rb"^(via|v)[ \t]*:", re.IGNORECASE | re.MULTILINE)
_SENT_BY = re.compile(rb"SIP[ \t\r\n]*/[ \t\r\n]*2\.0[ \t\r\n]*/[ \t\r\n]*[A-Za-z]+[ \t\r\n]+([^;,\s]+)", re.IGNORECASE)


def torture_message(name: str) -> bytes:
    path = TORTURE_DIR / f"{name}.dat"
    if not path.exists():
        raise AssertionError(f"missing torture message {path} (RFC 4475 Appendix A)")
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


# Values that name nothing a socket can be aimed at. Each one once crashed or silenced something:
# sippy's sender thread died on sendto() to port 70000, its URL parser raises on ':::host'.
BAD_PORTS = ("-255", "0", "65536", "70000", "99999999", "５０６０", "5060x", "")
BAD_HOSTS = (":::sip.no.invalid", "[::1", "[zz::1]", "256.1.1.1", "192.0.2.999", "a..b", "-a.example.com",
             "host_with space", "@", "")


def _request(method: str, *, ruri: str = "sip:bot@127.0.0.1", via: str = "127.0.0.1:5070", via_params: str = "",
             from_uri: str = "sip:a@127.0.0.1", to_uri: str = "sip:bot@127.0.0.1", contact: str = "sip:a@127.0.0.1",
             extra: str = "") -> bytes:
    return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-{os.urandom(4).hex()}{via_params}\r\n"
            f"From: <{from_uri}>;tag=1\r\nTo: <{to_uri}>\r\nCall-ID: hp-{os.urandom(6).hex()}\r\n"
            f"CSeq: 1 {method}\r\nContact: <{contact}>\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
            ).encode()


def address_variants() -> list[tuple[str, bytes]]:
    """Requests with an unusable host or port in every header that carries one (Request-URI, Via sent-by,
    rport, received, maddr, From, To, Contact, Record-Route, Route), as OPTIONS and INVITE. Each must be
    answered 400 (the guard answers to the datagram's source, never to the bad address)."""
    variants: list[tuple[str, bytes]] = []
    for method in ("OPTIONS", "INVITE"):
        for port in BAD_PORTS:
            hostport = f"127.0.0.1:{port}"
            uri = f"sip:x@{hostport}"
            variants += [
                (f"{method} Request-URI port {port!r}", _request(method, ruri=uri)),
                (f"{method} Via port {port!r}", _request(method, via=hostport)),
                (f"{method} Contact port {port!r}", _request(method, contact=uri)),
                (f"{method} From port {port!r}", _request(method, from_uri=uri)),
                (f"{method} To port {port!r}", _request(method, to_uri=uri)),
                (f"{method} Record-Route port {port!r}", _request(method, extra=f"Record-Route: <{uri};lr>\r\n")),
                (f"{method} Route port {port!r}", _request(method, extra=f"Route: <{uri};lr>\r\n")),
            ]
            if port:   # ';rport=' (empty) is legal: it asks for the source port
                variants.append((f"{method} rport {port!r}", _request(method, via_params=f";rport={port}")))
        for host in BAD_HOSTS:
            uri = f"sip:x@{host}"
            variants += [
                (f"{method} Request-URI host {host!r}", _request(method, ruri=uri)),
                (f"{method} Via host {host!r}", _request(method, via=f"{host}:5070" if host else ":5070")),
                (f"{method} Contact host {host!r}", _request(method, contact=uri)),
                (f"{method} From host {host!r}", _request(method, from_uri=uri)),
                (f"{method} To host {host!r}", _request(method, to_uri=uri)),
                (f"{method} Record-Route host {host!r}", _request(method, extra=f"Record-Route: <{uri};lr>\r\n")),
                (f"{method} Route host {host!r}", _request(method, extra=f"Route: <{uri};lr>\r\n")),
                (f"{method} received {host!r}", _request(method, via_params=f";received={host}")),
                (f"{method} Via maddr {host!r}", _request(method, via_params=f";maddr={host}")),
            ]
    return variants


# RFC 4475 §3.1.2: the invalid messages (each gets a 4xx/505 or is dropped, never processed).
EXPECTED_INVALID = ("badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri", "lwsstart",
                    "trws", "escruri", "baddate", "regbadct", "badaspec", "baddn", "badvers", "mismatch01",
                    "mismatch02", "bigcode")
