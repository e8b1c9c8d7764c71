"""In-band DTMF (Goertzel) for G.711 calls that did not negotiate telephone-event (sans-I/O).

No library in the stack detects DTMF tones in audio (aiortp only parses RFC 4733), so this is
ours: the Goertzel power at the eight DTMF frequencies over 205-sample windows (25.6 ms at
8 kHz, the classic size: bins 39 Hz apart separate the row tones 73 Hz apart), evaluated as one
small matrix product per window, hopping half a window. A window "hits" a key when the strongest
row and column tones carry most of the window's energy, each stands clear of its group and the
twist between them is within ITU-T Q.24 limits. A key press is two consecutive hits (about
40 ms of tone); it ends after two consecutive misses and is reported then, with its duration.
"""

from __future__ import annotations

import numpy as np
from dialtone.media_gateway.media_types import DtmfDigit, DtmfMode

SAMPLE_RATE = 8000
WINDOW = 205
HOP = WINDOW // 2
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")

MIN_TONE_DBFS = -36.0        # each tone's level (sine RMS relative to full scale)
MIN_TONE_FRACTION = 0.6      # row + column power over the window's total power
MAX_NORMAL_TWIST_DB = 8.0    # row louder than column (Q.24)
MAX_REVERSE_TWIST_DB = 6.0   # column louder than row
MIN_GROUP_MARGIN_DB = 8.0    # the chosen tone over the next strongest of its group
HITS_TO_START = 3
MISSES_TO_END = 2

_FULL_SCALE_SINE_POWER = 32768.0 ** 2 / 2


def _basis() -> tuple[np.ndarray, float]:
    window = np.hamming(WINDOW)
    t = np.arange(WINDOW) / SAMPLE_RATE
    freqs = np.array(ROW_HZ + COL_HZ)
    basis = window[None, :] * np.exp(-2j * np.pi * freqs[:, None] * t[None, :])
    # |X|^2 * scale = mean power of a sine at that frequency (A^2 / 2)
    scale = 2.0 / float(window.sum()) ** 2
    return basis.T.copy(), scale


_BASIS, _SCALE = _basis()


_FLOOR = _FULL_SCALE_SINE_POWER * 10 ** (MIN_TONE_DBFS / 10)
_MARGIN = 10 ** (MIN_GROUP_MARGIN_DB / 10)
_MAX_NORMAL_TWIST = 10 ** (MAX_NORMAL_TWIST_DB / 10)
_MAX_REVERSE_TWIST = 10 ** (MAX_REVERSE_TWIST_DB / 10)


def classify_windows(windows: np.ndarray) -> list[str | None]:
    """The key whose two tones dominate each row (a 205-sample window) of ``windows``, or None.

    All windows of a chunk in one matrix product; the tests below are vectorised the same way.
    """
    x = windows.astype(np.float64)
    total = np.einsum("ij,ij->i", x, x) / WINDOW
    power = np.abs(x @ _BASIS) ** 2 * _SCALE
    rows, cols = power[:, :4], power[:, 4:]
    r, c = rows.argmax(axis=1), cols.argmax(axis=1)
    index = np.arange(len(x))
    row_p, col_p = rows[index, r], cols[index, c]
    rows_sorted, cols_sorted = np.sort(rows, axis=1), np.sort(cols, axis=1)
    ok = (
        (row_p >= _FLOOR) & (col_p >= _FLOOR)
        & (row_p + col_p >= MIN_TONE_FRACTION * total)
        & (row_p <= _MAX_NORMAL_TWIST * col_p) & (col_p <= _MAX_REVERSE_TWIST * row_p)
        & (rows_sorted[:, -2] * _MARGIN <= row_p) & (cols_sorted[:, -2] * _MARGIN <= col_p)
    )
    return [KEYS[ri][ci] if good else None for ri, ci, good in zip(r.tolist(), c.tolist(), ok.tolist(),
                                                                     strict=True)]


def classify(window: np.ndarray) -> str | None:
    """The key in one 205-sample window, or None."""
    return classify_windows(window[None, :WINDOW])[0]


class InbandDtmfDetector:
    """Feed it decoded 8 kHz s16le PCM in any chunk size; it returns finished key presses."""

    def __init__(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)
        self._samples_seen = 0          # samples consumed from the front of the stream
        self._candidate: str | None = None
        self._hits = 0
        self._misses = 0
        self._active: str | None = None
        self._active_start = 0          # sample index of the first hit window
        self._first_hit = 0             # sample index where the current candidate began

    def process(self, pcm: bytes, now_ms: int) -> list[DtmfDigit]:
        if len(pcm) % 2:
            raise ValueError(f"PCM must be whole s16 samples, got {len(pcm)} bytes")
        self._buf = np.concatenate((self._buf, np.frombuffer(pcm, dtype="<i2")))
        count = (len(self._buf) - WINDOW) // HOP + 1 if len(self._buf) >= WINDOW else 0
        if not count:
            return []
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, WINDOW)[::HOP][:count]
        digits: list[DtmfDigit] = []
        for key in classify_windows(windows):
            digit = self._step(key, now_ms)
            if digit is not None:
                digits.append(digit)
            self._samples_seen += HOP
        self._buf = self._buf[count * HOP:]
        return digits

    def _step(self, key: str | None, now_ms: int) -> DtmfDigit | None:
        finished = None
        if self._active is not None:
            if key == self._active:
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < MISSES_TO_END and key is None:
                return None
            end = self._samples_seen + WINDOW - HOP * self._misses
            duration_ms = max(0, (end - self._active_start) * 1000 // SAMPLE_RATE)
            finished = DtmfDigit(self._active, duration_ms, DtmfMode.INBAND, now_ms)
            self._active = None
            self._misses = 0
            self._candidate, self._hits = None, 0
        if key is None:
            self._candidate, self._hits = None, 0
            return finished
        if key == self._candidate:
            self._hits += 1
        else:
            self._candidate, self._hits = key, 1
            self._first_hit = self._samples_seen
        if self._hits >= HITS_TO_START:
            self._active = key
            self._active_start = self._first_hit
            self._misses = 0
        return finished
