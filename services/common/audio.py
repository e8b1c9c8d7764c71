"""Audio frames as they cross the services: 16 kHz mono s16le, 20 ms (640 bytes).

Resampling is soxr's. A ``StreamResampler`` keeps filter state across frames so a
call's audio has no clicks at frame edges; create one per call and direction.
"""

from __future__ import annotations

import numpy as np
import soxr

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 320
FRAME_BYTES = FRAME_SAMPLES * 2  # 640
SILENCE_FRAME = bytes(FRAME_BYTES)


def samples_per_frame(rate: int, frame_ms: int = FRAME_MS) -> int:
    return rate * frame_ms // 1000


def pcm_to_float32(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float32_to_pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """One-shot resample of a whole buffer (prompts, files)."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype("<i2").tobytes()


class StreamResampler:
    """Resample a stream chunk by chunk, keeping filter state between chunks.

    ``low_latency=True`` (for 20 ms real-time media) uses soxr's variable-rate engine: same HQ
    filter, but it returns every chunk's worth of output at once (about 1 frame of delay),
    where the default engine holds output back in ~100 ms bursts. It costs more CPU per chunk.
    """

    def __init__(self, from_rate: int, to_rate: int, low_latency: bool = False) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(
            from_rate, to_rate, 1, dtype="int16", quality="HQ", vr=low_latency)

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"), last=last)
        return out.tobytes()


def split_frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Whole frames of ``pcm``; a short tail is padded with silence."""
    frames = [pcm[i:i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + bytes(frame_bytes - len(frames[-1]))
    return frames


def trim_silence(pcm: bytes, level: int, *, trailing: bool = True, keep_samples: int = 0) -> bytes:
    """``pcm`` (s16le) without the near-silence (|sample| < ``level``) at its start, and at its end
    unless ``trailing`` is False; ``keep_samples`` of the leading part stay, so an onset is not clipped.
    All near-silence: empty."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= level)
    if loud.size == 0:
        return b""
    end = loud[-1] + 1 if trailing else samples.size
    return samples[max(0, loud[0] - keep_samples): end].tobytes()


def rms_dbfs(pcm: bytes) -> float:
    """Level of a PCM buffer in dBFS (-inf for digital silence)."""
    if not pcm:
        return float("-inf")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20.0 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")


def pcm_duration_ms(pcm: bytes, rate: int = SAMPLE_RATE) -> int:
    return len(pcm) * 1000 // (2 * rate)
