"""sip.advertised_host/advertised_port against a real gateway process: behind a NodePort (or any NAT that
maps the SIP port), the Contact we send says the public address and port over UDP and TCP, while the
gateway keeps listening on its own port; with sip.advertised_host_stun the public address is the one a
STUN server (a real one on loopback, answering as a NAT would) reports, in Contact and in SDP."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aioice import stun
from dialtone.common.config import ConfigError
from dialtone.media_gateway.stun_address import public_address

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


@contextmanager
def stun_server(public_host: str) -> Iterator[int]:
    """A STUN server on loopback that reports every client at `public_host` (as behind 1:1 NAT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                continue
            request = stun.parse_message(data)
            answer = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id,
                                  {"XOR-MAPPED-ADDRESS": (public_host, peer[1])})
            sock.sendto(bytes(answer), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_the_public_address_comes_from_stun_into_contact_and_sdp(tmp_path: Path) -> None:
    sip_port = free_port(socket.SOCK_DGRAM)
    with stun_server("198.51.100.7") as stun_port:
        gateway = ServiceProcess.start("media-gateway", tmp_path, env={
            "DIALTONE_MEDIA_GATEWAY__SIP__PORT": str(sip_port),
            "DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST_STUN": f"127.0.0.1:{stun_port}",
            "DIALTONE_MEDIA_GATEWAY__SHUTDOWN_GRACE_S": "0"})
        gateway.wait_serving()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.settimeout(10)
            udp.sendto(_invite("UDP", udp.getsockname()), ("127.0.0.1", sip_port))
            texts = []
            for _ in range(5):
                texts.append(udp.recv(65536).decode(errors="replace"))
                if texts[-1].startswith("SIP/2.0 200"):
                    break
    finally:
        gateway.stop()
    answer = texts[-1]
    assert answer.startswith("SIP/2.0 200"), texts
    assert f"sip:198.51.100.7:{sip_port}" in answer
    assert "c=IN IP4 198.51.100.7" in answer


def test_a_stun_server_that_does_not_answer_stops_the_start() -> None:
    """No answer: start fails with the reason, rather than advertise an address callers cannot reach."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(ConfigError, match="no answer from 127.0.0.1"):
            asyncio.run(public_address(f"127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.2))
    finally:
        silent.close()
