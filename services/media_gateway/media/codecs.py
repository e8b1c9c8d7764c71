"""The gateway's one codec module: negotiated codec name -> aiortp codec, plus 16 kHz conversion.

aiortp does the encoding (G.711 lookup tables, Opus through libopus); this module only picks the
codec, fixes its frame size, and converts between a codec's rate and the 16 kHz frames the rest
of dialtone uses (soxr through ``dialtone.common.audio.StreamResampler``).
"""

from __future__ import annotations

from aiortp.codecs import Codec, PcmaCodec, PcmuCodec
from dialtone.common.audio import FRAME_BYTES, SAMPLE_RATE, StreamResampler

SUPPORTED_CODECS = ("PCMU", "PCMA", "opus")
SEND_PTIME_MS = 20
G711_RATE = 8000
OPUS_RATE = 48000


class _FramedPcmu(PcmuCodec):
    """PCMU with a frame size other than 20 ms (a peer that sends ptime 30, like sipp's pcap)."""

    def __init__(self, samples_per_frame: int) -> None:
        self._samples = samples_per_frame

    @property
    def samples_per_frame(self) -> int:
        return self._samples


class _FramedPcma(PcmaCodec):
    def __init__(self, samples_per_frame: int) -> None:
        self._samples = samples_per_frame

    @property
    def samples_per_frame(self) -> int:
        return self._samples


def is_g711(codec_name: str) -> bool:
    return codec_name.upper() in ("PCMU", "PCMA")


def make_codec(codec_name: str, ptime_ms: int = SEND_PTIME_MS) -> Codec:
    """An aiortp codec for ``codec_name`` with ``ptime_ms`` frames; ValueError for anything else."""
    name = codec_name.upper()
    if name in ("PCMU", "PCMA"):
        if ptime_ms <= 0 or ptime_ms % 10 or ptime_ms > 120:
            raise ValueError(f"unsupported G.711 ptime {ptime_ms} ms (10..120, a multiple of 10)")
        samples = G711_RATE * ptime_ms // 1000
        return _FramedPcmu(samples) if name == "PCMU" else _FramedPcma(samples)
    if name == "OPUS":
        if ptime_ms not in (10, 20, 40, 60):
            raise ValueError(f"unsupported Opus ptime {ptime_ms} ms (10, 20, 40 or 60)")
        # Imported here: opuslib loads libopus through ctypes, only needed on Opus calls.
        from aiortp.codecs.opus import OpusCodec

        # Mono both ways: libopus decodes a stereo stream to mono, and "opus/48000/2" in SDP
        # only names the RTP format (RFC 7587), so a mono encoder is fine.
        return OpusCodec(sample_rate=OPUS_RATE, channels=1, frame_ms=ptime_ms)
    raise ValueError(f"unsupported codec {codec_name!r} (expected one of {', '.join(SUPPORTED_CODECS)})")


_OPUS_FRAME_MS = (10.0, 20.0, 40.0, 60.0) * 3 + (10.0, 20.0) * 2 + (2.5, 5.0, 10.0, 20.0) * 4


def opus_packet_ms(payload: bytes) -> float | None:
    """Duration of an Opus packet from its TOC byte (RFC 6716 §3.1); None when it cannot be read."""
    if not payload:
        return None
    toc = payload[0]
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    elif len(payload) >= 2:
        frames = payload[1] & 0x3F
    else:
        return None
    return _OPUS_FRAME_MS[toc >> 3] * frames


class _SampleFifo:
    """s16 samples between a resampler (variable chunk sizes) and fixed-size frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def push(self, pcm: bytes) -> None:
        self._buf += pcm

    def __len__(self) -> int:
        return len(self._buf)

    def pop(self, nbytes: int) -> bytes:
        if len(self._buf) < nbytes:
            # soxr holds back its filter delay on the first chunks; pad once at the front so every
            # later pop is whole and the stream stays continuous.
            self._buf[:0] = bytes(nbytes - len(self._buf))
        out = bytes(self._buf[:nbytes])
        del self._buf[:nbytes]
        return out


class ToCodecRate:
    """16 kHz 20 ms frames -> PCM frames of ``samples_per_frame`` at the codec rate (one per call)."""

    def __init__(self, codec: Codec) -> None:
        self._resampler = StreamResampler(SAMPLE_RATE, codec.sample_rate, low_latency=True)
        self._frame_bytes = codec.samples_per_frame * 2
        self._fifo = _SampleFifo()

    def convert(self, frame16k: bytes) -> bytes:
        self._fifo.push(self._resampler.process(frame16k))
        return self._fifo.pop(self._frame_bytes)


class ToSixteenK:
    """Decoded PCM at the codec rate -> whole 16 kHz 20 ms frames (one per call).

    Emits exactly as many frames as the input duration covers, so one 20 ms codec frame always
    gives one frame out (soxr's start-up delay is filled with silence once, at the front).
    """

    def __init__(self, codec_rate: int) -> None:
        self._resampler = StreamResampler(codec_rate, SAMPLE_RATE, low_latency=True)
        self._codec_rate = codec_rate
        self._fifo = _SampleFifo()
        self._samples_in = 0
        self._frames_out = 0

    def convert(self, pcm: bytes) -> list[bytes]:
        self._fifo.push(self._resampler.process(pcm))
        self._samples_in += len(pcm) // 2
        owed = self._samples_in * SAMPLE_RATE // self._codec_rate // (FRAME_BYTES // 2) - self._frames_out
        self._frames_out += owed
        return [self._fifo.pop(FRAME_BYTES) for _ in range(owed)]
