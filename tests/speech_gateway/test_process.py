"""`dialtone speech-gateway` as a process: loads its models and reports SERVING, exposes
its metrics, drains on SIGTERM, and refuses a missing model with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def test_service_loads_models_serves_metrics_and_stops_cleanly(start_service, port):
    proc = start_service("speech-gateway", env={"DIALTONE_SPEECH_GATEWAY__RUNTIME_ADDRESS": f"127.0.0.1:{port}"},
                         timeout=60)
    loaded = [e for e in proc.log_events() if "speech engines loaded" in e.get("msg", "")]
    assert loaded and "faster_whisper" in loaded[0]["msg"] and "piper" in loaded[0]["msg"]
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert "dialtone_speech_active_calls" in text
    assert proc.stop() == 0


def test_missing_model_is_refused_at_start_with_the_fix(tmp_path):
    env = dict(os.environ)
    env["DIALTONE_SPEECH_GATEWAY__ASR__ENGINE"] = "whispercpp"
    env["DIALTONE_SPEECH_GATEWAY__ASR__GGML_MODEL"] = str(tmp_path / "missing.bin")
    env["DIALTONE_SPEECH_GATEWAY__GRPC__PORT"] = "0"
    env["DIALTONE_SPEECH_GATEWAY__METRICS__ENABLED"] = "false"
    done = subprocess.run([sys.executable, "-m", "dialtone", "speech-gateway"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "missing.bin" in done.stderr and "dialtone models convert-ggml" in done.stderr
