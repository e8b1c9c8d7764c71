"""The integration gateway's config: the process (gRPC, store, logging) and the named
backend services it may call.

Services come from the gateway's own YAML under ``services:`` and, when
``services_file`` is set, from that file's ``services:`` mapping too (``dialtone up``
points it at the packaged example). Both are read with the one common loader, so a
wrong key or type is refused at start with file, line and key.

Secrets (API keys, OAuth2 client secrets) are never written in the YAML: a
``SecretRef`` names an environment variable or a file that holds the value.

A service reaches only its base URL (and its OAuth2 token URL), and never a loopback, link-local
or metadata address unless its ``allow_networks`` lists it (``addresses``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dialtone.common.config import (
    ConfigError,
    GrpcServerConfig,
    MetricsConfig,
    ServiceConfig,
    load_config,
)
from dialtone.common.limits import header_value_ok
from dialtone.common.redis_client import RedisHaConfig
from dialtone.integration_gateway.addresses import AddressPolicy, AddressRefused, parse_networks

EXAMPLE_SERVICES_FILE = Path(__file__).resolve().parent / "examples" / "services.yaml"
_HTTP_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # RFC 9110 section 5.6.2


@dataclasses.dataclass
class SecretRef:
    """Where a secret lives: an environment variable or a file (first line, stripped)."""

    env: str = ""
    file: str = ""

    def resolve(self, what: str) -> str:
        if self.env:
            value = os.environ.get(self.env, "")
            if not value:
                raise ConfigError(f"{what}: environment variable {self.env} is not set or empty")
            return value
        if self.file:
            try:
                value = Path(self.file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{what}: cannot read secret file {self.file}: {exc.strerror}") from exc
            if not value:
                raise ConfigError(f"{what}: secret file {self.file} is empty")
            return value
        raise ConfigError(f"{what}: give 'env' (an environment variable) or 'file' (a path) for the secret")


@dataclasses.dataclass
class TimeoutsConfig:
    connect_s: float = 2.0
    read_s: float = 5.0
    total_s: float = 10.0  # the whole Invoke, retries included, unless the request sets timeout_ms


@dataclasses.dataclass
class RetryConfig:
    max_attempts: int = 3
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    max_retry_after_s: float = 30.0  # a Retry-After longer than this (or the deadline) is not waited for


@dataclasses.dataclass
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    reset_timeout_s: float = 30.0  # open -> half-open after this long


@dataclasses.dataclass
class RateLimitConfig:
    rate_per_s: float = 0.0  # 0 = unlimited
    burst: int = 0  # bucket size; 0 = max(1, rate_per_s)


@dataclasses.dataclass
class ApiKeyAuth:
    secret: SecretRef = dataclasses.field(default_factory=SecretRef)
    header: str = ""  # e.g. X-Api-Key
    query: str = ""  # e.g. api_key (one of header / query)
    prefix: str = ""  # e.g. "Bearer "


@dataclasses.dataclass
class OAuth2Auth:
    token_url: str = ""
    client_id: str = ""
    client_secret: SecretRef = dataclasses.field(default_factory=SecretRef)
    scope: str = ""
    client_auth: Literal["body", "basic"] = "body"  # credentials in the form body, or HTTP Basic (RFC 6749 2.3.1)
    refresh_margin_s: float = 30.0  # refresh this long before the token expires


@dataclasses.dataclass
class AuthConfig:
    kind: Literal["none", "api_key", "oauth2"] = "none"
    api_key: ApiKeyAuth = dataclasses.field(default_factory=ApiKeyAuth)
    oauth2: OAuth2Auth = dataclasses.field(default_factory=OAuth2Auth)


@dataclasses.dataclass
class TlsConfig:
    ca_bundle: str = ""  # PEM file of CAs to trust instead of the system store
    client_cert: str = ""  # PEM client certificate (mutual TLS)
    client_key: str = ""  # its private key (may be in client_cert's file)
    verify: bool = True


@dataclasses.dataclass
class MethodConfig:
    verb: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = "/"  # template: "/orders/{order_id}" is filled from the payload
    query: list[str] = dataclasses.field(default_factory=list)  # payload keys sent as query parameters
    body: Literal["auto", "payload", "none"] = "auto"  # auto: the rest of the payload, for non-GET verbs
    rate_limit: RateLimitConfig = dataclasses.field(default_factory=RateLimitConfig)


@dataclasses.dataclass
class BackendServiceConfig:
    base_url: str = ""
    base_url_env: str = ""  # an environment variable that, when set, replaces base_url
    http2: bool = False
    timeouts: TimeoutsConfig = dataclasses.field(default_factory=TimeoutsConfig)
    retry: RetryConfig = dataclasses.field(default_factory=RetryConfig)
    breaker: BreakerConfig = dataclasses.field(default_factory=BreakerConfig)
    rate_limit: RateLimitConfig = dataclasses.field(default_factory=RateLimitConfig)
    auth: AuthConfig = dataclasses.field(default_factory=AuthConfig)
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # fixed extra headers
    redact_fields: list[str] = dataclasses.field(default_factory=list)  # payload/body keys masked in logs
    methods: dict[str, MethodConfig] = dataclasses.field(default_factory=dict)
    # Loopback, link-local and metadata addresses are refused unless listed here (CIDRs), e.g.
    # ["127.0.0.0/8", "::1/128"] for a backend on this machine.
    allow_networks: list[str] = dataclasses.field(default_factory=list)

    def effective_base_url(self) -> str:
        if self.base_url_env and os.environ.get(self.base_url_env):
            return os.environ[self.base_url_env]
        return self.base_url


@dataclasses.dataclass
class StoreConfig(RedisHaConfig):
    """Where breaker, rate-limit and idempotency state lives: in this process or in Redis (shared);
    ``sentinel`` or ``cluster`` for a Redis that survives a server's loss (dialtone.common.redis_client)."""

    kind: Literal["memory", "redis"] = "memory"
    redis_url: str = ""
    key_prefix: str = "dialtone:ig:"
    idempotency_ttl_s: float = 86400.0
    pending_ttl_s: float = 60.0  # a claim whose owner died is taken over after this long


