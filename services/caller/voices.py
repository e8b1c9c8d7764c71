"""The caller's mouth and ears: the speech gateway's own engine adapters (piper TTS, Whisper ASR).

Models load from local files (the same packaged defaults the speech gateway uses); rendering and
decoding are blocking native calls, run in one worker thread each, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import wave
from pathlib import Path

from dialtone.common.audio import SAMPLE_RATE, pcm_to_float32, resample, trim_silence
from dialtone.speech_gateway.config import AsrConfig, TtsConfig
from dialtone.speech_gateway.engines.base import AsrEngine, TtsEngine
from dialtone.speech_gateway.engines.factory import build_asr, build_tts

TRIM_LEVEL = 300       # |sample| below this at either end of a rendered line is not speech (~-40 dBFS)
MAX_WAV_SECONDS = 120
MAX_RENDERED = 256
PHRASE_GAP_MS = 120    # between phrases rendered one by one: a short pause, well under end-of-speech silence


class Voices:
    """A TTS engine to speak our lines and an ASR engine to transcribe what we heard."""

    def __init__(self, tts: TtsEngine, asr: AsrEngine | None) -> None:
        self.tts = tts
        self.asr = asr
        self._tts_worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="caller-tts")
        self._asr_worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="caller-asr")
        self._rendered: dict[str, tuple[bytes, int]] = {}   # a line said again is not rendered again

    @classmethod
    async def load(cls, tts_engine: str = "piper", tts_voice: str = "", asr_threads: int = 1,
                   asr: bool = True) -> Voices:
        """Both engines; ``asr=False`` loads no ASR model (a caller that only measures timings)."""
        tts_config = TtsConfig(engine=tts_engine, voice=tts_voice)  # type: ignore[arg-type]
        if not asr:
            return cls(await asyncio.to_thread(build_tts, tts_config), None)
        tts, asr_engine = await asyncio.gather(
            asyncio.to_thread(build_tts, tts_config),
            asyncio.to_thread(build_asr, AsrConfig(threads=asr_threads, workers=1)))
        return cls(tts, asr_engine)

    async def render(self, text: str) -> tuple[bytes, int]:
        """``text`` spoken: (s16le mono PCM with the silence at both ends cut, sample rate)."""
        if text in self._rendered:
            return self._rendered[text]
        loop = asyncio.get_running_loop()
        pcm = await loop.run_in_executor(self._tts_worker, lambda: b"".join(self.tts.synthesize(text)))
        if len(self._rendered) >= MAX_RENDERED:
            self._rendered.clear()
        # cut at both ends, so that "end of our speech" is the end of the audio
        self._rendered[text] = (trim_silence(pcm, TRIM_LEVEL), self.tts.sample_rate)
        return self._rendered[text]

    async def render_phrases(self, phrases: tuple[str, ...], gap_ms: int = PHRASE_GAP_MS) -> tuple[bytes, int]:
        """Each phrase rendered on its own (and kept), joined with ``gap_ms`` of silence: lines that
        differ in a few words on every call ("order four seven two...") cost no new rendering."""
        parts = [await self.render(phrase) for phrase in phrases]
        rate = self.tts.sample_rate
        gap = bytes(2 * rate * gap_ms // 1000)
        return gap.join(pcm for pcm, _ in parts), rate

    async def transcribe(self, pcm: bytes, rate: int) -> str:
        if self.asr is None:
            raise RuntimeError("these voices were loaded without ASR")
        loop = asyncio.get_running_loop()
        samples = pcm_to_float32(resample(pcm, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else pcm)
        result = await loop.run_in_executor(self._asr_worker, self.asr.transcribe, samples)
        return result.text.strip()

    def close(self) -> None:
        self._tts_worker.shutdown(wait=False, cancel_futures=True)
        self._asr_worker.shutdown(wait=False, cancel_futures=True)


def read_wav(path: str) -> tuple[bytes, int]:
    """(PCM, rate) of a mono 16-bit WAV file; ValueError saying what is wrong otherwise."""
    try:
        with wave.open(str(Path(path)), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise ValueError(f"{path}: expected mono 16-bit PCM, got {wav.getnchannels()} channel(s), "
                                 f"{8 * wav.getsampwidth()}-bit")
            rate = wav.getframerate()
            if not 8000 <= rate <= 48000:
                raise ValueError(f"{path}: sample rate {rate} Hz is outside 8000..48000")
            if wav.getnframes() > rate * MAX_WAV_SECONDS:
                raise ValueError(f"{path}: longer than {MAX_WAV_SECONDS} s")
            return wav.readframes(wav.getnframes()), rate
    except (OSError, EOFError, wave.Error) as exc:
        raise ValueError(f"{path}: cannot read WAV: {exc}") from None
