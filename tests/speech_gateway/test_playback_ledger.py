"""Say idempotency: a key already played is not played again; the ledger is bounded."""

from __future__ import annotations

import pytest
from dialtone.speech_gateway.config import AsrConfig
from dialtone.speech_gateway.core.partials import PartialScheduler
from dialtone.speech_gateway.core.playback import PlaybackLedger


def test_a_key_is_played_once():
    ledger = PlaybackLedger()
    assert ledger.claim("s:1:0") is True
    assert ledger.claim("s:1:0") is False
    assert ledger.claim("s:2:0") is True


def test_empty_keys_are_always_played():
    ledger = PlaybackLedger()
    assert ledger.claim("") and ledger.claim("")
    assert len(ledger) == 0


def test_oldest_keys_are_forgotten_past_capacity():
    ledger = PlaybackLedger(capacity=2)
    for key in ("a:1:0", "a:2:0", "a:3:0"):
        ledger.claim(key)
    assert "a:1:0" not in ledger and "a:3:0" in ledger


def test_finished_is_tracked():
    ledger = PlaybackLedger()
    ledger.claim("a:1:0")
    assert not ledger.was_finished("a:1:0")
    ledger.finished("a:1:0")
    assert ledger.was_finished("a:1:0")


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be positive"):
        PlaybackLedger(0)


def test_partials_are_off_unless_enabled_or_needed():
    sched = PartialScheduler(AsrConfig(partial_interval_ms=500, partial_min_audio_ms=400).partial_settings())
    assert not sched.due(0, 1000, False)
    assert sched.due(0, 1000, False, needed=True)     # an after_words prompt is being judged


def test_partials_are_rate_bounded_and_skip_while_a_decode_runs():
    always = AsrConfig(partials=True, partial_interval_ms=500, partial_min_audio_ms=400)
    sched = PartialScheduler(always.partial_settings())
    assert not sched.due(0, 300, False)
    assert sched.due(0, 400, False)
    assert not sched.due(0, 800, False)
    assert not sched.due(0, 900, True)
    assert sched.due(0, 900, False)
