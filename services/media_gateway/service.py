"""The media gateway process: SIP stack, calls, control API (gRPC + HTTP/JSON), drain."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import Any

import grpc
from dialtone.common.auth import load_token, require_token
from dialtone.common.config import ConfigError
from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import refuse
from dialtone.common.tls import ReloadingContext, TlsConfigError, TlsFiles
from dialtone.media_gateway import control
from dialtone.media_gateway.call_rules import parse_sip_uri
from dialtone.media_gateway.calls import CallManager, MediaFactory
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.control_http import ControlHttpServer
from dialtone.media_gateway.media_types import CallEndReason
from dialtone.media_gateway.sip_bridge import SippyBridge
from dialtone.media_gateway.sip_digest import (
    ALGORITHMS,
    CredentialsError,
    DigestAuthenticator,
    DigestPolicy,
    load_users,
)
from dialtone.media_gateway.sip_guard import SipGuard
from dialtone.media_gateway.sip_liveness import SelfCheck, SelfProbe, dead_threads
from dialtone.media_gateway.sip_stack import SipStack
from dialtone.media_gateway.sip_tcp import TcpLimits
from dialtone.media_gateway.speech_link import ChannelPool
from dialtone.media_gateway.stun_address import public_address
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class MediaGatewayControlServicer(pb_grpc.MediaGatewayControlServicer):
    def __init__(self, app: MediaGatewayApp) -> None:
        self._app = app

    async def ListCalls(self, request: pb.ListCallsRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListCallsResponse:
        summaries = []
        for view in control.list_calls(self._app.calls):   # SIP and browser calls: one registry
            summaries.append(pb.CallSummary(
                session_id=view.session_id, call_id=view.call_id, state=view.state, codec=view.codec,
                started_unix_ms=view.started_unix_ms, duration_ms=view.duration_ms,
                call=common_pb2.CallInfo(caller=view.caller, callee=view.callee, dialog=view.dialog,
                                         call_id=view.call_id,
                                         channel=common_pb2.CHANNEL_WEBRTC if view.channel == "webrtc"
                                         else common_pb2.CHANNEL_SIP,
                                         direction=common_pb2.DIRECTION_OUTBOUND if view.direction == "outbound"
                                         else common_pb2.DIRECTION_INBOUND)))
        return pb.ListCallsResponse(calls=summaries)

    async def HangupCall(self, request: pb.HangupCallRequest,
                         context: grpc.aio.ServicerContext) -> pb.HangupCallResponse:
        try:
            found = control.hangup(self._app.calls, request.session_id)
        except InvalidArgument as exc:
            refuse(context, exc)
            return pb.HangupCallResponse()
        return pb.HangupCallResponse(found=found)

    async def Originate(self, request: pb.OriginateRequest,
                        context: grpc.aio.ServicerContext) -> pb.OriginateResponse:
        try:
            result = await control.originate(
                self._app.calls, self._app.draining, to_uri=request.to_uri, dialog=request.dialog,
                caller_id=request.caller_id, headers=[(h.name, h.value) for h in request.headers],
                ring_timeout_s=float(request.ring_timeout_s))
        except InvalidArgument as exc:
            refuse(context, exc)
            return pb.OriginateResponse()
        except control.Unavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise AssertionError("unreachable") from None
        return pb.OriginateResponse(session_id=result.session_id, call_id=result.call_id)


def _authenticator(config: MediaGatewayConfig) -> DigestAuthenticator | None:
    """Digest authentication of new calls when sip.auth_users_file is set (a bad file stops the start)."""
    sip = config.sip
    if not sip.auth_users_file:
        return None
    try:
        users = load_users(sip.auth_users_file)
        secret = Path(sip.auth_nonce_secret_file).read_bytes().strip() if sip.auth_nonce_secret_file else b""
        for network in sip.auth_exempt_networks:
            ipaddress.ip_network(network, strict=False)
        unknown = [name for name in sip.auth_algorithms if name not in ALGORITHMS]
        if unknown or not sip.auth_algorithms:
            raise ConfigError(f"sip.auth_algorithms: {unknown or 'empty'}; choose from {', '.join(ALGORITHMS)}")
    except CredentialsError as exc:
        raise ConfigError(f"sip.auth_users_file: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"sip.auth_nonce_secret_file: cannot read {sip.auth_nonce_secret_file}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"sip.auth_exempt_networks: {exc}") from None
    policy = DigestPolicy(sip.auth_realm, users, tuple(sip.auth_exempt_networks), tuple(sip.auth_algorithms),
                          **({"nonce_secret": secret} if secret else {}))
    log.info("SIP digest authentication on: realm %s, %d user(s), %d exempt network(s)", sip.auth_realm,
             len(users), len(sip.auth_exempt_networks))
    return DigestAuthenticator(policy)


def _default_media_factory(config: MediaGatewayConfig) -> MediaFactory:
    """The media half's ``MediaSession.open`` with our RTP port range."""
    from dialtone.media_gateway.media.ports import PortAllocator
    from dialtone.media_gateway.media.session import MediaSession

    allocator = PortAllocator(config.rtp.port_low, config.rtp.port_high)

    async def open_session(**kwargs: Any) -> Any:
        return await MediaSession.open(port_allocator=allocator, **kwargs)  # type: ignore[attr-defined]

    return open_session


