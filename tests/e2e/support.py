"""One `dialtone up` (four services + the example backend as processes) and `dialtone call` runs."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import free_port

UP_READY_S = 120.0
MEDIA, SPEECH = 1, 2   # metrics port offsets (BASE+101, BASE+102)


def free_base_port() -> int:
    """A base port whose gRPC (B+1..4), metrics (B+101..104) and example backend (B+80) ports are free."""
    for _ in range(200):
        base = random.randrange(41000, 49000, 10)
        ports = [base + i for i in (1, 2, 3, 4, 80, 101, 102, 103, 104)]
        try:
            for number in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", number))
            return base
        except OSError:
            continue
    raise RuntimeError("no free block of ports")


def free_sip_port() -> int:
    """A port free for UDP and TCP both (the media gateway listens for SIP on both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket() as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP")


def children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` -> their command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


class Stack:
    """`dialtone up` on free ports in its own folder (its SQLite session store lives there)."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.folder = folder
        self.base = free_base_port()
        self.sip_port = free_sip_port()
        self.log_path = folder / "up.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dialtone", "up", "--base-port", str(self.base), "--sip-port", str(self.sip_port),
             "--grace", "3", *(args or [])], stdout=self._log, stderr=subprocess.STDOUT, cwd=folder,
            env={**os.environ, **(env or {})})
        deadline = time.monotonic() + UP_READY_S
        while "dialtone is up" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dialtone up did not come up:\n" + self.log()[-4000:])
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def uri(self, dialog: str = "order_status") -> str:
        return f"sip:{dialog}@127.0.0.1:{self.sip_port}"

    def metric(self, service_offset: int, name: str) -> float:
        """A sample's value from a service's /metrics (offset 1 media .. 4 integration); 0 when absent."""
        url = f"http://127.0.0.1:{self.base + 100 + service_offset}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:   # noqa: S310 - loopback http
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def child(self, name: str) -> int:
        """The pid of the supervised child whose command line names ``name``."""
        for pid, cmdline in children_of(self.proc.pid).items():
            if f"dialtone {name}" in cmdline:
                return pid
        raise LookupError(f"no {name} child of dialtone up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_call(stack: Stack, *steps: str, folder: Path, name: str, timeout: float = 60.0,
               dialog: str = "order_status") -> subprocess.Popen[str]:
    """`dialtone call` in the background (to ``dialog``'s number); finish it with ``finish_call``."""
    report = folder / f"{name}.json"
    return subprocess.Popen(
        [sys.executable, "-m", "dialtone", "call", stack.uri(dialog), *steps, "--timeout", str(timeout),
         "--json", str(report)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder)


def finish_call(proc: subprocess.Popen[str], folder: Path, name: str,
                wait_s: float = 120.0) -> tuple[int, dict[str, Any], str]:
    """(exit status, the JSON report, the printed timeline) of a ``start_call``."""
    try:
        output, _ = proc.communicate(timeout=wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError("dialtone call did not finish:\n" + output) from None
    path = folder / f"{name}.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    return proc.returncode, report, output


def call(stack: Stack, *steps: str, folder: Path, name: str, timeout: float = 60.0,
         dialog: str = "order_status") -> tuple[int, dict[str, Any], str]:
    """Run `dialtone call URI STEPS...` to its end."""
    return finish_call(start_call(stack, *steps, folder=folder, name=name, timeout=timeout, dialog=dialog),
                       folder, name, timeout + 60.0)


def first_heard(report: dict[str, Any]) -> str:
    return report["heard"][0] if report.get("heard") else ""
