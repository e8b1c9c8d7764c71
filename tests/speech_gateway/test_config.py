"""The speech gateway's config sections load from YAML and env, and bad values name the key."""

from __future__ import annotations

import pytest
from dialtone.common.config import ConfigError, load_config
from dialtone.speech_gateway.config import SpeechGatewayConfig


def test_sections_from_yaml_and_env(tmp_path):
    path = tmp_path / "speech.yaml"
    path.write_text("runtime_address: 10.0.0.5:7003\nasr:\n  engine: whispercpp\n  ggml_model: /m/tiny.bin\n"
                    "barge_in:\n  backchannel_words: [mm-hmm, okay]\ntts:\n  prerender: [Welcome.]\n")
    config = load_config(SpeechGatewayConfig, path, service="speech-gateway",
                         environ={"DIALTONE_SPEECH_GATEWAY__VAD__STOP_MS": "500"})
    assert config.runtime_address == "10.0.0.5:7003"
    assert config.asr.engine == "whispercpp" and config.asr.ggml_model == "/m/tiny.bin"
    assert config.vad.stop_ms == 500
    assert config.barge_in.backchannel_words == ["mm-hmm", "okay"] and config.tts.prerender == ["Welcome."]


def test_unknown_engine_is_refused_with_file_line_and_choices(tmp_path):
    path = tmp_path / "speech.yaml"
    path.write_text("asr:\n  engine: pocketsphinx\n")
    with pytest.raises(ConfigError) as err:
        load_config(SpeechGatewayConfig, path, service="speech-gateway", environ={})
    assert str(err.value) == (f"{path}:2: key 'asr.engine': expected one of 'faster_whisper', 'whispercpp', "
                              "got a string 'pocketsphinx'")


def test_vad_timings_that_do_not_fit_are_refused_at_start():
    from dialtone.speech_gateway.service import SpeechGatewayApp

    config = SpeechGatewayConfig()
    config.vad.early_stop_ms = 50     # below speculative_ms: the transcript it waits for cannot exist yet
    with pytest.raises(ConfigError, match="vad: early_stop_ms must be 0 \\(off\\) or at least speculative_ms"):
        SpeechGatewayApp(config)


def test_endpoint_timings_count_from_the_end_of_speech_not_the_vads_late_report():
    from dialtone.speech_gateway.call import segmenter_settings
    from dialtone.speech_gateway.config import VadConfig

    webrtc = segmenter_settings(VadConfig())                       # webrtcvad reports silence ~100 ms late
    assert (webrtc.stop_ms, webrtc.speculative_ms, webrtc.early_stop_ms) == (500, 80, 100)
    off = segmenter_settings(VadConfig(early_stop_ms=0))
    assert off.early_stop_ms == 0
    silero = segmenter_settings(VadConfig(engine="silero", early_stop_ms=300))
    assert (silero.stop_ms, silero.speculative_ms, silero.early_stop_ms) == (540, 80, 240)
    raw = segmenter_settings(VadConfig(hangover_ms=0))
    assert (raw.stop_ms, raw.speculative_ms) == (600, 80)
    tiny = segmenter_settings(VadConfig(stop_ms=80, speculative_ms=60, hangover_ms=100))
    assert (tiny.stop_ms, tiny.speculative_ms) == (20, 20)          # never below one frame, nor above stop


def test_the_speech_gateway_runs_numpys_blas_on_the_threads_configured():
    """asr.blas_threads: OpenBLAS's idle threads spin on the cores the decodes need; the engines limit
    them when they load (0 leaves the library's default)."""
    from dialtone.speech_gateway.service import limit_blas_threads
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):     # restores what the process had afterwards
        limit_blas_threads(1)
        assert blas_threads() == {1}
        limit_blas_threads(0)
        assert blas_threads() == {1}
