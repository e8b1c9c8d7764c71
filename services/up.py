"""`dialtone up`: the four services as four processes on one machine, plus the example backend.

Starts each service with the same entry point its container runs, wires their
addresses together, starts the example HTTP backend the example dialogs call (a fifth
supervised child) and points the integration gateway at the packaged example services
file, waits until all four report SERVING and the backend answers, prints where to call,
restarts a child that dies, and on Ctrl-C/SIGTERM stops them all (SIGTERM, then
SIGKILL after the grace period) so no process is left behind.

``--secure`` runs the stack the way a careful cluster does: a development CA (``dialtone.dev_ca``,
kept in .dialtone/tls/) issues each service a certificate, every gRPC hop is mutual TLS, and the
media gateway takes SIP over TLS (SIP port + 1, 5061 by default) with SRTP required. Bound beyond
loopback, the control API and the metrics endpoints get tokens (.dialtone/tokens/). What the CLI
needs to reach them is written to .dialtone/cli.yaml (``dialtone calls --config .dialtone/cli.yaml``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from dialtone.common.auth import is_loopback_host
from dialtone.common.backoff import backoff_delay
from dialtone.common.config import ConfigError, TlsConfig, load_config
from dialtone.common.logging import setup_logging
from dialtone.common.server import wait_serving
from dialtone.integration_gateway.config import EXAMPLE_SERVICES_FILE
from dialtone.media_gateway.config import MediaGatewayConfig

log = logging.getLogger("dialtone.up")

SERVICES = ("integration-gateway", "conversation-runtime", "speech-gateway", "media-gateway")
# conversation_runtime/examples
EXAMPLE_DIALOGS = ("order_status", "appointment_booking", "dtmf_menu", "pharmacy_refill")
EXAMPLE_BACKEND = "example-backend"
EXAMPLE_BACKEND_OFFSET = 80        # its HTTP port is BASE+80
EXAMPLE_BACKEND_URL_ENV = "DIALTONE_EXAMPLE_BACKEND_URL"   # base_url_env of the packaged services file
RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 10.0
SOFTPHONE_OFFSET = 88              # the browser softphone's HTTP port is BASE+88
STATE_DIR = ".dialtone"            # local state of `dialtone up` (the runtime's SQLite store), git-ignored
RUNTIME_STORE_ENV = "DIALTONE_CONVERSATION_RUNTIME__STORE__PATH"
TLS_DIR = os.path.join(STATE_DIR, "tls")        # --secure: the development CA and every certificate
TOKENS_DIR = os.path.join(STATE_DIR, "tokens")  # beyond loopback: the control and metrics tokens
CLI_CONFIG = os.path.join(STATE_DIR, "cli.yaml")  # what `dialtone calls/backend call --config` need
CLI_IDENTITY = "cli"                            # the certificate `up` itself and the CLI present


def _prefix(service: str) -> str:
    return "DIALTONE_" + service.upper().replace("-", "_") + "__"


@dataclasses.dataclass
class Layout:
    """Ports of one `dialtone up` instance."""

    host: str
    base_port: int
    sip_port: int
    secure: bool = False

    @property
    def sip_tls_port(self) -> int:
        return self.sip_port + 1

    def grpc_port(self, service: str) -> int:
        return self.base_port + 1 + SERVICES[::-1].index(service)  # media +1, speech +2, runtime +3, integration +4

    def metrics_port(self, service: str) -> int:
        return self.base_port + 101 + SERVICES[::-1].index(service)

    def address(self, service: str) -> str:
        return f"{self.host}:{self.grpc_port(service)}"

    @property
    def example_backend_port(self) -> int:
        return self.base_port + EXAMPLE_BACKEND_OFFSET

    @property
    def example_backend_url(self) -> str:
        return f"http://{self.host}:{self.example_backend_port}"

    def env(self, service: str, extra_env: dict[str, str]) -> dict[str, str]:
        prefix = "DIALTONE_" + service.upper().replace("-", "_") + "__"
        env = dict(os.environ)
        env.update(extra_env)
        env[prefix + "GRPC__HOST"] = self.host
        env[prefix + "GRPC__PORT"] = str(self.grpc_port(service))
        env[prefix + "METRICS__HOST"] = self.host
        env[prefix + "METRICS__PORT"] = str(self.metrics_port(service))
        wiring = {
            "media-gateway": {"SPEECH_GATEWAY_ADDRESS": self.address("speech-gateway"),
                              "SIP__PORT": str(self.sip_port)},
            "speech-gateway": {"RUNTIME_ADDRESS": self.address("conversation-runtime")},
            "conversation-runtime": {"INTEGRATION_ADDRESS": self.address("integration-gateway")},
            # the packaged example services file; its base URL comes from EXAMPLE_BACKEND_URL_ENV
            "integration-gateway": {"SERVICES_FILE": str(EXAMPLE_SERVICES_FILE)},
        }[service]
        for key, value in wiring.items():
            env.setdefault(prefix + key, value)
        env.setdefault(EXAMPLE_BACKEND_URL_ENV, self.example_backend_url)
        return env

    def example_backend_argv(self) -> list[str]:
        return [sys.executable, "-m", "dialtone", EXAMPLE_BACKEND, "--host", self.host,
                "--port", str(self.example_backend_port)]


class Child:
    def __init__(self, service: str, argv: list[str], env: dict[str, str]) -> None:
        self.service = service
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        log.info("started %s (pid %d)", self.service, self.process.pid)

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("up", help="run all four services on this machine")
    parser.add_argument("--host", default="127.0.0.1", help="address every service binds (default 127.0.0.1)")
    parser.add_argument("--base-port", type=int, default=7000,
                        help="gRPC ports are BASE+1..BASE+4, metrics BASE+101..BASE+104 (default 7000)")
    parser.add_argument("--sip-port", type=int, default=5060, help="SIP port of the media gateway (default 5060)")
    parser.add_argument("--config-dir", default=None,
                        help="folder with <service>.yaml files (optional; embedded defaults otherwise)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to let services drain on stop")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument("--no-example-backend", action="store_true",
                        help="do not start the example HTTP backend (BASE+80) of the example dialogs")
    parser.add_argument("--no-softphone", action="store_true",
                        help="do not serve the browser softphone (on by default on loopback, http://HOST:BASE+88/)")
    parser.add_argument("--log-format", choices=("auto", "text", "json"), default="auto",
                        help="services' log lines: text on a terminal, JSON otherwise (auto, the default)")
    parser.add_argument("--secure", action="store_true",
                        help="mutual TLS between the services and SIP over TLS (SIP port + 1) with SRTP required, "
                             f"certificates from a development CA in {TLS_DIR}/")
    parser.set_defaults(func=_run)


def _argv(service: str, config_dir: str | None) -> list[str]:
    argv = [sys.executable, "-m", "dialtone", service]
    if config_dir:
        path = os.path.join(config_dir, service.replace("-", "_") + ".yaml")
        if os.path.exists(path):
            argv += ["--config", path]
    return argv


def _run(args: argparse.Namespace) -> int:
    setup_logging("up", "INFO", "text")
    layout = Layout(args.host, args.base_port, args.sip_port, secure=args.secure)
    extra: dict[str, str] = {}
    for service in SERVICES:
        prefix = "DIALTONE_" + service.upper().replace("-", "_") + "__"
        extra[prefix + "SHUTDOWN_GRACE_S"] = str(args.grace)
        if args.log_format != "auto" or "--config" not in _argv(service, args.config_dir):
            # a person at a terminal reads text; a file or a collector gets JSON lines
            log_format = args.log_format if args.log_format != "auto" else ("text" if sys.stderr.isatty() else "json")
            extra[prefix + "LOG__FORMAT"] = os.environ.get(prefix + "LOG__FORMAT", log_format)
    media_argv = _argv("media-gateway", args.config_dir)
    if "--config" not in media_argv:
        extra.update(_out_of_the_box(layout, softphone=not args.no_softphone))
    if "--config" not in _argv("conversation-runtime", args.config_dir) and RUNTIME_STORE_ENV not in os.environ:
        # local state in one ignored folder, not loose files in the checkout
        os.makedirs(STATE_DIR, exist_ok=True)
        extra[RUNTIME_STORE_ENV] = os.path.join(STATE_DIR, "sessions.sqlite3")
    client_tls = None
    cli: dict[str, object] = {}
    if args.secure:
        client_tls = _secure(layout, extra)
        cli["tls"] = {"cert_file": client_tls.cert_file, "key_file": client_tls.key_file, "ca_file": client_tls.ca_file}
    if not is_loopback_host(layout.host):
        cli["control"] = {"token_file": _tokens(extra)}
    if cli:
        os.makedirs(STATE_DIR, exist_ok=True)
        Path(CLI_CONFIG).write_text(yaml.safe_dump(cli, sort_keys=False), encoding="utf-8")
    children = [Child(s, _argv(s, args.config_dir), layout.env(s, extra)) for s in SERVICES]
    if not args.no_example_backend:
        children.insert(0, Child(EXAMPLE_BACKEND, layout.example_backend_argv(), dict(os.environ)))
    try:
        webrtc_url = _webrtc_page_url(args.config_dir, layout, extra)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return asyncio.run(_supervise(children, layout, args, webrtc_url, client_tls))


def _secure(layout: Layout, extra: dict[str, str]) -> TlsConfig:
    """Certificates from the development CA for each service and the CLI; every service's ``tls``
    section, and the media gateway's SIP TLS with SRTP required, go into ``extra`` (the environment
    still wins). Returns the TLS config `up` and the CLI use as a client."""
    from dialtone.dev_ca import ensure_ca

    folder = Path(TLS_DIR).resolve()
    ca = ensure_ca(folder)
    hosts = [layout.host, "127.0.0.1", "::1", "localhost"]
    wanted: dict[str, str] = {}
    for service in SERVICES:
        issued = ca.issue(folder, service, [*hosts, service])
        prefix = _prefix(service)
        wanted.update({prefix + "TLS__CERT_FILE": str(issued.cert_file), prefix + "TLS__KEY_FILE": str(issued.key_file),
                       prefix + "TLS__CA_FILE": str(ca.cert_file)})
        if service == "media-gateway":   # the trunk side: the same certificate on SIP over TLS
            wanted.update({prefix + "SIP__TLS_CERT_FILE": str(issued.cert_file),
                           prefix + "SIP__TLS_KEY_FILE": str(issued.key_file),
                           prefix + "SIP__TLS_CA_FILE": str(ca.cert_file),
                           prefix + "SIP__TLS_PORT": str(layout.sip_tls_port),
                           prefix + "SIP__SRTP": "required"})
    for key, value in wanted.items():
        if key not in os.environ:
            extra[key] = value
    cli = ca.issue(folder, CLI_IDENTITY, [CLI_IDENTITY])
    return TlsConfig(cert_file=str(cli.cert_file), key_file=str(cli.key_file), ca_file=str(ca.cert_file))


def _tokens(extra: dict[str, str]) -> str:
    """Tokens for the control API and the metrics endpoints, which refuse to bind beyond loopback
    without one: kept in .dialtone/tokens/ across runs. Returns the control token's file."""
    folder = Path(TOKENS_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    files = {}
    for name in ("control", "metrics"):
        path = folder / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        files[name] = str(path)
    wanted = {"DIALTONE_MEDIA_GATEWAY__CONTROL__TOKEN_FILE": files["control"]}
    for service in SERVICES:
        wanted[_prefix(service) + "METRICS__TOKEN_FILE"] = files["metrics"]
    for key, value in wanted.items():
        if key not in os.environ and key.removesuffix("_FILE") not in os.environ:
            extra[key] = value
    return files["control"]


def _out_of_the_box(layout: Layout, softphone: bool) -> dict[str, str]:
    """Media gateway settings for a first run without config files (the environment still wins):
    dialing a packaged example's name reaches that example, and the browser softphone is served
    on loopback, the quickest way to hear the platform."""
    extra: dict[str, str] = {}
    prefix = "DIALTONE_MEDIA_GATEWAY__"
    wanted = {"ROUTING__BY_CALLEE": "{" + ", ".join(f"{name}: {name}" for name in EXAMPLE_DIALOGS) + "}"}
    if softphone and layout.host in ("127.0.0.1", "localhost", "::1"):   # beyond loopback it needs an access key
        wanted.update({"WEBRTC__ENABLED": "true", "WEBRTC__HOST": layout.host,
                       "WEBRTC__PORT": str(layout.base_port + SOFTPHONE_OFFSET),
                       "WEBRTC__DIALOGS": "[" + ", ".join(EXAMPLE_DIALOGS) + "]"})
        wanted["WEBRTC__ICE_HOST_ADDRESSES"] = '["127.0.0.1"]'   # one machine: media stays on loopback
    for key, value in wanted.items():
        if prefix + key not in os.environ:
            extra[prefix + key] = value
    return extra


def _webrtc_page_url(config_dir: str | None, layout: Layout, extra: dict[str, str] | None = None) -> str:
    """The browser page's URL when the media gateway's ``webrtc`` section is enabled, else ""."""
    argv = _argv("media-gateway", config_dir)
    path = argv[argv.index("--config") + 1] if "--config" in argv else None
    config = load_config(MediaGatewayConfig, path, service="media-gateway",
                         environ=layout.env("media-gateway", extra or {}))
    if not config.webrtc.enabled:
        return ""
    return f"http://{config.webrtc.host}:{config.webrtc.port}/"


async def _ready(child: Child, layout: Layout, timeout: float, tls: TlsConfig | None) -> bool:
    if child.service == EXAMPLE_BACKEND:
        return await _http_ready(layout.host, layout.example_backend_port, timeout)
    return await wait_serving(layout.address(child.service), timeout, tls)


async def _http_ready(host: str, port: int, timeout: float) -> bool:
    """True once GET /health answers 200 (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
            writer.write(f"GET /health HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            status = await asyncio.wait_for(reader.readline(), 1.0)
            writer.close()
            if b" 200 " in status:
                return True
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    return False


async def _supervise(children: list[Child], layout: Layout, args: argparse.Namespace, webrtc_url: str,
                     client_tls: TlsConfig | None = None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for child in children:
            child.start()
        # restart a child that dies while the others are still starting, too (a port taken
        # for a moment by another process must not leave the stack half up)
        watcher = asyncio.create_task(_restart_dead(children, stop))
        readiness = asyncio.gather(*(_ready(c, layout, args.ready_timeout, client_tls) for c in children))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({readiness, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            readiness.cancel()
            watcher.cancel()
            await asyncio.gather(readiness, watcher, return_exceptions=True)
            return 0
        stopped.cancel()
        ready = readiness.result()
        if not all(ready):
            watcher.cancel()
            missing = [c.service for c, ok in zip(children, ready, strict=True) if not ok]
            log.error("not SERVING after %.0f s: %s", args.ready_timeout, ", ".join(missing))
            return 1
        _print_banner(layout, webrtc_url, any(c.service == EXAMPLE_BACKEND for c in children))
        await watcher
        return 0
    finally:
        _stop_all(children, args.grace)


async def _restart_dead(children: list[Child], stop: asyncio.Event) -> None:
    """Until ``stop``: a child that exited is reported and started again after a backoff."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for child in children:
            code = child.poll()
            if code is not None:
                delay = backoff_delay(child.restarts + 1, RESTART_INITIAL_S, RESTART_MAX_S)
                log.error("%s exited with code %s; restarting in %.1f s", child.service, code, delay)
                child.restarts += 1
                child.process = None
                loop.call_later(delay, _restart_unless_stopping, child, stop)
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.5)
        except TimeoutError:
            pass


