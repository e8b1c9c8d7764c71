"""`dialtone up`: the four services as four processes on one machine.

Starts each service with the same entry point its container runs, wires their
addresses together, waits until all four report SERVING, prints where to call,
restarts a child that dies, and on Ctrl-C/SIGTERM stops them all (SIGTERM, then
SIGKILL after the grace period) so no process is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time

from dialtone.common.logging import setup_logging
from dialtone.common.server import wait_serving

log = logging.getLogger("dialtone.up")

SERVICES = ("integration-gateway", "conversation-runtime", "speech-gateway", "media-gateway")
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclasses.dataclass
class Layout:
    """Ports of one `dialtone up` instance."""

    host: str
    base_port: int
    sip_port: int

    def grpc_port(self, service: str) -> int:
        return self.base_port + 1 + SERVICES[::-1].index(service)  # media +1, speech +2, runtime +3, integration +4

    def metrics_port(self, service: str) -> int:
        return self.base_port + 101 + SERVICES[::-1].index(service)

    def address(self, service: str) -> str:
        return f"{self.host}:{self.grpc_port(service)}"

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
            "integration-gateway": {},
        }[service]
        for key, value in wiring.items():
            env.setdefault(prefix + key, value)
        return env


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
    layout = Layout(args.host, args.base_port, args.sip_port)
    extra = {}
    for service in SERVICES:
        prefix = "DIALTONE_" + service.upper().replace("-", "_") + "__"
        extra[prefix + "SHUTDOWN_GRACE_S"] = str(args.grace)
    children = [Child(s, _argv(s, args.config_dir), layout.env(s, extra)) for s in SERVICES]
    return asyncio.run(_supervise(children, layout, args))


async def _supervise(children: list[Child], layout: Layout, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for child in children:
            child.start()
        ready = await asyncio.gather(*(wait_serving(layout.address(c.service), args.ready_timeout)
                                       for c in children))
        if stop.is_set():
            return 0
        if not all(ready):
            missing = [c.service for c, ok in zip(children, ready, strict=True) if not ok]
            log.error("not SERVING after %.0f s: %s", args.ready_timeout, ", ".join(missing))
            return 1
        _print_banner(layout)
        while not stop.is_set():
            for child in children:
                code = child.poll()
                if code is not None:
                    delay = RESTART_BACKOFF_S[min(child.restarts, len(RESTART_BACKOFF_S) - 1)]
                    log.error("%s exited with code %s; restarting in %.1f s", child.service, code, delay)
                    child.restarts += 1
                    child.process = None
                    loop.call_later(delay, _restart_unless_stopping, child, stop)
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            except TimeoutError:
                pass
        return 0
    finally:
        _stop_all(children, args.grace)


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


def _print_banner(layout: Layout) -> None:
    lines = [
        "",
        "dialtone is up.",
        f"  Call it:   sip:order_status@{layout.host}:{layout.sip_port}   (dialtone call, or any softphone)",
        "  Services:  " + ", ".join(f"{s} {layout.address(s)}" for s in SERVICES[::-1]),
        "  Metrics:   " + ", ".join(f"http://{layout.host}:{layout.metrics_port(s)}/metrics"
                                    for s in SERVICES[::-1]),
        "  Architecture: docs in ARCHITECTURE.md (shared/); stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)