CONTROL_SERVICE = pb.DESCRIPTOR.services_by_name["MediaGatewayControl"].full_name


def _control_token(config: MediaGatewayConfig) -> str:
    """The control APIs' token; ConfigError when one of them binds beyond loopback without it."""
    token = load_token(config.control.token, config.control.token_file, "control")
    env = "DIALTONE_MEDIA_GATEWAY__CONTROL__TOKEN"
    require_token(config.grpc.host, token, "control", "the control gRPC API (grpc.host)", env)
    if config.control_http.enabled:
        require_token(config.control_http.host, token, "control", "the control HTTP API (control_http.host)", env)
    return token


class MediaGatewayApp:
    def __init__(self, config: MediaGatewayConfig, media_factory: MediaFactory | None = None) -> None:
        self.config = config
        self.servicer = MediaGatewayControlServicer(self)
        self._media_factory = media_factory
        self.calls: CallManager | None = None
        self.stack: SipStack | None = None
        self.http: ControlHttpServer | None = None
        self.webrtc: Any = None  # webrtc.http_server.WebRtcServer when webrtc.enabled (imports aiortc, aiohttp)
        self.sip_port = 0
        self.sip_tls_port = 0
        self.http_port = 0
        self.webrtc_port = 0
        self.control_token = _control_token(config)

    @property
    def draining(self) -> bool:
        return self.stack is None or self.stack.draining

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_MediaGatewayControlServicer_to_server(self.servicer, server)
        return [CONTROL_SERVICE]

    def control_auth(self) -> tuple[list[str], str]:
        return [CONTROL_SERVICE], self.control_token

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.close()   # the SIP thread and sockets must not outlive a failed start
            raise

    async def _start(self) -> None:
        config = self.config
        if config.sip.advertised_host_stun and not config.sip.advertised_host:
            config.sip.advertised_host = await public_address(config.sip.advertised_host_stun)
            log.info("public address from STUN %s: %s", config.sip.advertised_host_stun, config.sip.advertised_host)
        factory = self._media_factory or _default_media_factory(config)
        self.calls = CallManager(config, factory)
        self.calls.channels = ChannelPool(config.tls)   # the speech gateway over mutual TLS when configured
        guard = SipGuard(config.sip, _authenticator(config))
        tls_files = TlsFiles(config.sip.tls_cert_file, config.sip.tls_key_file, config.sip.tls_ca_file)
        try:
            tls = ReloadingContext(tls_files, config.sip.tls_verify_client) if tls_files.enabled else None
            tls_client = ReloadingContext(tls_files, client=True) if tls_files.enabled else None
        except TlsConfigError as exc:
            raise ConfigError(f"sip.tls_*: {exc}") from None
        self.stack = SipStack(SippyBridge(asyncio.get_running_loop()), guard, config.sip.host, config.sip.port,
                              self.calls, retry_after_s=config.sip.retry_after_s,
                              advertised_host=config.sip.advertised_host, advertised_port=config.sip.advertised_port,
                              tcp_limits=TcpLimits(total=config.sip.tcp_max_connections,
                                                   per_source=config.sip.tcp_max_per_source,
                                                   message_deadline_s=config.sip.tcp_message_deadline_s,
                                                   idle_timeout_s=config.sip.tcp_idle_timeout_s),
                              tls=tls, tls_port=config.sip.tls_port, tls_client=tls_client)
        self.calls.stack = self.stack
        self.sip_port = await self.stack.start()
        self.sip_tls_port = self.stack.tls_port
        log.info("SIP listening on udp/tcp %s:%d%s", config.sip.host, self.sip_port,
                 f", tls {self.sip_tls_port}" if self.sip_tls_port else "",
                 extra={"event": "sip_listening", "sip_port": self.sip_port, "sip_tls_port": self.sip_tls_port})
        if config.registration.registrar:
            try:
                parse_sip_uri(config.registration.registrar)
                await self.stack.register(config.registration)
            except ValueError as exc:
                raise ConfigError(f"registration.registrar: {exc}") from None
        if config.control_http.enabled:
            self.http = ControlHttpServer(lambda: self.calls, lambda: self.draining, self.control_token)
            self.http_port = await self.http.start(config.control_http.host, config.control_http.port)
            log.info("control HTTP on %s:%d", config.control_http.host, self.http_port,
                     extra={"event": "control_http_listening", "http_port": self.http_port})
        if config.webrtc.enabled:
            from dialtone.media_gateway.webrtc.wiring import start_softphone

            self.webrtc = await start_softphone(config, self.calls)
            self.webrtc_port = self.webrtc.port

    async def watch(self) -> str:
        """Return (why) once this gateway can no longer answer SIP; run_service then turns health
        NOT_SERVING and exits non-zero so the supervisor restarts it (see sip_liveness)."""
        assert self.stack is not None
        sip = self.config.sip
        loop = asyncio.get_running_loop()
        probe = None
        if sip.self_check_interval_s > 0:
            probe = await SelfProbe.open(SelfCheck(sip.self_check_interval_s, sip.self_check_answer_s,
                                                   sip.self_check_misses),
                                         sip.host, self.sip_port, self.stack.guard)
        try:
            while True:
                await asyncio.sleep(0.5)
                dead = dead_threads(self.stack.critical_threads())
                if dead:
                    return f"SIP thread(s) {', '.join(dead)} ended"
                if probe is not None:
                    probe.tick(loop.time())
                    if probe.check.failing:
                        return (f"SIP stack did not answer {probe.check.consecutive_misses} of its own OPTIONS "
                                f"in a row on port {self.sip_port}")
        finally:
            if probe is not None:
                probe.close()

    async def drain(self) -> None:
        """New INVITEs get 503 + Retry-After; return once the calls in hand have ended."""
        if self.stack is not None:
            self.stack.draining = True
        if self.webrtc is not None:
            self.webrtc.draining = True  # new browser offers get 503
        if self.calls is not None:
            log.info("draining: %d calls in progress", len(self.calls.calls))
            await self.calls.wait_idle()   # SIP and browser calls alike

    async def close(self) -> None:
        if self.calls is not None:
            for call in list(self.calls.calls.values()):
                call.hangup(CallEndReason.SHUTDOWN)
            try:
                await asyncio.wait_for(self.calls.wait_idle(), 3.0)
            except TimeoutError:
                log.warning("calls still closing at shutdown")
        if self.http is not None:
            await self.http.close()
        if self.calls is not None:
            await self.calls.channels.close()
        if self.webrtc is not None:
            await self.webrtc.close()
        if self.stack is not None:
            await asyncio.sleep(0.05)  # let the last BYEs leave the send queue
            await self.stack.stop()
