"""When to re-decode the growing buffer for a partial transcript: at most once per
``interval_ms`` of speech, never while another decode of this call is in flight, and
not before ``min_audio_ms`` of speech exists (whisper hallucinates on tiny clips).

Partials are decoded when ``enabled`` (for live panels) or when something ``needs`` them now:
speech over an ``after_words`` prompt is judged on its partial transcripts. Otherwise they
are not decoded at all: the dialog acts on finals only, and a partial in flight takes the ASR
threads the speculative end-of-speech decode needs (bench.e2e_turn_latency: p50 982 ms with
partials, 861 without and the decode on 2 threads)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PartialSettings:
    """No defaults: the service's are in its config (``AsrConfig.partial_settings()`` builds these)."""

    enabled: bool
    interval_ms: int
    min_audio_ms: int


class PartialScheduler:
    def __init__(self, settings: PartialSettings) -> None:
        self.settings = settings
        self._last_ms: int | None = None

    def reset(self) -> None:
        self._last_ms = None

    def due(self, speech_start_ms: int, now_ms: int, decode_in_flight: bool, needed: bool = False) -> bool:
        s = self.settings
        if not (s.enabled or needed) or decode_in_flight or now_ms - speech_start_ms < s.min_audio_ms:
            return False
        if self._last_ms is not None and now_ms - self._last_ms < s.interval_ms:
            return False
        self._last_ms = now_ms
        return True
