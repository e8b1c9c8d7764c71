from __future__ import annotations

import dataclasses
from typing import Literal

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig, TokenConfig
from dialtone.media_gateway.webrtc.config import WebRtcConfig


@dataclasses.dataclass
class SipConfig:
    host: str = "127.0.0.1"
    port: int = 5060                      # 0 = any free port (logged, and on the app object)
    advertised_host: str = ""             # address put in Contact/SDP when behind NAT; "" = host
    advertised_port: int = 0              # SIP port in Contact/Via (UDP, TCP) when NAT maps it (NodePort); 0 = port
    # host:port of a STUN server: with advertised_host empty, our public address is asked of it at start
    # (a node behind 1:1 NAT; stun_address.py)
    advertised_host_stun: str = ""
    codecs: list[str] = dataclasses.field(default_factory=lambda: ["PCMU", "PCMA", "opus"])  # preference order
    ring_ms: int = 0                      # time between 180 Ringing and 200 OK; 0: no 180
    allowed_networks: list[str] = dataclasses.field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    flood_rate_per_s: float = 2000.0      # datagrams per second per source, sustained (a trunk is one source)
    flood_burst: int = 4000
    max_datagram_bytes: int = 60000
    retry_after_s: int = 30               # Retry-After on the 503 sent while draining
    transfer_timeout_s: float = 30.0      # how long to wait for the REFER's final NOTIFY
    ring_timeout_s: float = 60.0          # outbound calls not answered by then are cancelled
    min_session_expires_s: int = 90      # RFC 4028 Min-SE: shorter Session-Expires get 422
    # SIP over TCP: connections in all and per source address, time for one message to arrive whole,
    # and how long a connection may go without a complete message.
    tcp_max_connections: int = 512
    tcp_max_per_source: int = 32
    tcp_message_deadline_s: float = 10.0
    tcp_idle_timeout_s: float = 300.0
    # SIP over TLS (RFC 3261 §26; sips: and transport=tls), on when a certificate is given. Files are
    # reloaded when they change. With tls_verify_client, peers must present a certificate from tls_ca_file.
    tls_port: int = 5061                  # 0 = any free port
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    tls_verify_client: bool = False
    # SRTP with SDES keys (RFC 4568) on RTP calls: off, optional (when the peer offers it) or required
    # (a plain offer gets 488). Keys are only taken from INVITEs that came over TLS.
    srtp: Literal["off", "optional", "required"] = "off"
    # Digest authentication of new calls (RFC 3261 §22; SHA-512-256, SHA-256 and MD5, RFC 8760),
    # on when a credentials file (user:password lines) is given. Sources in auth_exempt_networks (a
    # trunk known by its address) need none; the allow-list above applies to all. Replicas that share
    # auth_nonce_secret_file accept each other's challenges.
    auth_users_file: str = ""
    auth_realm: str = "dialtone"
    auth_exempt_networks: list[str] = dataclasses.field(default_factory=list)
    auth_nonce_secret_file: str = ""
    auth_algorithms: list[str] = dataclasses.field(default_factory=lambda: ["SHA-256", "MD5"])  # offered in order
    # Liveness: an OPTIONS to ourselves every interval; `self_check_misses` unanswered in a row (each
    # given `self_check_answer_s`) turn health NOT_SERVING and exit the process for a restart. 0 = off.
    self_check_interval_s: float = 1.5
    self_check_answer_s: float = 2.5
    self_check_misses: int = 3


@dataclasses.dataclass
class RegistrationConfig:
    """Register to a PBX as an extension (many PBXes route to a bot that way). Empty registrar: off."""

    registrar: str = ""                   # sip:pbx.example.com[:port]; sips:... registers over TLS
    user: str = ""                        # extension / auth user
    password: str = ""                    # digest password (use DIALTONE_MEDIA_GATEWAY__REGISTRATION__PASSWORD)
    expires_s: int = 300


@dataclasses.dataclass
class RtpConfig:
    host: str = "127.0.0.1"               # bind address of RTP sockets
    port_low: int = 20000
    port_high: int = 30000


@dataclasses.dataclass
class RoutingConfig:
    default_dialog: str = ""              # dialog for calls no rule matches ("" = the runtime decides)
    by_callee: dict[str, str] = dataclasses.field(default_factory=dict)   # dialed user -> dialog


@dataclasses.dataclass
class ControlHttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0                         # 0 = any free port (logged)


@dataclasses.dataclass
class MediaGatewayConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7001))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9101))
    # A headless Service name (dns:///name:port) or comma-separated replica IPs: each call's stream goes to
    # the next replica (round_robin), a broken one resumes on another.
    speech_gateway_address: str = "127.0.0.1:7002"
    speech_connect_timeout_s: float = 10.0            # no speech gateway reachable by then: hang up
    sip: SipConfig = dataclasses.field(default_factory=SipConfig)
    rtp: RtpConfig = dataclasses.field(default_factory=RtpConfig)
    registration: RegistrationConfig = dataclasses.field(default_factory=RegistrationConfig)
    routing: RoutingConfig = dataclasses.field(default_factory=RoutingConfig)
    control_http: ControlHttpConfig = dataclasses.field(default_factory=ControlHttpConfig)
    # The bearer token of the control APIs (gRPC MediaGatewayControl and control_http), required when
    # either binds beyond loopback: DIALTONE_MEDIA_GATEWAY__CONTROL__TOKEN or control.token_file.
    control: TokenConfig = dataclasses.field(default_factory=TokenConfig)
    webrtc: WebRtcConfig = dataclasses.field(default_factory=WebRtcConfig)
