"""baresip (Debian baresip-core) as a headless softphone: it dials, speaks a WAV file (aufile) and
dumps what it hears to WAV (sndfile); no sound card, no terminal."""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import free_port

MODULES = "/usr/lib/baresip/modules"


def baresip_call(folder: Path, uri: str, speech_wav: Path, timeout: float = 60.0) -> tuple[Path, str]:
    """Dial ``uri`` with baresip playing ``speech_wav``; returns (WAV of what it heard, its log)."""
    binary = shutil.which("baresip")
    assert binary is not None, "baresip is not installed (Debian baresip-core; scripts/system-deps.sh test)"
    conf = folder / "baresip"
    dump = folder / "dump"
    conf.mkdir()
    dump.mkdir()
    port = free_port(socket.SOCK_DGRAM)
    (conf / "config").write_text("\n".join([
        "poll_method epoll", f"sip_listen 127.0.0.1:{port}", "net_interface 127.0.0.1",
        f"module_path {MODULES}", "module g711.so", "module aufile.so", "module sndfile.so",
        "module_app account.so", "module_app menu.so",
        f"audio_source aufile,{speech_wav}", "audio_alert aufile,/dev/null", f"snd_path {dump}", ""]))
    (conf / "accounts").write_text(f"<sip:tester@127.0.0.1:{port};transport=udp>;regint=0\n")
    log_path = folder / "baresip.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "-f", str(conf), "-e", f"/dial {uri}", "-t", str(int(timeout))],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder)
        try:
            deadline = time.monotonic() + timeout + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if "terminated" in log_path.read_text(errors="replace"):
                    break   # the call is over (the dialog hung up); no need to wait for -t
                time.sleep(0.2)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    heard = sorted(glob.glob(str(dump / "*-dec.wav")))
    assert heard, "baresip wrote no dump of what it heard:\n" + text[-3000:]
    return Path(heard[-1]), text
