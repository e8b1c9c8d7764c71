"""RFC 4733 telephone-events: one digit per key press, whatever the retransmissions."""

from __future__ import annotations

import struct

import pytest
from dialtone.media_gateway.media.rfc4733 import END_TIMEOUT_MS, Rfc4733Receiver, parse_event
from dialtone.media_gateway.media_types import DtmfMode


def event(code: int, duration: int, end: bool = False, volume: int = 10) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def press(receiver: Rfc4733Receiver, ts: int, code: int, samples: int, now_ms: int, ends: int = 3):
    """A key press as a sender sends it: progress packets every 20 ms, then ``ends`` end packets."""
    digits = []
    for step in range(160, samples, 160):
        digits += receiver.handle(ts, event(code, step), now_ms)
        now_ms += 20
    for _ in range(ends):
        digits += receiver.handle(ts, event(code, samples, end=True), now_ms)
    return digits, now_ms


def test_one_digit_per_press_with_three_end_packets() -> None:
    """Progress packets report nothing; the first end packet reports; the two retransmissions do not."""
    receiver = Rfc4733Receiver(8000)
    digits, _ = press(receiver, ts=1000, code=5, samples=1280, now_ms=100)
    assert [(d.digit, d.duration_ms, d.mode) for d in digits] == [("5", 160, DtmfMode.RFC4733)]


def test_same_key_twice_is_two_presses() -> None:
    """A new RTP timestamp is a new key press even for the same digit."""
    receiver = Rfc4733Receiver(8000)
    first, now = press(receiver, ts=1000, code=11, samples=800, now_ms=0)
    second, _ = press(receiver, ts=3000, code=11, samples=800, now_ms=now + 100)
    assert [d.digit for d in first + second] == ["#", "#"]


def test_late_retransmitted_end_after_next_event_is_ignored() -> None:
    """An end packet of the previous event arriving after the next one started is not a new press."""
    receiver = Rfc4733Receiver(8000)
    first, now = press(receiver, ts=1000, code=1, samples=800, now_ms=0, ends=1)
    second = receiver.handle(2000, event(2, 160), now)
    late = receiver.handle(1000, event(1, 800, end=True), now + 5)
    assert [d.digit for d in first] == ["1"] and second == [] and late == []


def test_lost_end_packets_reported_when_next_event_starts() -> None:
    """All end packets lost: the digit is reported once the next event begins, with its last duration."""
    receiver = Rfc4733Receiver(8000)
    lost, now = press(receiver, ts=1000, code=7, samples=640, now_ms=0, ends=0)
    nxt = receiver.handle(5000, event(8, 160), now + 20)
    assert lost == [] and [(d.digit, d.duration_ms) for d in nxt] == [("7", 60)]


def test_lost_end_packets_reported_after_timeout() -> None:
    """All end packets lost and no next event: poll reports it after END_TIMEOUT_MS, exactly once."""
    receiver = Rfc4733Receiver(8000)
    _, now = press(receiver, ts=1000, code=0, samples=640, now_ms=0, ends=0)
    assert receiver.poll(now + END_TIMEOUT_MS - 30) == []
    reported = receiver.poll(now + END_TIMEOUT_MS)
    assert [d.digit for d in reported] == ["0"]
    assert receiver.poll(now + 2 * END_TIMEOUT_MS) == []


def test_short_payload_is_a_clear_value_error() -> None:
    """A telephone-event payload under 4 bytes raises ValueError naming the size (never struct.error)."""
    with pytest.raises(ValueError, match="2 bytes, expected at least 4"):
        Rfc4733Receiver(8000).handle(1, b"\x05\x80", 0)
    with pytest.raises(ValueError, match="0 bytes"):
        parse_event(b"")


def test_non_dtmf_event_is_not_a_digit() -> None:
    """Event 16 (flash) is consumed without reporting a digit."""
    receiver = Rfc4733Receiver(8000)
    assert receiver.handle(1, event(16, 800, end=True), 0) == []


@pytest.mark.parametrize(("code", "digit"), [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (15, "D")])
def test_event_codes_map_to_digits(code: int, digit: str) -> None:
    assert [d.digit for d in Rfc4733Receiver(8000).handle(9, event(code, 400, end=True), 0)] == [digit]


def test_duration_uses_the_clock_rate() -> None:
    """A 48 kHz telephone-event (Opus calls) converts duration with 48000."""
    digits = Rfc4733Receiver(48000).handle(9, event(3, 4800, end=True), 0)
    assert digits[0].duration_ms == 100
