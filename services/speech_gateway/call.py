"""One call: the media gateway's StreamCall on one side, the runtime's Converse on the other.

Every 20 ms frame goes through webrtcvad and the turn core (core/turn.py); utterances are
decoded in the ASR pool (partials at a bounded rate, a speculative decode when silence
begins, committed when the endpoint fires). The speculative transcript is judged against
the state's expectation (StateChanged.expect): complete ends the turn at once, unfinished
("4 5 ...", "my number is") makes it wait. Dialog actions become PlayAudio chunks (TTS part
by part, a fixed first part from the cache), StopPlayback, Transfer or Hangup. Barge-in is
decided here so StopPlayback reaches the media side in the same step as the VAD
decision that triggered it, without a round trip through the runtime.

Events of speech heard over a prompt are held while the barge-in core judges them:
forwarded on Interrupt (SpeechStarted carries the interrupted prompt), dropped on
Backchannel, forwarded when the prompt ends first.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import grpc
import numpy as np
from dialtone.common.audio import FRAME_MS, SAMPLE_RATE, rms_dbfs
from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.speech_gateway.config import SpeechGatewayConfig, VadConfig
from dialtone.speech_gateway.core.barge_in import BargeIn, OnsetHold
from dialtone.speech_gateway.core.eager import DropAhead, EagerCommand, EagerReplies, RenderAhead
from dialtone.speech_gateway.core.events import (
    Backchannel,
    BargeInPolicy,
    BargeInVerdict,
    Interrupt,
    SilenceBegan,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)
from dialtone.speech_gateway.core.partials import PartialScheduler
from dialtone.speech_gateway.core.segmenter import SegmenterSettings
from dialtone.speech_gateway.core.turn import (
    Completeness,
    EndOfTurn,
    Expectation,
    TurnCore,
    TurnSettings,
    judge,
    with_turn_model,
)
from dialtone.speech_gateway.engines.base import MAX_HINT_CHARS, AsrEngine, Recognition
from dialtone.speech_gateway.engines.pool import EnginePool, PoolBusy
from dialtone.speech_gateway.engines.turn_model import SmartTurn
from dialtone.speech_gateway.engines.vad import HANGOVER_MS, build_vad
from dialtone.speech_gateway.metrics import (
    ASR_DECODE,
    ASR_LATENCY,
    BACKCHANNELS,
    BARGE_IN_REACTION,
    BARGE_INS,
    EAGER_REPLIES,
    ENDPOINT_WAIT,
    PROMPT_HOLDS,
    SPECULATIVE,
    TURN_LATENCY,
    TURN_MODEL_SECONDS,
    UTTERANCES,
    VAD_DECISIONS,
)
from dialtone.speech_gateway.playout import PromptPlayer
from dialtone.speech_gateway.prompts import PromptRenderer
from dialtone.speech_gateway.runtime_link import RuntimeLink, RuntimeRefused, RuntimeUnavailable
from dialtone.speech_gateway.validation import check_uplink
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import speech_gateway_pb2 as pb

log = logging.getLogger(__name__)

_RENDER_BEFORE_VERB_S = 15.0  # longest wait for a prompt's rendering before a transfer/hangup goes anyway

_VAD_SPEECH = VAD_DECISIONS.labels("speech")
_VAD_SILENCE = VAD_DECISIONS.labels("silence")
_TAIL_MS = 200  # silence kept after the end of speech: whisper decodes word ends better with it
_FINISH_WAIT_S = 15.0  # at CallEnd: time left for the last transcript to reach the runtime
MAX_PREPARED_TEXTS = 16  # texts of one PrepareReply rendered ahead; the rest are not

T = TypeVar("T")


def _as_is(rec: Recognition) -> Recognition:
    return rec


@dataclasses.dataclass
class _Utterance:
    index: int
    start_ms: int
    audio: bytearray
    gate: str = "forward"  # forward | hold | drop
    held_payloads: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    end_ms: int | None = None
    speculative: asyncio.Future[tuple[Recognition, Completeness]] | None = None
    speculative_pause_ms: int = -1   # call time of the silence it was decoded at
    partial: asyncio.Future[Recognition] | None = None
    final_sent: bool = False
    after_prompt: bool = False  # the prompt it was heard over has ended; the transcript decides


def _hangover_ms(vad: VadConfig) -> int:
    return HANGOVER_MS.get(vad.engine, 0) if vad.hangover_ms < 0 else vad.hangover_ms


def segmenter_settings(vad: VadConfig) -> SegmenterSettings:
    """The endpointing timings as configured, the stops less the VAD's hangover: ``stop_ms`` is the
    silence after the caller's speech, and the VAD reports that silence only ``hangover`` late. ValueError (checked
    at start) when the configured timings do not fit together."""
    configured = SegmenterSettings(
        frame_ms=FRAME_MS, start_window_ms=vad.start_window_ms, start_ratio=vad.start_ratio,
        stop_ms=vad.stop_ms, speculative_ms=vad.speculative_ms, max_utterance_ms=vad.max_utterance_ms,
        early_stop_ms=vad.early_stop_ms)
    hangover = _hangover_ms(vad)
    stop = max(FRAME_MS, vad.stop_ms - hangover)
    # not the speculative trigger: it is silence as the VAD reports it (its decode is what the turn core
    # judges; moving it 100 ms earlier than configured made it fire inside words)
    speculative = min(stop, vad.speculative_ms)
    early = max(speculative, vad.early_stop_ms - hangover) if vad.early_stop_ms else 0
    return dataclasses.replace(configured, stop_ms=stop, speculative_ms=speculative, early_stop_ms=early)


def turn_settings(vad: VadConfig) -> TurnSettings:
    """The turn core's settings: the segmenter's, and the end-of-turn silences after the caller's speech by
    verdict (complete: ``early_stop_ms``, other: ``stop_ms``, incomplete: ``incomplete_stop_ms``)."""
    complete = min(vad.early_stop_ms, vad.stop_ms) if vad.early_stop_ms else vad.stop_ms
    end_of_turn = EndOfTurn(complete, vad.stop_ms, max(vad.stop_ms, vad.incomplete_stop_ms))
    return TurnSettings(segmenter_settings(vad), end_of_turn, hangover_ms=_hangover_ms(vad),
                        early_end=vad.early_stop_ms > 0, quiet_ms=vad.quiet_ms,
                        await_verdict=vad.turn_model != "off")


def expectation_of(state: rpb.StateChanged) -> Expectation | None:
    """The state's expectation from the runtime (None when it sends none); ValueError when it is malformed."""
    if not state.HasField("expect") or not state.expect.entity:
        return None
    expect, eot = state.expect, state.expect.end_of_turn
    return Expectation.parse(expect.entity, expect.constraints_json, eot.complete_ms, eot.other_ms, eot.incomplete_ms)


