"""RFC 4733 telephone-events -> one ``DtmfDigit`` per key press (sans-I/O).

A sender repeats an event's packets every 50 ms or so while the key is down (same RTP timestamp,
growing duration) and sends its end packet three times. aiortp's ``DtmfReceiver`` keys on the
timestamp too, but raises out of the transport on a short payload and never reports a digit
whose end packets were all lost; this core reports each event exactly once: at its first end
packet, when a new event starts, or after ``END_TIMEOUT_MS`` of silence.
"""

from __future__ import annotations

import collections
import dataclasses

from aiortp.dtmf import EVENT_TO_DIGIT, DtmfEvent
from dialtone.media_gateway.media_types import DtmfDigit, DtmfMode

# An event with no packet for this long is over even if its end packets were lost
# (RFC 4733 §2.5.2.2: "a receiver SHOULD treat the event as ended" after a timeout).
END_TIMEOUT_MS = 250
# Ended events remembered so a late retransmitted end packet is not a second key press.
_RECENT_EVENTS = 16


def parse_event(payload: bytes) -> DtmfEvent:
    """The event in a telephone-event payload; ValueError with the reason when it is not one."""
    if len(payload) < 4:
        raise ValueError(f"telephone-event payload is {len(payload)} bytes, expected at least 4")
    return DtmfEvent.parse(payload)


@dataclasses.dataclass
class _Event:
    timestamp: int
    event: int
    duration: int
    last_seen_ms: int
    reported: bool = False


class Rfc4733Receiver:
    """Feed it every telephone-event packet; it returns the digits to report."""

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self._clock_rate = clock_rate
        self._current: _Event | None = None
        self._recent: collections.deque[tuple[int, int]] = collections.deque(maxlen=_RECENT_EVENTS)

    def handle(self, timestamp: int, payload: bytes, now_ms: int) -> list[DtmfDigit]:
        """Digits completed by this packet (usually none or one). Raises ValueError on a bad payload."""
        event = parse_event(payload)
        key = (timestamp, event.event)
        digits: list[DtmfDigit] = []
        current = self._current
        if current is None or (current.timestamp, current.event) != key:
            if key in self._recent:
                return digits  # a retransmission of an event already reported
            if current is not None and not current.reported:
                digits.extend(self._finish(current, now_ms))
            current = self._current = _Event(timestamp, event.event, event.duration, now_ms)
        current.last_seen_ms = now_ms
        current.duration = max(current.duration, event.duration)
        if event.end and not current.reported:
            digits.extend(self._finish(current, now_ms))
        return digits

    def poll(self, now_ms: int) -> list[DtmfDigit]:
        """Report an event whose end packets never came (call this on the media clock)."""
        current = self._current
        if current is None or current.reported or now_ms - current.last_seen_ms < END_TIMEOUT_MS:
            return []
        return self._finish(current, now_ms)

    def _finish(self, event: _Event, now_ms: int) -> list[DtmfDigit]:
        event.reported = True
        self._recent.append((event.timestamp, event.event))
        digit = EVENT_TO_DIGIT.get(event.event)
        if digit is None:
            return []  # not a DTMF key (flash hook, tones 16+): nothing to report
        duration_ms = event.duration * 1000 // self._clock_rate
        return [DtmfDigit(digit=digit, duration_ms=duration_ms, mode=DtmfMode.RFC4733, timestamp_ms=now_ms)]
