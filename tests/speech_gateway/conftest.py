"""Speech fixtures: one ggml model converted per test session (~78 MB, into a tmp dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ggml_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whisper.cpp model written by `dialtone models convert-ggml` from the bundled tiny.en."""
    out = tmp_path_factory.mktemp("ggml") / "tiny.en.bin"
    done = subprocess.run([sys.executable, "-m", "dialtone", "models", "convert-ggml", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "167 tensors" in done.stdout
    return out
