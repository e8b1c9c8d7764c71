"""What `dialtone up` hands its children out of the box (pure: no process started)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from dialtone.common.config import ConfigError, load_config
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