class CallSession:
    def __init__(self, config: SpeechGatewayConfig, start: pb.MediaUplink, channel: grpc.aio.Channel,
                 asr_pool: EnginePool[AsrEngine], asr_name: str, renderer: PromptRenderer,
                 turn_model: SmartTurn | None = None) -> None:
        self.session_id = start.session_id
        call_start = start.call_start
        self._config = config
        self._asr_pool = asr_pool
        self._asr_name = asr_name
        self._turn_model = turn_model
        vad = config.vad
        self._vad = build_vad(vad.engine, vad.aggressiveness, vad.silero_threshold)
        self._turn = TurnCore(turn_settings(vad))
        self._barge = BargeIn(config.barge_in.settings())
        self._onset_hold = OnsetHold(config.barge_in.hold_after_ms)
        self._held: str | None = None   # prompt silenced at speech onset, verdict pending
        self._renderer = renderer
        self._eager = EagerReplies()
        self._hints = ""                 # the listening state's recognition hints (StateChanged.expect.hints)
        self._partials = PartialScheduler(config.asr.partial_settings())
        self._preroll: collections.deque[tuple[int, bytes]] = collections.deque(
            maxlen=max(1, vad.start_window_ms // FRAME_MS))
        self._utt: _Utterance | None = None
        self._judged: _Utterance | None = None
        self._utt_count = 0
        self._call_end_reason = ""
        self._player = PromptPlayer(renderer, call_start.playback_sample_rate or SAMPLE_RATE,
                                    config.tts.max_text_chars, down=self._down, notice=self._notice,
                                    spawn=self._spawn, on_first_audio=self._prompt_sent)
        self._finals: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_seq = 0
        self._last_ts = 0
        self._speech_end_at: float | None = None  # perf_counter of the caller's last end of speech (metrics)
        self.outbox: asyncio.Queue[pb.MediaDownlink | None] = asyncio.Queue()
        self.error: InvalidArgument | None = None
        started = None if call_start.resume else rpb.CallStarted(call=call_start.call)
        self.link = RuntimeLink(channel, self.session_id, started, self._on_action,
                                reconnect_s=config.runtime_reconnect_s)

    # ---- plumbing -------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one failed job must not end the call; it is logged
            log.exception("call task failed", extra={"session_id": self.session_id})

    def _down(self, **payload: Any) -> None:
        self._down_seq += 1
        self.outbox.put_nowait(pb.MediaDownlink(session_id=self.session_id, seq=self._down_seq, **payload))

    def _notice(self, kind: str, text: str) -> None:
        self._down(notice=pb.CallNotice(kind=kind, text=text))

    def _emit(self, utt: _Utterance | None, **payload: Any) -> None:
        """Send a speech event to the runtime, unless its utterance is held or dropped."""
        if utt is None or utt.gate == "forward":
            self.link.send(**payload)
        elif utt.gate == "hold":
            utt.held_payloads.append(payload)

    def _release(self, utt: _Utterance, interrupted: str = "") -> None:
        utt.gate = "forward"
        for payload in utt.held_payloads:
            if interrupted and "speech_started" in payload:
                payload["speech_started"].interrupted_utterance_id = interrupted
            self.link.send(**payload)
        utt.held_payloads.clear()

    def _apply(self, verdict: BargeInVerdict | None) -> None:
        if verdict is None:
            return
        utt = self._judged
        self._judged = None
        if isinstance(verdict, Interrupt):
            BARGE_INS.labels(verdict.reason).inc()
            if utt is not None:
                BARGE_IN_REACTION.observe((self._last_ts + FRAME_MS - utt.start_ms) / 1000.0)
            # For live panels (and tests): the call time of the frame that decided it.
            self._notice("barge_in", f"frame_ms={self._last_ts}")
            self._down(stop_playback=cpb.StopPlayback(utterance_id=verdict.utterance_id, reason="barge_in"))
            if self._held is not None:   # the StopPlayback ended the hold on the media side
                PROMPT_HOLDS.labels("stopped").inc()
                self._held = None
            self._player.stop()
            if utt is not None:
                self._release(utt, interrupted=verdict.utterance_id)
        elif isinstance(verdict, Backchannel):
            BACKCHANNELS.labels(verdict.reason).inc()
            self._resume_held()
            if utt is not None:
                utt.gate = "drop"
                utt.held_payloads.clear()

    def _hold_prompt(self, uid: str | None = None) -> None:
        """Silence ``uid`` (default: the prompt the speech being judged holds) unless one is held already."""
        uid = uid or self._barge.prompt_to_hold()
        if uid is not None and self._held is None:
            self._held = uid
            self._notice("barge_in.hold", f"frame_ms={self._last_ts}")
            self._down(hold_playback=pb.HoldPlayback(utterance_id=uid))

    def _hold_on_onset(self) -> None:
        """A likely onset over a holdable prompt silences it before speech is decided (OnsetHold)."""
        holdable = self._barge.holdable()
        step = self._onset_hold.frame(self._turn.onset_voiced_ms, self._turn.in_speech, holdable is not None)
        if step == "hold" and holdable is not None:
            self._hold_prompt(holdable)
        elif step == "release" and self._held is not None and self._utt is None:
            if self._barge.playing == self._held:
                PROMPT_HOLDS.labels("released").inc()
                self._down(resume_playback=pb.ResumePlayback(utterance_id=self._held))
            self._held = None

    def _resume_held(self) -> None:
        if self._held is not None:
            PROMPT_HOLDS.labels("resumed").inc()
            self._down(resume_playback=pb.ResumePlayback(utterance_id=self._held))
            self._held = None

    def _prompt_sent(self, utterance_id: str, policy: BargeInPolicy) -> None:
        """A prompt's first audio went down. The media side's PlaybackStarted is the better signal
        when prompts are queued; until it comes, the first prompt sent is the one playing."""
        if self._barge.playing is None:
            self._barge.prompt_started(utterance_id, policy)

    # ---- uplink -----------------------------------------------------------------------------

    async def run(self, uplink: AsyncIterator[pb.MediaUplink]) -> None:
        link_task = asyncio.create_task(self._run_link())
        try:
            async for message in uplink:
                if message.session_id != self.session_id:  # the stream's own was checked at its start
                    raise InvalidArgument(f"MediaUplink: session_id {quote_prefix(message.session_id)} does not "
                                          f"match the stream's {self.session_id!r}")
                if self._handle_uplink(message):
                    break
            await self._end_call("stream_closed" if not link_task.done() else "")
            try:
                await asyncio.wait_for(asyncio.shield(link_task), timeout=_FINISH_WAIT_S)
            except TimeoutError:
                log.warning("runtime did not close the stream after CallEnded")
        except InvalidArgument as exc:
            self.error = exc
        finally:
            self._eager_do(self._eager.talked_on())   # a reply rendered ahead that no one will say
            for task in [*self._tasks, link_task]:
                task.cancel()
            await asyncio.gather(*self._tasks, link_task, return_exceptions=True)
            self.outbox.put_nowait(None)

    async def _run_link(self) -> None:
        try:
            await self.link.run()
        except RuntimeUnavailable as exc:
            log.error("conversation runtime unavailable: %s", exc, extra={"session_id": self.session_id})
            self._down(hangup=cpb.Hangup(reason="runtime_unavailable"))
        except RuntimeRefused:
            # not resumed: the same request would be refused again (logged and counted by the link)
            self._down(hangup=cpb.Hangup(reason="runtime_refused"))

    def _handle_uplink(self, message: pb.MediaUplink) -> bool:
        """Handle one message; True at CallEnd."""
        kind = message.WhichOneof("payload")
        check_uplink(message, kind)
        if kind == "audio":
            self._on_audio(message.audio.pcm, int(message.audio.timestamp_ms))
        elif kind == "dtmf":
            self.link.send(dtmf=message.dtmf)
            self._apply(self._barge.dtmf())
        elif kind == "playback_started":
            uid = message.playback_started.utterance_id
            if self._speech_end_at is not None:   # the answer to the caller's turn is on the wire
                TURN_LATENCY.observe(time.perf_counter() - self._speech_end_at)
                self._speech_end_at = None
            policy = self._player.policy_of(uid)
            if self._barge.playing != uid and policy is not None:
                self._barge.prompt_started(uid, policy)
            self.link.send(playback_started=message.playback_started)
        elif kind == "playback_finished":
            self._on_playback_finished(message.playback_finished)
        elif kind == "transfer_result":
            self.link.send(transfer_result=message.transfer_result)
        elif kind == "call_end":
            self._call_end_reason = message.call_end.reason or "caller_hangup"
            return True
        return False

    def _on_playback_finished(self, finished: cpb.PlaybackFinished) -> None:
        uid = finished.utterance_id
        self._player.finished(uid)
        if self._barge.prompt_finished(uid) and self._judged is not None:
            if self._judged.end_ms is None:
                # The prompt ended while the caller is still talking: that is an ordinary turn.
                self._release(self._judged)
                self._judged = None
                self._resume_held()   # it ended before the hold reached the media side
            else:
                # The speech ended over the prompt; its transcript still decides if it was a backchannel.
                self._judged.after_prompt = True
        self.link.send(playback_finished=finished)

    def _on_audio(self, pcm: bytes, ts: int) -> None:
        self._last_ts = ts
        speech = self._vad.is_speech(pcm)
        (_VAD_SPEECH if speech else _VAD_SILENCE).inc()
        self._preroll.append((ts, pcm))
        started_now = False
        # the level only matters in speech: a quiet stretch may begin the pause before the VAD reports it
        level = rms_dbfs(pcm) if self._turn.in_speech else None
        for event in self._turn.frame(speech, ts, level, may_pause_early=self._asr_pool.idle):
            if isinstance(event, SpeechStarted):
                self._speech_started(event)
                started_now = True
            elif isinstance(event, SilenceBegan):
                self._silence_began(event)
            elif isinstance(event, SpeechResumed):
                if self._utt is not None:
                    self._utt.speculative = None  # stale: the caller went on talking
                    SPECULATIVE.labels("discarded").inc()
                self._eager_do(self._eager.talked_on())
            elif isinstance(event, SpeechEnded):
                self._speech_ended(event)
        if self._onset_hold.hold_after_ms:
            self._hold_on_onset()
        utt = self._utt
        if utt is None or not self._turn.in_speech:
            return
        if not started_now:
            utt.audio += pcm
        duration = ts + FRAME_MS - utt.start_ms
        # Only voiced frames lengthen the speech: the silence before the endpoint is not talk.
        if self._judged is utt and speech:
            self._apply(self._barge.speech_progress(duration))
        in_flight = utt.partial is not None and not utt.partial.done()
        needed = self._judged is utt and self._barge.needs_partials
        if self._partials.due(utt.start_ms, ts + FRAME_MS, in_flight, needed) and self._asr_pool.idle:
            self._spawn(self._partial(utt))

    def _speech_started(self, event: SpeechStarted) -> None:
        self._utt_count += 1
        audio = bytearray(b"".join(p for t, p in self._preroll if t >= event.start_ms))
        utt = _Utterance(self._utt_count, event.start_ms, audio)
        self._utt = utt
        self._partials.reset()
        self._eager_do(self._eager.talked_on())
        verdict = self._barge.speech_started()
        if self._barge.judging:
            utt.gate = "hold"
            self._judged = utt
            self._hold_prompt()
        elif isinstance(verdict, Backchannel):
            utt.gate = "drop"
        started = rpb.SpeechStarted(timestamp_ms=event.start_ms)
        if isinstance(verdict, Interrupt):
            started.interrupted_utterance_id = verdict.utterance_id
        self._emit(utt, speech_started=started)
        if verdict is not None:
            self._judged = utt
            self._apply(verdict)

    def _silence_began(self, event: SilenceBegan) -> None:
        utt = self._utt
        if utt is None:
            return
        # the audio so far: the tail after the VAD's late report of silence is the speech's end
        length = self._audio_bytes(utt, event.at_ms)
        utt.speculative_pause_ms = event.at_ms
        expectation = self._turn.expectation
        audio = bytes(utt.audio[:length])
        model, threshold = self._turn_model, self._config.vad.turn_model_threshold

        def verdict(rec: Recognition) -> tuple[Recognition, Completeness]:
            said = judge(rec.text, expectation)
            if said is not Completeness.OTHER or model is None:
                return rec, said
            started = time.perf_counter()
            probability = model.probability(audio)
            TURN_MODEL_SECONDS.observe(time.perf_counter() - started)
            return rec, with_turn_model(said, probability, threshold)

        utt.speculative = self._decode(audio, "speculative", verdict)
        utt.speculative.add_done_callback(lambda future: self._speculative_done(utt, future, event.at_ms))

    def _speculative_done(self, utt: _Utterance, future: asyncio.Future[tuple[Recognition, Completeness]],
                          pause_ms: int) -> None:
        """The pause's transcript, judged against what the state expects, sets how long this pause may last."""
        if self._utt is not utt or utt.speculative is not future or future.cancelled() or future.exception():
            return   # stale: the caller talked on, or the decode failed (the endpoint decides alone)
        rec, completeness = future.result()
        current = self._turn.pause_ms == pause_ms
        ended = False
        for event in self._turn.verdict(pause_ms, completeness):
            if isinstance(event, SpeechEnded):
                self._speech_ended(event)
                ended = True
        # the turn may end at this pause: the reply the dialog would give is rendered while it does
        if (current and not ended and self._config.vad.eager_reply and utt.gate == "forward"
                and completeness is not Completeness.INCOMPLETE and rec.text.strip()):
            seq = self.link.send(transcript=rpb.Transcript(text=rec.text, is_final=False, provisional=True,
                                                           confidence=rec.confidence, start_ms=utt.start_ms))
            self._eager_do(self._eager.provisional(seq, rec.text))

    def _eager_do(self, commands: list[EagerCommand]) -> None:
        for command in commands:
            if isinstance(command, RenderAhead):
                EAGER_REPLIES.labels("prepared").inc()
                self._renderer.ahead(list(command.texts))
            elif isinstance(command, DropAhead):
                EAGER_REPLIES.labels(command.outcome.value).inc()
                self._renderer.drop([part for text in command.texts for part in self._renderer.parts(text)])

    def _speech_ended(self, event: SpeechEnded) -> None:
        utt = self._utt
        self._utt = None
        if utt is None:
            return
        UTTERANCES.labels("forced" if event.forced else "early" if event.early else "silence").inc()
        # the caller stopped talking at end_ms of call time; the endpoint fired at the current frame
        waited_s = (self._last_ts + FRAME_MS - event.end_ms) / 1000.0
        ENDPOINT_WAIT.observe(waited_s)
        self._speech_end_at = time.perf_counter() - waited_s
        utt.end_ms = event.end_ms
        self._emit(utt, speech_ended=rpb.SpeechEnded(timestamp_ms=event.end_ms, duration_ms=event.duration_ms))
        task = self._spawn(self._final(utt, event, time.perf_counter()))
        self._finals.add(task)
        task.add_done_callback(self._finals.discard)

    def _audio_bytes(self, utt: _Utterance, end_ms: int) -> int:
        wanted = (end_ms + _TAIL_MS - utt.start_ms) * SAMPLE_RATE // 1000 * 2
        return min(len(utt.audio), max(0, wanted))

    # ---- recognition ------------------------------------------------------------------------

    def _decode(self, pcm: bytes, kind: str, then: Callable[[Recognition], T]) -> asyncio.Future[T]:
        """Decode in the ASR pool; ``then`` runs on the result in the same worker job (judging a date is
        not loop work)."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        child = ASR_DECODE.labels(self._asr_name, kind)
        hints = self._hints

        def job(engine: AsrEngine) -> T:
            started = time.perf_counter()
            try:
                rec = engine.transcribe(samples, hints)
            finally:
                child.observe(time.perf_counter() - started)
            return then(rec)

        return asyncio.ensure_future(self._asr_pool.run(job))

    async def _partial(self, utt: _Utterance) -> None:
        utt.partial = self._decode(bytes(utt.audio), "partial", _as_is)
        try:
            rec = await utt.partial
        except PoolBusy:
            return
        if utt.final_sent or not rec.text:
            return
        self._emit(utt, transcript=rpb.Transcript(text=rec.text, is_final=False, confidence=rec.confidence,
                                                  start_ms=utt.start_ms))
        if utt.gate == "forward":
            self._notice("transcript.partial", rec.text)
        if self._judged is utt:
            self._apply(self._barge.transcript(rec.text, final=False))

    async def _final(self, utt: _Utterance, event: SpeechEnded, ended_at: float) -> None:
        length = self._audio_bytes(utt, event.end_ms)
        rec: Recognition | None = None
        if utt.speculative is not None and utt.speculative_pause_ms == event.end_ms:
            # decoded at this same silence: the audio after it is silence
            try:
                rec, _ = await utt.speculative
                SPECULATIVE.labels("committed").inc()
            except PoolBusy:
                rec = None
        elif utt.speculative is not None:
            SPECULATIVE.labels("discarded").inc()
        if rec is None:
            try:
                rec = await self._decode(bytes(utt.audio[:length]), "final", _as_is)
            except PoolBusy:
                log.warning("ASR pool full: utterance dropped", extra={"session_id": self.session_id})
                rec = Recognition("", 0.0, event.duration_ms)
        latency = time.perf_counter() - ended_at
        ASR_LATENCY.labels(self._asr_name).observe(latency)
        utt.final_sent = True
        self._eager_do(self._eager.turn_ended(rec.text))
        if self._judged is utt and utt.after_prompt:
            self._judged = None
            self._resume_held()   # the prompt ended before its hold reached the media side
            if self._barge.settings.is_backchannel(rec.text):
                BACKCHANNELS.labels("backchannel_words").inc()
                utt.gate = "drop"
                utt.held_payloads.clear()
            else:
                self._release(utt)
        elif self._judged is utt:
            self._apply(self._barge.transcript(rec.text, final=True))
        self._emit(utt, transcript=rpb.Transcript(
            text=rec.text, is_final=True, confidence=rec.confidence, start_ms=event.start_ms, end_ms=event.end_ms,
            asr_latency_ms=int(latency * 1000)))
        if utt.gate == "forward":
            self._notice("transcript.final", rec.text)

    async def _end_call(self, fallback_reason: str) -> None:
        for event in self._turn.flush(self._last_ts + FRAME_MS):
            if isinstance(event, SpeechEnded):
                self._speech_ended(event)
        if self._finals:
            await asyncio.wait(set(self._finals), timeout=_FINISH_WAIT_S)
        reason = self._call_end_reason or fallback_reason
        self.link.send(call_ended=rpb.CallEnded(reason=reason))
        self.link.close()

    # ---- actions from the runtime -------------------------------------------------------------

    async def _on_action(self, action: rpb.DialogAction) -> None:
        kind = action.WhichOneof("payload")
        if kind == "say":
            outcome, commands = self._eager.said(action.say.text)
            if outcome is not None:
                EAGER_REPLIES.labels(outcome.value).inc()
            self._eager_do(commands)
            self._player.start(action, action.say.utterance_id, action.say.barge_in)
        elif kind == "prepare_reply":
            self._prepare(action.prepare_reply)
        elif kind == "play":
            self._player.start(action, action.play.utterance_id, action.play.barge_in)
        elif kind == "stop_playback":
            self._player.stop(action.stop_playback.utterance_id)
            self._down(stop_playback=action.stop_playback)
        elif kind in ("transfer", "hangup"):
            # "Transferring you now" / "Goodbye" must reach the caller before the REFER or BYE: the
            # prompt's audio goes down first, and the media side holds the verb until it has played.
            await self._player.rendered(_RENDER_BEFORE_VERB_S)
            if kind == "transfer":
                self._down(transfer=action.transfer)
            else:
                self._down(hangup=action.hangup)
        elif kind == "state_changed":
            self._notice("state", f"{action.state_changed.dialog}:{action.state_changed.state}")
            # the state's words for the recognizer, from this state's next decode on
            self._hints = action.state_changed.expect.hints[:MAX_HINT_CHARS] if self._config.asr.use_hints else ""
            try:
                self._turn.expect(expectation_of(action.state_changed))
            except ValueError as exc:
                # the turn ends by silence alone, as with no expectation; the dialog itself goes on
                log.warning("state %s: expectation ignored: %s", action.state_changed.state, exc,
                            extra={"session_id": self.session_id})
                self._notice("error", f"expectation ignored: {exc}")
                self._turn.expect(None)
        else:
            log.warning("runtime sent an action with no payload (seq %d)", action.seq)

    def _prepare(self, prepare: rpb.PrepareReply) -> None:
        limit = self._config.tts.max_text_chars
        texts = [text for text in prepare.texts[:MAX_PREPARED_TEXTS] if 0 < len(text.strip()) <= limit]
        if prepare.for_event_seq:
            self._eager_do(self._eager.prepared(prepare.for_event_seq, texts))
        elif self._config.tts.render_openings:
            self._renderer.openings(texts)