@dataclasses.dataclass
class ServicesFile:
    """The schema of a ``services_file``."""

    services: dict[str, BackendServiceConfig] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class IntegrationGrpcConfig(GrpcServerConfig):
    """Defaults of the class (a config setting only some keys of the section keeps the others)."""

    port: int = 7004
    # An ActionRequest holds at most max_payload_bytes of payload and short names and keys: a larger
    # message is refused by gRPC before it is read (1 MB keys grew native memory without bound).
    max_message_bytes: int = 256 * 1024


@dataclasses.dataclass
class IntegrationGatewayConfig(ServiceConfig):
    grpc: IntegrationGrpcConfig = dataclasses.field(default_factory=IntegrationGrpcConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9104))
    services_file: str = ""  # YAML with a `services:` mapping, merged with `services` below
    services: dict[str, BackendServiceConfig] = dataclasses.field(default_factory=dict)
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    redact_fields: list[str] = dataclasses.field(default_factory=list)  # masked in every service's logs
    max_payload_bytes: int = 64 * 1024


def load_services(config: IntegrationGatewayConfig) -> dict[str, BackendServiceConfig]:
    """All configured services, checked. Raises ConfigError with the place and reason."""
    services: dict[str, BackendServiceConfig] = {}
    if config.services_file:
        # No environment overrides here: the gateway's own env prefix already reaches `services`.
        loaded = load_config(ServicesFile, config.services_file, service="integration-services-file",
                             environ={})
        services.update(loaded.services)
    for name, service in config.services.items():
        services[name] = service
    for name, service in services.items():
        check_service(name, service)
    return services


def address_policy(name: str, service: BackendServiceConfig) -> AddressPolicy:
    """The addresses ``service`` may reach; ConfigError for an allow_networks entry that is no network."""
    try:
        return AddressPolicy(name, parse_networks(service.allow_networks, f"services.{name}.allow_networks"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_service(name: str, service: BackendServiceConfig) -> None:
    where = f"services.{name}"
    url = service.effective_base_url()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}.base_url: expected an http:// or https:// URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}.base_url: must not carry a query or fragment, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{where}.base_url: credentials do not belong in the URL (use auth), got a user@ part")
    policy = address_policy(name, service)
    try:
        policy.check_literal(parts.hostname)
    except AddressRefused as exc:
        raise ConfigError(f"{where}.base_url: {exc}") from None
    if service.timeouts.total_s <= 0 or service.timeouts.connect_s <= 0 or service.timeouts.read_s <= 0:
        raise ConfigError(f"{where}.timeouts: every timeout must be > 0")
    if service.retry.max_attempts < 1:
        raise ConfigError(f"{where}.retry.max_attempts: must be >= 1")
    if service.breaker.failure_threshold < 1:
        raise ConfigError(f"{where}.breaker.failure_threshold: must be >= 1")
    auth = service.auth
    if auth.kind == "api_key" and bool(auth.api_key.header) == bool(auth.api_key.query):
        raise ConfigError(f"{where}.auth.api_key: give exactly one of 'header' or 'query'")
    if auth.kind == "oauth2":
        token = urlsplit(auth.oauth2.token_url)
        if token.scheme not in ("http", "https") or not token.hostname or not auth.oauth2.client_id:
            raise ConfigError(f"{where}.auth.oauth2: 'token_url' (http/https) and 'client_id' are required")
        try:
            policy.check_literal(token.hostname)
        except AddressRefused as exc:
            raise ConfigError(f"{where}.auth.oauth2.token_url: {exc}") from None
    if bool(service.tls.client_cert) != bool(service.tls.client_key) and not service.tls.client_cert:
        raise ConfigError(f"{where}.tls: 'client_key' needs 'client_cert'")
    for header, value in service.headers.items():
        if not (_HTTP_TOKEN.fullmatch(header) and value.isascii() and header_value_ok(value)):
            raise ConfigError(f"{where}.headers.{header}: a header name is a token and its value ASCII "
                              "without control characters")
    if not service.methods:
        raise ConfigError(f"{where}.methods: at least one method is required")
    for method_name, method in service.methods.items():
        if not method.path.startswith("/"):
            raise ConfigError(f"{where}.methods.{method_name}.path: must start with '/', got {method.path!r}")
