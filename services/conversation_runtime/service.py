"""The conversation runtime's gRPC servicer and process wiring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from dialtone import language
from dialtone.common.errors import InvalidArgument
from dialtone.common.logging import set_session
from dialtone.conversation_runtime.backend import BackendClient
from dialtone.conversation_runtime.config import ConversationRuntimeConfig
from dialtone.conversation_runtime.errors import StoreUnavailable
from dialtone.conversation_runtime.registry import DialogRegistry
from dialtone.conversation_runtime.runtime import Runtime
from dialtone.conversation_runtime.store import SessionStore, open_store
from dialtone.v1 import conversation_runtime_pb2 as pb
from dialtone.v1 import conversation_runtime_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class ConversationRuntimeServicer(pb_grpc.ConversationRuntimeServicer):
    def __init__(self, app: ConversationRuntimeApp) -> None:
        self._app = app

    async def Converse(self, request_iterator: AsyncIterator[pb.SpeechEvent],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.DialogAction]:
        runtime = self._app.runtime
        if runtime is None or self._app.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the runtime is not serving")
            return
        messages = aiter(request_iterator)
        try:
            first = await anext(messages)
        except StopAsyncIteration:
            return
        # The stream ends with its status set, not with context.abort(): abort raises, and the
        # exception's traceback holds the call's state, the refused message included (up to
        # 256 kB), in a reference cycle that only the garbage collector frees, late; hundreds of
        # refusals grew the process by hundreds of megabytes.
        try:
            set_session(first.session_id or None)
            loop = await runtime.open(first)
            async for action in loop.run(messages):
                yield action
        except InvalidArgument as exc:
            log.info("refused: %s", exc)
            context.set_code(exc.grpc_status)
            context.set_details(str(exc))
        except StoreUnavailable as exc:
            log.error("%s", exc)
            context.set_code(exc.grpc_status)
            context.set_details("the session store is unavailable; resume the call")


class ConversationRuntimeApp:
    def __init__(self, config: ConversationRuntimeConfig) -> None:
        self.config = config
        # Dialogs are loaded (and refused, with file:line:col) before the service ever serves.
        self.registry = DialogRegistry(config.dialogs, config.routes, config.default_dialog)
        self.servicer = ConversationRuntimeServicer(self)
        self.runtime: Runtime | None = None
        self.store: SessionStore | None = None
        self.backend: BackendClient | None = None
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_ConversationRuntimeServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["ConversationRuntime"].full_name]

    async def start(self) -> None:
        # dates and phone numbers load their data on first use (~100 ms): not in a caller's turn
        await asyncio.to_thread(language.warm_up)
        self.store = open_store(self.config.store)
        self.backend = BackendClient(self.config.integration_address, self.config.backend_timeout_s, self.config.tls)
        self.runtime = Runtime(self.config, self.store, self.registry, self.backend)
        try:
            for dialog in self.registry.dialogs():
                source = self.registry.source_of(dialog.version)
                if source is not None:
                    await self.store.put_dialog(dialog.version, *source)
        except StoreUnavailable as exc:
            # Serve anyway: each call stores its dialog version when it starts, and answers
            # UNAVAILABLE while the store is down.
            log.warning("cannot store the dialogs yet: %s", exc)
        self._tasks.append(asyncio.create_task(self.runtime.poll_timers()))
        if self.config.reload_interval_s > 0:
            self._tasks.append(asyncio.create_task(self._reload_loop()))
        log.info("dialogs loaded: %s (default %s, store %s)", self.registry.names(), self.config.default_dialog,
                 self.config.store.kind)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            changed = await asyncio.to_thread(self.registry.reload)
            for dialog in changed:
                source = self.registry.source_of(dialog.version)
                if source is not None and self.store is not None:
                    try:
                        await self.store.put_dialog(dialog.version, *source)
                    except StoreUnavailable as exc:  # stored again by the first call that uses it
                        log.warning("cannot store dialog %s yet: %s", dialog.name, exc)

    async def drain(self) -> None:
        # Streams are not waited for: every session is in the store, and a resumed stream
        # continues it on another replica.
        self.draining = True

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.backend is not None:
            await self.backend.close()
        if self.store is not None:
            await self.store.close()
