"""Where faster-whisper runs: the selection from asr.device / asr.compute_type and what CTranslate2
detects (a pure function), and the real engine on this machine's CTranslate2."""

from __future__ import annotations

import pytest
from dialtone.speech_gateway.config import AsrConfig
from dialtone.speech_gateway.engines.asr_faster_whisper import detect_cuda, select_device
from dialtone.speech_gateway.engines.base import ModelError
from dialtone.speech_gateway.engines.factory import build_asr

H100 = frozenset({"float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16"})
OLD_GPU = frozenset({"float32", "int8", "int8_float32"})     # no fast float16 (e.g. compute capability 5.x)


@pytest.mark.parametrize(("device", "compute_type", "cuda_devices", "types", "expected"), [
    ("auto", "auto", 0, frozenset(), ("cpu", "int8")),
    ("auto", "auto", 1, H100, ("cuda", "float16")),
    ("auto", "auto", 2, OLD_GPU, ("cuda", "float32")),
    ("auto", "int8_float16", 1, H100, ("cuda", "int8_float16")),
    ("auto", "float32", 0, frozenset(), ("cpu", "float32")),
    ("cpu", "auto", 1, H100, ("cpu", "int8")),                # a GPU is there, but the config says CPU
    ("cuda", "auto", 1, H100, ("cuda", "float16")),
    ("cuda", "int8", 1, H100, ("cuda", "int8")),
])
def test_selection(device: str, compute_type: str, cuda_devices: int, types: frozenset[str],
                   expected: tuple[str, str]) -> None:
    assert select_device(device, compute_type, cuda_devices, types) == expected


@pytest.mark.parametrize(("device", "compute_type", "cuda_devices", "types", "message"), [
    ("cuda", "auto", 0, frozenset(), "asr.device is cuda but CTranslate2 sees no CUDA device"),
    ("cpu", "float16", 1, H100, "asr.compute_type float16 needs a GPU"),
    ("auto", "int8_float16", 0, frozenset(), "asr.compute_type int8_float16 needs a GPU"),
    ("cuda", "float16", 1, OLD_GPU, "asr.compute_type float16 is not supported by this GPU"),
])
def test_impossible_settings_are_refused_at_start(device: str, compute_type: str, cuda_devices: int,
                                                  types: frozenset[str], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        select_device(device, compute_type, cuda_devices, types)


def test_the_engine_runs_where_this_machine_allows() -> None:
    """With the defaults (auto/auto) the engine loads on CUDA where CTranslate2 sees a GPU, else on the
    CPU with int8, as before; asking for CUDA without one fails at start with the reason."""
    cuda_devices, types = detect_cuda()
    engine = build_asr(AsrConfig())
    assert (engine.device, engine.compute_type) == select_device("auto", "auto", cuda_devices, types)
    if cuda_devices == 0:
        assert (engine.device, engine.compute_type) == ("cpu", "int8")
        with pytest.raises(ModelError, match="sees no CUDA device"):
            build_asr(AsrConfig(device="cuda"))
