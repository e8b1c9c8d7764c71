"""Is the SIP path still answering? The gateway asks itself, so health tells the truth.

A SIP stack can stop answering while the process and its gRPC server look fine: a thread
that drains the send queue dies, the sippy loop blocks. Health must then say NOT_SERVING,
and the process must exit so that ``dialtone up`` or Kubernetes restarts it. Two checks:

- ``SelfCheck`` (sans-I/O): an OPTIONS every ``interval_s`` from our own loopback socket to
  our own SIP port, through the same guard, sippy loop and sender as any peer's. A probe not
  answered 200 within ``answer_within_s`` is a miss; ``misses`` in a row mean the path is
  dead. ``SelfProbe`` is its UDP adapter.
- ``dead_threads``: the threads the SIP path cannot work without, checked for being alive.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from typing import Any

from dialtone.media_gateway.sip_guard import SipGuard


class SelfCheck:
    """When to send the next probe and whether the SIP path counts as dead. Every call takes ``now``."""

    def __init__(self, interval_s: float, answer_within_s: float, misses: int) -> None:
        self._interval_s = interval_s
        self._answer_within_s = answer_within_s
        self._misses_allowed = misses
        self._prefix = f"dialtone-liveness-{os.urandom(4).hex()}-"
        self._seq = 0
        self._next_at: float | None = None
        self._pending: dict[str, float] = {}   # Call-ID -> answer deadline
        self.consecutive_misses = 0

    @property
    def failing(self) -> bool:
        return self.consecutive_misses >= self._misses_allowed

    def poll(self, now: float) -> str | None:
        """Count expired probes as misses; return the Call-ID of a new probe to send, if one is due."""
        for call_id, deadline in list(self._pending.items()):
            if now >= deadline:
                del self._pending[call_id]
                self.consecutive_misses += 1
        if self._next_at is not None and now < self._next_at:
            return None
        self._next_at = now + self._interval_s
        self._seq += 1
        call_id = f"{self._prefix}{self._seq}"
        self._pending[call_id] = now + self._answer_within_s
        return call_id

    def answered(self, call_id: str, status: int, now: float) -> None:
        deadline = self._pending.pop(call_id, None)
        if deadline is None:
            return    # not ours, or already counted as a miss
        if status == 200 and now < deadline:
            self.consecutive_misses = 0
        else:
            self.consecutive_misses += 1


def probe_request(call_id: str, local: tuple[str, int], target: tuple[str, int]) -> bytes:
    def hostport(address: tuple[str, int]) -> str:
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"{host}:{address[1]}"

    return (f"OPTIONS sip:liveness@{hostport(target)} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {hostport(local)};branch=z9hG4bK-{call_id}\r\n"
            f"From: <sip:liveness@{hostport(local)}>;tag=liveness\r\nTo: <sip:liveness@{hostport(target)}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\nContent-Length: 0\r\n\r\n").encode()


def parse_answer(data: bytes) -> tuple[str, int] | None:
    """(Call-ID, status) of a response, or None for anything else."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isascii() or not parts[1].isdigit():
        return None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("call-id", "i"):
            return value.strip(), int(parts[1])
    return None


class SelfProbe(asyncio.DatagramProtocol):
    """``SelfCheck`` on a UDP socket beside the SIP port (see module docstring)."""

    def __init__(self, check: SelfCheck) -> None:
        self.check = check
        self._transport: asyncio.DatagramTransport | None = None
        self._target: tuple[str, int] = ("", 0)
        self._local: tuple[str, int] = ("", 0)

    @classmethod
    async def open(cls, check: SelfCheck, sip_host: str, sip_port: int, guard: SipGuard) -> SelfProbe:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(sip_host, sip_host)
        loop = asyncio.get_running_loop()
        transport, probe = await loop.create_datagram_endpoint(lambda: cls(check), local_addr=(host, 0))
        probe._target = (host, sip_port)
        probe._local = transport.get_extra_info("sockname")[:2]
        guard.trust(probe._local[0], int(probe._local[1]))
        return probe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = parse_answer(data)
        if answer is not None:
            self.check.answered(answer[0], answer[1], asyncio.get_running_loop().time())

    def error_received(self, exc: Exception) -> None:
        return None   # an ICMP error is just a probe that will not be answered

    def tick(self, now: float) -> None:
        call_id = self.check.poll(now)
        if call_id is not None and self._transport is not None:
            self._transport.sendto(probe_request(call_id, self._local, self._target), self._target)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def dead_threads(threads: Iterable[threading.Thread]) -> list[str]:
    return [thread.name for thread in threads if not thread.is_alive()]
