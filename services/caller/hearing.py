"""What the caller hears: received audio cut into the bot's utterances by level (sans-I/O).

Fed one decoded RTP packet at a time with its arrival time; says when the bot's speech
starts (the first packet above the threshold: the "first non-silent RTP packet back")
and when an utterance ends (``end_silence_ms`` below the threshold), handing over the
utterance's audio for transcription and the arrival time of its last non-silent packet.
A level gate is enough here: the far end is our own gateway, which sends digital silence
between prompts, so no VAD model is needed to tell its speech from its quiet.
"""

from __future__ import annotations

import dataclasses

from dialtone.common.audio import rms_dbfs

DEFAULT_THRESHOLD_DBFS = -50.0
DEFAULT_END_SILENCE_MS = 900     # longer than the pause between two sentences of one prompt
PREROLL_MS = 100                 # audio kept from before the onset, for the ASR
MAX_UTTERANCE_MS = 30_000        # cut (and transcribe) a never-ending prompt at this length


@dataclasses.dataclass(frozen=True)
class SpeechOnset:
    at: float                    # arrival time of the first non-silent packet


@dataclasses.dataclass(frozen=True)
class Utterance:
    onset: float                 # arrival time of its first non-silent packet
    last_voice: float            # arrival time of its last non-silent packet
    pcm: bytes                   # s16le mono at ``rate``, preroll included
    rate: int

    @property
    def duration_ms(self) -> int:
        return int((self.last_voice - self.onset) * 1000) + 20


class Hearing:
    """Level-gated segmentation of what the bot sends (see module docstring)."""

    def __init__(self, rate: int, *, threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
                 end_silence_ms: int = DEFAULT_END_SILENCE_MS) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.threshold_dbfs = threshold_dbfs
        self.end_silence_s = end_silence_ms / 1000.0
        self._preroll_bytes = rate * 2 * PREROLL_MS // 1000
        self._max_bytes = rate * 2 * MAX_UTTERANCE_MS // 1000
        self._preroll = bytearray()
        self._audio = bytearray()
        self._onset: float | None = None
        self._last_voice = 0.0
        self.last_voice_at: float | None = None   # last non-silent packet ever heard

    @property
    def speaking(self) -> bool:
        return self._onset is not None

    def packet(self, now: float, pcm: bytes) -> list[SpeechOnset | Utterance]:
        """One received packet's PCM (s16le at ``rate``), arrived at ``now`` (seconds)."""
        voiced = rms_dbfs(pcm) > self.threshold_dbfs
        events: list[SpeechOnset | Utterance] = []
        if self._onset is None:
            if not voiced:
                self._preroll += pcm
                if len(self._preroll) > self._preroll_bytes:
                    del self._preroll[: len(self._preroll) - self._preroll_bytes]
                return events
            self._onset = now
            self._audio = bytearray(self._preroll)
            self._preroll.clear()
            events.append(SpeechOnset(now))
        self._audio += pcm
        if voiced:
            self._last_voice = now
            self.last_voice_at = now
        ended = self.poll(now)
        if ended is not None:
            events.append(ended)
        elif len(self._audio) >= self._max_bytes:
            events.append(self._finish())
        return events

    def poll(self, now: float) -> Utterance | None:
        """The utterance in progress if it has been quiet long enough by ``now`` (or no packets came)."""
        if self._onset is None or now - self._last_voice < self.end_silence_s:
            return None
        return self._finish()

    def flush(self) -> Utterance | None:
        """The utterance in progress, ended now (the call is over)."""
        return self._finish() if self._onset is not None else None

    def _finish(self) -> Utterance:
        assert self._onset is not None
        utterance = Utterance(self._onset, self._last_voice, bytes(self._audio), self.rate)
        self._onset = None
        self._audio = bytearray()
        return utterance
