"""Speech fixtures: one ggml model converted per test session (~78 MB, into a tmp dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio


@pytest.fixture(scope="session")
def ggml_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whisper.cpp model written by `dialtone models convert-ggml` from the bundled tiny.en."""
    out = tmp_path_factory.mktemp("ggml") / "tiny.en.bin"
    done = subprocess.run([sys.executable, "-m", "dialtone", "models", "convert-ggml", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "167 tensors" in done.stdout
    return out


@pytest.fixture(scope="session")
def engines():
    """The default engines (faster-whisper tiny.en, piper joe), loaded once for the session."""
    from dialtone.speech_gateway.config import SpeechGatewayConfig
    from dialtone.speech_gateway.service import Engines

    loaded = Engines.load(SpeechGatewayConfig())
    yield loaded
    loaded.shutdown()


@pytest_asyncio.fixture
async def gateway(engines):
    """Start in-process speech gateways (real gRPC servers on free ports) against a runtime address."""
    from dialtone.common.config import GrpcServerConfig, MetricsConfig
    from dialtone.common.server import create_server
    from dialtone.speech_gateway.config import SpeechGatewayConfig
    from dialtone.speech_gateway.service import SpeechGatewayApp

    running = []

    async def start(runtime_address: str, **overrides) -> str:
        config = SpeechGatewayConfig(runtime_address=runtime_address, grpc=GrpcServerConfig(port=0),
                                     metrics=MetricsConfig(enabled=False), **overrides)
        app = SpeechGatewayApp(config, engines=engines)
        server, port = create_server(config, app)
        await app.start()
        await server.server.start()
        running.append((server, app))
        return f"127.0.0.1:{port}"

    yield start
    for server, app in running:
        await server.server.stop(0)
        await app.close()


@pytest.fixture(scope="session")
def speech_audio():
    """Caller audio through the G.711 path: a long sentence, a digit string and a backchannel."""
    from dialtone.speech_gateway.audio_io import read_wav, telephone_path
    from dialtone.speech_gateway.config import TtsConfig
    from dialtone.speech_gateway.engines.factory import build_tts

    from tests.speech_gateway.corpus import SOUNDS, digit_strings

    long_pcm, rate = read_wav(SOUNDS / "agent-pass.wav")
    tts = build_tts(TtsConfig())
    okay = b"".join(tts.synthesize("Okay."))
    return {
        "long": telephone_path(long_pcm, rate),  # "Please enter your password followed by the pound key."
        "digits": digit_strings(count=1, seed=11)[0],
        "okay": telephone_path(okay, tts.sample_rate),
    }
