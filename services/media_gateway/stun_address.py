"""The gateway's public address as a STUN server sees it (RFC 5389 Binding), asked once at start.

On a node behind 1:1 NAT (a cloud's public IP mapped to the node's private one) the address callers
must send SIP and RTP to is the public one, which the node itself does not know and which differs per
node; LiveKit finds it the same way. ``sip.advertised_host_stun`` names the server; the answer becomes
``sip.advertised_host`` for Contact, Via and SDP.
"""

from __future__ import annotations

import asyncio
import ipaddress

from aioice import stun
from dialtone.common.config import ConfigError

ATTEMPTS = 3


class _Client(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.answer: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return   # not STUN: ignore, as a late or stray datagram
        if message.transaction_id != self.transaction_id or self.answer.done():
            return
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS") or message.attributes.get("MAPPED-ADDRESS")
        if message.message_class == stun.Class.RESPONSE and mapped:
            self.answer.set_result(mapped)


def _server(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"sip.advertised_host_stun: {text[:60]!r} is not host:port")
    return host.strip("[]"), int(port)


async def public_address(server: str, timeout_s: float = 2.0) -> str:
    """Our address as ``server`` (host:port) sees it; ConfigError when it does not answer."""
    host, port = _server(server)
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(lambda: _Client(request.transaction_id),
                                                            remote_addr=(host, port))
    try:
        for _ in range(ATTEMPTS):   # UDP: the request or its answer may be lost
            transport.sendto(bytes(request))
            try:
                address, _port = await asyncio.wait_for(asyncio.shield(client.answer), timeout_s)
                return str(ipaddress.ip_address(address))
            except TimeoutError:
                continue
    finally:
        transport.close()
    raise ConfigError(f"sip.advertised_host_stun: no answer from {server[:60]} in {ATTEMPTS} x {timeout_s} s")
