"""The one audio helper module: trimming near-silence (pure functions, no I/O)."""

from __future__ import annotations

import numpy as np
from dialtone.common.audio import trim_silence


def pcm(*values: int) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


def test_trim_cuts_both_ends_by_default():
    assert trim_silence(pcm(0, 3, -2, 900, -700, 5, 0), 100) == pcm(900, -700)


def test_leading_only_keeps_the_tail_and_a_margin_before_the_onset():
    audio = pcm(0, 1, 2, 3, 500, 4, 0)
    assert trim_silence(audio, 100, trailing=False) == pcm(500, 4, 0)
    assert trim_silence(audio, 100, trailing=False, keep_samples=2) == pcm(2, 3, 500, 4, 0)
    assert trim_silence(audio, 100, trailing=False, keep_samples=50) == audio


def test_all_quiet_is_empty():
    assert trim_silence(pcm(0, 10, -10), 100) == b""
    assert trim_silence(b"", 100) == b""