def _restart_unless_stopping(child: Child, stop: asyncio.Event) -> None:
    if not stop.is_set() and child.process is None:
        child.start()


def _stop_all(children: list[Child], grace: float) -> None:
    log.info("stopping all services")
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace + 2.0
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.service)
            child.kill()
            child.process.wait()


def _print_banner(layout: Layout, webrtc_url: str, example_backend: bool) -> None:
    if layout.secure:
        sips = f"sips:order_status@{layout.host}:{layout.sip_tls_port}"
        call_lines = [
            f"  Call it:   {sips}   (SIP over TLS with SRTP required; the softphone trusts "
            f"{os.path.join(TLS_DIR, 'ca.crt')})",
            f"  mTLS:      every gRPC hop; the CLI: dialtone calls --config {CLI_CONFIG} list",
        ]
        dial = f"sips:<dialog>@{layout.host}:{layout.sip_tls_port}"
    else:
        sip = f"sip:order_status@{layout.host}:{layout.sip_port}"
        call_lines = [f"  Call it:   {sip}   (any softphone, or: dialtone call {sip} "
                      "--say \"one two three four five\")"]
        dial = f"sip:<dialog>@{layout.host}:{layout.sip_port}"
    lines = [
        "",
        "dialtone is up.",
        *([f"  Talk to it in your browser: {webrtc_url}"] if webrtc_url else []),
        *call_lines,
        f"  Dialogs:   {', '.join(EXAMPLE_DIALOGS)} (dial {dial})",
        "  Services:  " + ", ".join(f"{s} {layout.address(s)}" for s in SERVICES[::-1]),
        *([f"  Backend:   {layout.example_backend_url} (example backend)"] if example_backend else []),
        "  Metrics:   " + ", ".join(f"http://{layout.host}:{layout.metrics_port(s)}/metrics"
                                    for s in SERVICES[::-1]),
        *([f"  Tokens:    {TOKENS_DIR}/ (control API, metrics: Authorization: Bearer)"]
          if not is_loopback_host(layout.host) else []),
        "  Architecture: docs/architecture.md; stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)
