"""`dialtone up`: four processes to SERVING, and nothing left behind on Ctrl-C."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers import health_status

SERVING = 1


def children_of(pid: int) -> set[int]:
    """Direct children of pid, from the process table (/proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces; ppid follows it
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_block(count: int) -> int:
    """A base port such that base+1..base+count and base+101..base+100+count are free."""
    for _ in range(200):
        base = random.randrange(31000, 39000, 10)
        ports = [base + i for i in range(1, count + 1)] + [base + 100 + i for i in range(1, count + 1)]
        try:
            for p in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port block")


def test_up_brings_all_four_to_serving_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """All four services report SERVING within 30 s; SIGINT stops them all and `up` exits 0."""
    base = free_block(4)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        sip_port = s.getsockname()[1]
    log = open(tmp_path / "up.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "dialtone", "up", "--base-port", str(base),
                             "--sip-port", str(sip_port), "--grace", "5"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        addresses = [f"127.0.0.1:{base + i}" for i in range(1, 5)]
        deadline = time.monotonic() + 30
        serving: set[str] = set()
        banner = False
        while time.monotonic() < deadline and not (len(serving) == 4 and banner):
            banner = "dialtone is up" in (tmp_path / "up.log").read_text()
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            for address in addresses:
                try:
                    if health_status(address, 1.0) == SERVING:
                        serving.add(address)
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
            time.sleep(0.2)
        assert serving == set(addresses) and banner, (tmp_path / "up.log").read_text()
        # the newcomer's first run: the softphone's URL comes first in the banner, and the page answers there
        softphone = f"http://127.0.0.1:{base + 88}/"
        banner_lines = (tmp_path / "up.log").read_text().split("dialtone is up.", 1)[1].strip().splitlines()
        assert banner_lines[0].strip() == f"Talk to it in your browser: {softphone}"
        assert "softphone.js" in urllib.request.urlopen(softphone, timeout=5).read().decode()
        assert "ARCHITECTURE.md" not in (tmp_path / "up.log").read_text()
        assert (tmp_path / ".dialtone" / "sessions.sqlite3").exists()
        children = children_of(proc.pid)
        assert len(children) >= 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        leftovers = [pid for pid in children if alive(pid)]
        assert leftovers == [], (tmp_path / "up.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_up_restarts_a_child_that_dies(tmp_path: Path) -> None:
    """A service killed under `up` is reported and comes back to SERVING."""
    base = free_block(4)
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dialtone", "up", "--base-port", str(base),
                                 "--sip-port", "0", "--grace", "3"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "dialtone is up" not in log_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.2)
        runtime_address = f"127.0.0.1:{base + 3}"
        victim = next(pid for pid in children_of(proc.pid)
                      if b"conversation-runtime" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        back = False
        while time.monotonic() < deadline and not back:
            time.sleep(0.3)
            try:
                back = health_status(runtime_address, 1.0) == SERVING and not alive(victim)
            except Exception:  # noqa: BLE001 - restarting
                back = False
        assert back, log_path.read_text()
        assert "conversation-runtime exited" in log_path.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
