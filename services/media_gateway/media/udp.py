"""The UDP edge of a media session: aiortp's transport with every callback guarded, and quiet logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortp.packet import is_rtcp
from aiortp.transport import RtpTransport, _is_stun
from dialtone.common.logging import RateLimitedLog
from dialtone.media_gateway.media.srtp import SrtpContext, SrtpError

__all__ = ["GuardedTransport", "RateLimitFilter", "RateLimitedLog", "quiet_library_loggers"]


class GuardedTransport(RtpTransport):
    """aiortp's transport (STUN answers, RTP/RTCP split) without a warning per ICMP error; with ``srtp``
    set, what arrives is unprotected before the split (a packet failing authentication goes to
    ``on_srtp_drop``, never further) and what is sent is protected."""

    def __init__(self, on_rtp: Callable[[bytes, Any], None], on_rtcp: Callable[[bytes, Any], None],
                 on_error: Callable[[Exception], None], on_srtp_drop: Callable[[], None] | None = None) -> None:
        super().__init__(on_rtp=on_rtp, on_rtcp=on_rtcp)
        self._on_error = on_error
        self._on_srtp_drop = on_srtp_drop
        self.srtp: SrtpContext | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            if self.srtp is not None and not _is_stun(data):
                try:
                    data = self.srtp.unprotect(data, is_rtcp(data))
                except SrtpError:
                    if self._on_srtp_drop is not None:
                        self._on_srtp_drop()
                    return
            super().datagram_received(data, addr)
        except Exception as exc:   # wrap the library's dispatch (its STUN path can raise on odd input)
            self._on_error(exc)

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        if self.srtp is not None:
            try:
                data = self.srtp.protect(data, is_rtcp(data))
            except SrtpError as exc:
                self._on_error(exc)
                return
        super().send(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._on_error(exc)


class RateLimitFilter(logging.Filter):
    """For a library's loggers that warn per packet (aiortp's playout on every undecodable frame):
    one record per message template every ``every_s`` seconds, the rest dropped."""

    def __init__(self, every_s: float) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -self._every_s) < self._every_s:
            return False
        self._last[key] = now
        return True


def quiet_library_loggers(names: tuple[str, ...] = ("aiortp.playout", "aiortp.transport"),
                          every_s: float = 10.0) -> None:
    """Attach one RateLimitFilter to each of the library loggers (idempotent)."""
    for name in names:
        library_logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitFilter) for f in library_logger.filters):
            library_logger.addFilter(RateLimitFilter(every_s))
