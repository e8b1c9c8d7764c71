"""The speech gateway's gRPC servicer and process wiring: engines loaded at start (paths
checked, nothing downloaded), one CallSession per StreamCall, one channel to the runtime (mutual TLS
per the ``tls`` section, remade when its files change)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
from dialtone.common.config import ConfigError
from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_channel import ChannelPool, balanced_target
from dialtone.common.grpc_validation import refuse
from dialtone.common.logging import set_session
from dialtone.speech_gateway.call import CallSession, segmenter_settings
from dialtone.speech_gateway.config import SpeechGatewayConfig
from dialtone.speech_gateway.engines.base import AsrEngine, ModelError, TtsEngine
from dialtone.speech_gateway.engines.factory import asr_workers, build_asr, build_tts
from dialtone.speech_gateway.engines.pool import EnginePool
from dialtone.speech_gateway.engines.turn_model import SmartTurn
from dialtone.speech_gateway.engines.vad import build_vad
from dialtone.speech_gateway.metrics import ACTIVE_CALLS
from dialtone.speech_gateway.prompts import PromptRenderer
from dialtone.speech_gateway.validation import check_call_start
from dialtone.v1 import speech_gateway_pb2 as pb
from dialtone.v1 import speech_gateway_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


def limit_blas_threads(threads: int) -> None:
    """Process-wide: numpy's BLAS runs on at most ``threads`` threads (0: leave it as it is)."""
    if threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")


class Engines:
    """The loaded models: an ASR pool and a TTS renderer."""

    def __init__(self, asr: list[AsrEngine], tts: list[TtsEngine], config: SpeechGatewayConfig,
                 turn_model: SmartTurn | None = None) -> None:
        self.turn_model = turn_model
        self.asr_name = asr[0].name
        self.asr_pool: EnginePool[AsrEngine] = EnginePool("asr", asr, config.asr.max_queue)
        self.tts_pool: EnginePool[TtsEngine] = EnginePool("tts", tts, config.tts.max_queue)
        self.renderer = PromptRenderer(self.tts_pool, tts[0], config.tts.cache_entries,
                                       config.tts.read_digits_from)

    @classmethod
    def load(cls, config: SpeechGatewayConfig) -> Engines:
        """Blocking: build every engine (raises ModelError with the path and the fix)."""
        started = time.perf_counter()
        limit_blas_threads(config.asr.blas_threads)
        build_vad(config.vad.engine, config.vad.aggressiveness, config.vad.silero_threshold)  # checked at start
        asr = [build_asr(config.asr) for _ in range(asr_workers(config.asr))]
        tts = [build_tts(config.tts) for _ in range(max(1, config.tts.workers))]
        log.info("speech engines loaded in %.2f s: asr %s x%d, tts %s (%s) x%d",
                 time.perf_counter() - started, asr[0].name, len(asr), tts[0].name, tts[0].voice, len(tts))
        engines = cls(asr, tts, config)
        engines.load_turn_model(config)
        return engines

    def load_turn_model(self, config: SpeechGatewayConfig) -> SmartTurn | None:
        """Blocking: the end-of-turn model ``vad.turn_model`` asks for (loaded once); None when off."""
        if config.vad.turn_model == "off":
            return None
        if self.turn_model is None:
            self.turn_model = SmartTurn(config.vad.turn_model_file)
        return self.turn_model

    def shutdown(self) -> None:
        self.renderer.close()
        self.asr_pool.shutdown()
        self.tts_pool.shutdown()


def _call_ended(app: SpeechGatewayApp) -> None:
    ACTIVE_CALLS.dec()
    app.active -= 1


class SpeechGatewayServicer(pb_grpc.SpeechGatewayServicer):
    def __init__(self, app: SpeechGatewayApp) -> None:
        self._app = app

    async def StreamCall(self, request_iterator: AsyncIterator[pb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[pb.MediaDownlink]:
        app = self._app
        if app.draining or app.engines is None or app.channels is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "speech gateway is not taking calls (draining)")
            return
        try:
            first = await request_iterator.__anext__()
        except StopAsyncIteration:
            return
        try:
            check_call_start(first)
        except InvalidArgument as exc:
            refuse(context, exc)
            return
        set_session(first.session_id)
        engines = app.engines
        session = CallSession(app.config, first, app.channels.get(app.runtime_target), engines.asr_pool,
                              engines.asr_name, engines.renderer, app.turn_model)
        ACTIVE_CALLS.inc()
        app.active += 1
        runner = asyncio.create_task(session.run(request_iterator))
        # counted out when the session's task ends, however the stream ended: gRPC may cancel this
        # handler a second time while it waits for the runner below, which would skip a plain decrement
        runner.add_done_callback(lambda _: _call_ended(app))
        try:
            while (message := await session.outbox.get()) is not None:
                yield message
        finally:
            if not runner.done():
                runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if session.error is not None:
            refuse(context, session.error)


class SpeechGatewayApp:
    def __init__(self, config: SpeechGatewayConfig, engines: Engines | None = None) -> None:
        try:
            segmenter_settings(config.vad)
        except ValueError as exc:
            raise ConfigError(f"vad: {exc}") from exc
        self.config = config
        self.servicer = SpeechGatewayServicer(self)
        self.engines = engines
        self.turn_model: SmartTurn | None = None
        self._owns_engines = engines is None
        self.channels: ChannelPool | None = None
        self.runtime_target = ""
        self.draining = False
        self.active = 0

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_SpeechGatewayServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["SpeechGateway"].full_name]

    async def start(self) -> None:
        if self.engines is None:
            try:
                self.engines = await asyncio.to_thread(Engines.load, self.config)
            except ModelError as exc:
                # A model path is configuration: report it the way a bad config key is reported.
                raise ConfigError(str(exc)) from exc
        try:
            self.turn_model = await asyncio.to_thread(self.engines.load_turn_model, self.config)
        except ModelError as exc:
            raise ConfigError(f"vad.turn_model: {exc}") from exc
        self.channels = ChannelPool(self.config.tls)
        # one target balanced per call across the runtime's replicas (a headless name or replica IPs)
        try:
            self.runtime_target = balanced_target(self.config.runtime_address)
        except ValueError as exc:
            raise ConfigError(f"runtime_address: {exc}") from None
        await self.engines.renderer.prerender(self.config.tts.prerender)

    async def drain(self) -> None:
        self.draining = True
        while self.active > 0:
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.channels is not None:
            await self.channels.close()
        if self.engines is not None and self._owns_engines:
            self.engines.shutdown()
