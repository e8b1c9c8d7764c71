"""What `dialtone up` hands its children out of the box (pure: no process started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from dialtone.common.config import ConfigError, env_prefix, load_config
from dialtone.integration_gateway.config import IntegrationGatewayConfig, load_services
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.up import Layout, _out_of_the_box, _webrtc_page_url, register


def test_integration_gateway_gets_the_example_services_file_pointed_at_the_example_backend() -> None:
    layout = Layout("127.0.0.1", 7000, 5060)
    env = layout.env("integration-gateway", {})
    assert env["DIALTONE_EXAMPLE_BACKEND_URL"] == "http://127.0.0.1:7080"
    config = load_config(IntegrationGatewayConfig, None, service="integration-gateway", environ=env)
    services = load_services(config)
    assert {"orders", "appointments"} <= set(services)
    assert services["orders"].base_url_env == "DIALTONE_EXAMPLE_BACKEND_URL"
    assert layout.example_backend_argv()[-4:] == ["--host", "127.0.0.1", "--port", "7080"]


def test_media_gateway_is_wired_to_speech_and_its_sip_port() -> None:
    env = Layout("127.0.0.1", 7000, 5099).env("media-gateway", {})
    config = load_config(MediaGatewayConfig, None, service="media-gateway", environ=env)
    assert config.sip.port == 5099 and config.speech_gateway_address == "127.0.0.1:7002"
    assert config.grpc.port == 7001 and config.metrics.port == 7101


def test_webrtc_page_is_announced_only_when_enabled(tmp_path: Path) -> None:
    layout = Layout("127.0.0.1", 7000, 5060)
    assert _webrtc_page_url(None, layout) == ""
    # a first run without config files serves the softphone on loopback, at BASE+88
    assert _webrtc_page_url(None, layout, _out_of_the_box(layout, softphone=True)) == "http://127.0.0.1:7088/"
    assert _webrtc_page_url(None, layout, _out_of_the_box(layout, softphone=False)) == ""
    # beyond loopback the page would need an access key: not on by default
    wide = Layout("0.0.0.0", 7000, 5060)
    assert _webrtc_page_url(None, wide, _out_of_the_box(wide, softphone=True)) == ""
    (tmp_path / "media_gateway.yaml").write_text("webrtc:\n  enabled: true\n  port: 8443\n")
    assert _webrtc_page_url(str(tmp_path), layout) == "http://127.0.0.1:8443/"
    (tmp_path / "media_gateway.yaml").write_text("webrtc:\n  enabled: maybe\n")
    with pytest.raises(ConfigError, match="webrtc.enabled"):
        _webrtc_page_url(str(tmp_path), layout)


def test_up_options() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["up", "--base-port", "9000", "--no-example-backend"])
    assert args.base_port == 9000 and args.no_example_backend


def test_beyond_loopback_every_surface_gets_a_token_that_its_service_accepts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up --host` beyond loopback: the control API and every /metrics would refuse to start without a
    token, so `up` makes them (0600, kept across runs) and the services' own checks accept the wiring."""
    from dialtone.common.auth import load_token, require_token
    from dialtone.media_gateway.service import _control_token
    from dialtone.up import SERVICES, _tokens

    monkeypatch.chdir(tmp_path)
    for service in SERVICES:
        monkeypatch.delenv(env_prefix(service) + "METRICS__TOKEN", raising=False)
        monkeypatch.delenv(env_prefix(service) + "METRICS__TOKEN_FILE", raising=False)
    extra: dict[str, str] = {}
    control_file = Path(_tokens(extra))
    assert control_file.stat().st_mode & 0o777 == 0o600
    layout = Layout("0.0.0.0", 7000, 5060)
    from dialtone.conversation_runtime.config import ConversationRuntimeConfig
    from dialtone.speech_gateway.config import SpeechGatewayConfig

    schemas = {"media-gateway": MediaGatewayConfig, "speech-gateway": SpeechGatewayConfig,
               "conversation-runtime": ConversationRuntimeConfig, "integration-gateway": IntegrationGatewayConfig}
    for service in SERVICES:
        config = load_config(schemas[service], None, service=service, environ=layout.env(service, extra))
        token = load_token(config.metrics.token, config.metrics.token_file, "metrics")
        require_token(config.metrics.host, token, "metrics", "the metrics endpoint")
        assert len(token) >= 32
    media = load_config(MediaGatewayConfig, None, service="media-gateway", environ=layout.env("media-gateway", extra))
    assert media.grpc.host == "0.0.0.0"
    assert _control_token(media) == control_file.read_text().strip()
    assert Path(_tokens({})) == control_file and _control_token(media) == control_file.read_text().strip()
