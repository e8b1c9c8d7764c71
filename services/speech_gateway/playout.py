"""A call's prompts: Say/Play actions become PlayAudio chunks for the media side.

Each idempotency key is played once (a resumed runtime stream may re-send it);
prompts go down in the order they arrived; a Say is streamed sentence by sentence
as the TTS pool renders it, resampled to the call's playback rate in <= 1 s chunks,
ending with a ``last`` chunk. A prompt that cannot be rendered still ends with an
empty ``last`` chunk so the media side reports it finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from dialtone.common.audio import StreamResampler, resample, trim_silence
from dialtone.speech_gateway.audio_io import AudioFileError, read_wav
from dialtone.speech_gateway.core.events import BargeInMode, BargeInPolicy
from dialtone.speech_gateway.core.playback import PlaybackLedger
from dialtone.speech_gateway.engines.pool import PoolBusy
from dialtone.speech_gateway.metrics import SAYS_SKIPPED, TTS_FIRST_AUDIO
from dialtone.speech_gateway.prompts import PromptRenderer
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import speech_gateway_pb2 as pb

log = logging.getLogger(__name__)

_PLAY_CHUNK_MS = 1000
# A voice's rendering starts with tens of ms of digital silence (piper: 40-60 ms). On the first chunk
# of a prompt it is pure turn latency, so it goes; 10 ms stay so the onset is not clipped.
_LEAD_SILENCE_LEVEL = 64        # |sample| below this (about -54 dBFS) is silence
_LEAD_KEEP_MS = 10

_MODES = {
    cpb.BARGE_IN_MODE_UNSPECIFIED: BargeInMode.ON,
    cpb.BARGE_IN_MODE_ON: BargeInMode.ON,
    cpb.BARGE_IN_MODE_OFF: BargeInMode.OFF,
    cpb.BARGE_IN_MODE_DTMF_ONLY: BargeInMode.DTMF_ONLY,
    cpb.BARGE_IN_MODE_AFTER_WORDS: BargeInMode.AFTER_WORDS,
}


def policy_from_proto(policy: cpb.BargeInPolicy) -> BargeInPolicy:
    return BargeInPolicy(_MODES.get(policy.mode, BargeInMode.ON), int(policy.min_words))


class PromptPlayer:
    def __init__(self, renderer: PromptRenderer, playback_rate: int, max_text_chars: int, *,
                 down: Callable[..., None], notice: Callable[[str, str], None],
                 spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
                 on_first_audio: Callable[[str, BargeInPolicy], None]) -> None:
        self._renderer = renderer
        self._rate = playback_rate
        self._max_text_chars = max_text_chars
        self._down = down
        self._notice = notice
        self._spawn = spawn
        self._on_first_audio = on_first_audio
        self._ledger = PlaybackLedger()
        self._policies: dict[str, BargeInPolicy] = {}
        self._keys: dict[str, str] = {}
        self._renders: dict[str, asyncio.Task[None]] = {}
        self._order = asyncio.Lock()

    def policy_of(self, utterance_id: str) -> BargeInPolicy | None:
        return self._policies.get(utterance_id)

    def finished(self, utterance_id: str) -> None:
        """The media side reported the prompt finished (played out or stopped)."""
        key = self._keys.pop(utterance_id, "")
        self._policies.pop(utterance_id, None)
        if key:
            self._ledger.finished(key)

    async def rendered(self, timeout: float) -> None:
        """Return once every prompt started so far has its last chunk sent down (or ``timeout`` passed)."""
        pending = list(self._renders.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def stop(self, utterance_id: str = "") -> None:
        """Stop rendering one prompt (or all: empty id), including those still waiting their turn."""
        for uid, task in list(self._renders.items()):
            if not utterance_id or uid == utterance_id:
                task.cancel()

    def start(self, action: rpb.DialogAction, utterance_id: str, policy: cpb.BargeInPolicy) -> None:
        key = action.idempotency_key
        if not self._ledger.claim(key):
            SAYS_SKIPPED.inc()
            log.info("prompt %s already played; not playing it again", key)
            return
        uid = utterance_id or key or f"prompt-{action.seq}"
        self._policies[uid] = policy_from_proto(policy)
        if key:
            self._keys[uid] = key
        task = self._spawn(self._play(action, uid, key))
        self._renders[uid] = task
        task.add_done_callback(lambda _t: self._renders.pop(uid, None))

    def _send(self, uid: str, key: str, pcm: bytes, last: bool = False) -> None:
        self._down(play_audio=pb.PlayAudio(utterance_id=uid, pcm=pcm, sample_rate=self._rate, last=last,
                                           idempotency_key=key))

    async def _play(self, action: rpb.DialogAction, uid: str, key: str) -> None:
        async with self._order:
            received = time.perf_counter()
            sent_any = False
            step = self._rate * 2 * _PLAY_CHUNK_MS // 1000
            try:
                if action.WhichOneof("payload") == "say":
                    if action.say.voice and action.say.voice != self._renderer.voice:
                        # One voice per gateway (tts.voice): a Say asking for another is spoken in it.
                        log.info("Say %s asks for voice %r; speaking it in %r", uid, action.say.voice,
                                 self._renderer.voice)
                    chunks, rate, cache = self._say_chunks(action.say.text)
                else:
                    chunks, rate, cache = self._file_chunks(action.play.audio_uri), self._rate, "file"
                resampler = StreamResampler(rate, self._rate)
                async for chunk in chunks:
                    if not sent_any and cache != "file":   # a recording is played as recorded
                        chunk = trim_silence(chunk, _LEAD_SILENCE_LEVEL, trailing=False,
                                             keep_samples=rate * _LEAD_KEEP_MS // 1000) or chunk
                    out = resampler.process(chunk)
                    if not sent_any:
                        sent_any = True
                        if cache != "file":
                            TTS_FIRST_AUDIO.labels(self._renderer.engine_name, cache).observe(
                                time.perf_counter() - received)
                        self._on_first_audio(uid, self._policies.get(uid, BargeInPolicy()))
                    for i in range(0, len(out), step):
                        self._send(uid, key, out[i:i + step])
                self._send(uid, key, resampler.process(b"", last=True), last=True)
            except (PoolBusy, AudioFileError, ValueError, RuntimeError) as exc:
                log.warning("prompt %s not rendered: %s", uid, exc)
                self._notice("error", f"prompt {uid} not rendered: {exc}")
                self._send(uid, key, b"", last=True)

    def _say_chunks(self, text: str) -> tuple[AsyncIterator[bytes], int, str]:
        text = text.strip()
        if not text:
            raise ValueError("Say text is empty")
        if len(text) > self._max_text_chars:
            raise ValueError(f"Say text is {len(text)} characters; the limit is {self._max_text_chars}")
        cache = self._renderer.first_audio_from(text)
        self._notice("say", text)
        return self._renderer.render(text), self._renderer.sample_rate, cache

    async def _file_chunks(self, path: str) -> AsyncIterator[bytes]:
        pcm, rate = await asyncio.to_thread(read_wav, path)
        yield await asyncio.to_thread(resample, pcm, rate, self._rate)
