"""sip.advertised_host/advertised_port against a real gateway process: behind a NodePort (or any NAT that
maps the SIP port), the Contact we send says the public address and port over UDP and TCP, while the
gateway keeps listening on its own port."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from tests.helpers import ServiceProcess, free_port

ADVERTISED_HOST = "192.0.2.7"
ADVERTISED_PORT = 30060


def _invite(transport: str, local: tuple[str, int]) -> bytes:
    return (f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{local[1]};branch=z9hG4bK-"
            f"{os.urandom(4).hex()}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\n"
            f"Call-ID: {os.urandom(6).hex()}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:a@127.0.0.1:{local[1]}>\r\nContent-Length: 0\r\n\r\n").encode()


def _contact_of_first_answer_with_one(receive: object) -> str:
    """The Contact header of the first response that has one (the 100 Trying has none); at most 5 reads."""
    for _ in range(5):
        text = receive().decode(errors="replace")  # type: ignore[operator]
        found = re.search(r"^Contact: (.*)$", text, re.MULTILINE)
        if found:
            return found.group(1).strip()
    raise AssertionError("no response with a Contact among the first 5")


def test_contact_carries_the_advertised_host_and_port_over_udp_and_tcp(tmp_path: Path) -> None:
    sip_port = free_port(socket.SOCK_DGRAM)
    gateway = ServiceProcess.start("media-gateway", tmp_path, env={
        "DIALTONE_MEDIA_GATEWAY__SIP__PORT": str(sip_port),
        "DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST": ADVERTISED_HOST,
        "DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_PORT": str(ADVERTISED_PORT),
        "DIALTONE_MEDIA_GATEWAY__SHUTDOWN_GRACE_S": "0"})   # the calls need not drain at the end
    gateway.wait_serving()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(10)
            udp.sendto(_invite("UDP", udp.getsockname()), ("127.0.0.1", sip_port))
            udp_contact = _contact_of_first_answer_with_one(lambda: udp.recv(65536))
        with socket.create_connection(("127.0.0.1", sip_port), timeout=10) as tcp:
            tcp.sendall(_invite("TCP", tcp.getsockname()))
            tcp_contact = _contact_of_first_answer_with_one(lambda: tcp.recv(65536))
    finally:
        gateway.stop()
    assert f"sip:{ADVERTISED_HOST}:{ADVERTISED_PORT}" in udp_contact, udp_contact
    assert f"{ADVERTISED_HOST}:{ADVERTISED_PORT}" in tcp_contact and "transport=tcp" in tcp_contact.lower(), \
        tcp_contact
