"""When to re-decode the growing buffer for a partial transcript: at most once per
``interval_ms`` of speech, never while another decode of this call is in flight, and
not before ``min_audio_ms`` of speech exists (whisper hallucinates on tiny clips)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PartialSettings:
    enabled: bool = True
    interval_ms: int = 1000
    min_audio_ms: int = 800


class PartialScheduler:
    def __init__(self, settings: PartialSettings | None = None) -> None:
        self.settings = settings or PartialSettings()
        self._last_ms: int | None = None

    def reset(self) -> None:
        self._last_ms = None

    def due(self, speech_start_ms: int, now_ms: int, decode_in_flight: bool) -> bool:
        s = self.settings
        if not s.enabled or decode_in_flight or now_ms - speech_start_ms < s.min_audio_ms:
            return False
        if self._last_ms is not None and now_ms - self._last_ms < s.interval_ms:
            return False
        self._last_ms = now_ms
        return True
