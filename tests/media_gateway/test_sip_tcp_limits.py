"""SIP over TCP against a real gateway process: no slowloris, no thread per connection, no single source
taking every slot. And the limits' logic without sockets."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from dialtone.media_gateway.sip_tcp import SourceCounts, TcpConnection, TcpLimits, expired

from tests.helpers import ServiceProcess, free_port


def _options(local: tuple[str, int]) -> bytes:
    return (f"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local[0]}:{local[1]};branch=z9hG4bK-"
            f"{os.urandom(4).hex()}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\n"
            f"Call-ID: {os.urandom(6).hex()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode()


def _tcp_options(port: int, source: str = "127.0.0.1") -> bytes:
    """A fresh connection from ``source``: one OPTIONS, the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
        sock.sendall(_options(sock.getsockname()))
        return sock.recv(65536).split(b"\r\n", 1)[0]


def _closed_by_peer(sock: socket.socket, wait_s: float) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _start(tmp_path: Path, **sip: str) -> tuple[ServiceProcess, int]:
    port = free_port(socket.SOCK_DGRAM)
    env = {"DIALTONE_MEDIA_GATEWAY__SIP__PORT": str(port),
           **{f"DIALTONE_MEDIA_GATEWAY__SIP__{key.upper()}": value for key, value in sip.items()}}
    process = ServiceProcess.start("media-gateway", tmp_path, env=env)
    process.wait_serving()
    return process, port


def test_slowloris_is_closed_at_the_message_deadline(tmp_path: Path) -> None:
    """A byte every second never completes a message: the connection is closed once the message deadline
    (3 s here) passes, while a normal TCP OPTIONS meanwhile is answered."""
    gateway, port = _start(tmp_path, tcp_message_deadline_s="3")
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        message = _options(slow.getsockname())
        started = time.monotonic()
        closed = False
        for index in range(12):
            try:
                slow.send(message[index:index + 1])
            except OSError:
                closed = True
                break
            if _closed_by_peer(slow, 1.0):
                closed = True
                break
        held_s = time.monotonic() - started
        slow.close()
        assert closed, "a connection sending one byte a second was kept for 12 s"
        assert held_s < 3 + 2.5, f"closed after {held_s:.1f} s"
        assert _tcp_options(port) == b"SIP/2.0 200 OK"
    finally:
        gateway.stop()


def test_one_source_cannot_take_every_slot_and_connections_cost_no_thread(tmp_path: Path) -> None:
    """200 idle connections from 127.0.0.1 with a per-source cap of 16: the 17th and later are refused,
    127.0.0.2 still gets its OPTIONS answered, and the gateway's thread count does not grow with them."""
    gateway, port = _start(tmp_path, tcp_max_per_source="16")
    idle: list[socket.socket] = []
    try:
        before = _threads(gateway.proc.pid)
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        refused = sum(_closed_by_peer(sock, 0.05) for sock in idle)
        during = _threads(gateway.proc.pid)
        assert refused == 200 - 16
        assert during <= before + 2, f"threads {before} -> {during}"
        assert _tcp_options(port, source="127.0.0.2") == b"SIP/2.0 200 OK"
    finally:
        for sock in idle:
            sock.close()
        gateway.stop()


def test_limits_without_sockets() -> None:
    """Per-source and total caps count and release; deadlines and a full outbox say why to close."""
    counts = SourceCounts(TcpLimits(total=3, per_source=2))
    assert [counts.admit("a"), counts.admit("a"), counts.admit("a")] == [None, None, "source_limit"]
    assert counts.admit("b") is None and counts.admit("c") == "total_limit"
    counts.release("a")
    assert counts.admit("c") is None and counts.total == 3

    limits = TcpLimits(message_deadline_s=10, idle_timeout_s=300, max_outbox=8)
    left, right = socket.socketpair()
    try:
        connection = TcpConnection(left, ("127.0.0.1", 1), ("127.0.0.1", 2), "", lambda *a: None,
                                   lambda c: None, now=0.0, max_outbox=8)
        assert expired(connection, 299.0, limits) is None
        assert expired(connection, 301.0, limits) == "idle"
        connection.message_started_at = 100.0
        assert expired(connection, 111.0, limits) == "message_deadline"
        connection.message_started_at = None
        connection.send_to(b"12345", None)
        connection.send_to(b"6789", None)
        assert expired(connection, 1.0, limits) == "outbox_full" and connection.take_outbox() == b"12345"
    finally:
        left.close()
        right.close()
