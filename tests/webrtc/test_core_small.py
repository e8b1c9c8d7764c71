"""Keypad messages, uplink framing and the access key. Pure, no sockets."""

from __future__ import annotations

import pytest
from dialtone.media_gateway.webrtc.core.access import check_access_config, is_loopback_host, key_allows
from dialtone.media_gateway.webrtc.core.keypad import KeyPress, parse_key_message
from dialtone.media_gateway.webrtc.core.uplink import FrameChunker


@pytest.mark.parametrize("message, press", [
    ('{"digit": "5"}', KeyPress("5", 100)),
    ('{"digit": "#", "duration_ms": 250}', KeyPress("#", 250)),
    (b'{"digit": "a"}', KeyPress("A", 100)),
])
def test_key_message_accepted(message, press):
    """Valid keypad messages decode to a KeyPress (letters upper-cased, default duration 100 ms)."""
    assert parse_key_message(message) == press


@pytest.mark.parametrize("message, error", [
    ("5", "must be a JSON object"),
    ("{", "not JSON"),
    ('{"digit": "55"}', "digit must be one of"),
    ('{"digit": "X"}', "digit must be one of"),
    ('{"digit": 5}', "digit must be one of"),
    ('{"digit": "1", "duration_ms": 0}', "duration_ms must be an integer"),
    ('{"digit": "1", "duration_ms": true}', "duration_ms must be an integer"),
    (b"\xff\xfe", "not UTF-8"),
    ('{"digit": "1", "pad": "' + "x" * 300 + '"}', "longer than 256 bytes"),
])
def test_key_message_refused(message, error):
    """Anything else is a ValueError naming the problem."""
    with pytest.raises(ValueError, match=error):
        parse_key_message(message)


def test_chunker_cuts_whole_frames_with_steady_timestamps():
    """Odd-sized pieces become 640-byte frames stamped 20 ms apart from the first arrival."""
    chunker = FrameChunker()
    assert chunker.push(bytes(600), now_ms=100) == []
    frames = chunker.push(bytes(700), now_ms=137)
    assert [(len(pcm), ts) for pcm, ts in frames] == [(640, 100), (640, 120)]
    assert [ts for _, ts in chunker.push(bytes(1260), now_ms=999)] == [140, 160]


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.0.2.7", False),
    ("example.org", False)])
def test_loopback_hosts(host, loopback):
    """Only loopback addresses count as private to this machine."""
    assert is_loopback_host(host) is loopback


def test_exposed_without_key_is_refused_at_startup():
    """Binding beyond loopback without an access key is a config error; with one it is fine."""
    with pytest.raises(ValueError, match="access_key"):
        check_access_config("0.0.0.0", "")
    check_access_config("0.0.0.0", "s3cret")
    check_access_config("127.0.0.1", "")


@pytest.mark.parametrize("expected, provided, allowed", [
    ("", None, True), ("k", None, False), ("k", "", False), ("k", "k", True), ("k", "K", False)])
def test_key_allows(expected, provided, allowed):
    """No key configured lets everyone in; otherwise the key must match exactly."""
    assert key_allows(expected, provided) is allowed
