"""The one config loader: YAML file + environment overrides checked against a dataclass schema."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest
from dialtone.common.config import ConfigError, ServiceConfig, load_config


@dataclasses.dataclass
class Route:
    number: str = ""
    dialog: str = ""


@dataclasses.dataclass
class DemoConfig(ServiceConfig):
    mode: Literal["fast", "safe"] = "safe"
    ratio: float = 0.5
    peers: list[str] = dataclasses.field(default_factory=list)
    routes: dict[str, Route] = dataclasses.field(default_factory=dict)
    limit: int | None = None


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    """No file and no environment gives the schema's defaults."""
    config = load_config(DemoConfig, None, service="demo", environ={})
    assert config.grpc.host == "127.0.0.1" and config.mode == "safe" and config.limit is None


def test_file_values_are_typed(tmp_path: Path) -> None:
    """Nested sections, lists, mappings of sections and ints-as-floats load into the schema."""
    path = write(tmp_path, "grpc: {port: 7100}\nratio: 1\npeers: [a, b]\nroutes: {main: {number: '100', dialog: x}}\n")
    config = load_config(DemoConfig, path, service="demo", environ={})
    assert config.grpc.port == 7100
    assert config.ratio == 1.0 and isinstance(config.ratio, float)
    assert config.peers == ["a", "b"]
    assert config.routes["main"] == Route(number="100", dialog="x")


def test_unknown_key_names_file_line_key_and_choices(tmp_path: Path) -> None:
    """A misspelt key is refused with the file, its line, the key path and the keys allowed there."""
    path = write(tmp_path, "grpc:\n  host: 0.0.0.0\n  prot: 7100\n")
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, path, service="demo", environ={})
    message = str(err.value)
    assert f"{path}:3" in message
    assert "'grpc.prot'" in message
    assert "unknown key" in message and "port" in message


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    """A value of the wrong type names the key, what was expected and what was found."""
    path = write(tmp_path, "grpc:\n  port: seventy\n")
    with pytest.raises(ConfigError) as err:
        load_config(DemoConfig, path, service="demo", environ={})
    assert f"{path}:2: key 'grpc.port': expected an integer, got a string 'seventy'" == str(err.value)


def test_literal_choices_are_listed(tmp_path: Path) -> None:
    """A value outside a fixed set lists the allowed values."""
    path = write(tmp_path, "mode: quick\n")
    with pytest.raises(ConfigError, match="expected one of 'fast', 'safe'"):
        load_config(DemoConfig, path, service="demo", environ={})


def test_booleans_are_not_integers(tmp_path: Path) -> None:
    """YAML `yes`/`true` is not accepted where a number is wanted."""
    path = write(tmp_path, "grpc: {port: true}\n")
    with pytest.raises(ConfigError, match="expected an integer, got a boolean"):
        load_config(DemoConfig, path, service="demo", environ={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    """DIALTONE_<SERVICE>__A__B overrides a nested key, parsed as a YAML scalar."""
    path = write(tmp_path, "grpc: {port: 7100}\n")
    env = {"DIALTONE_DEMO__GRPC__PORT": "7200", "DIALTONE_DEMO__PEERS": "[x]", "DIALTONE_OTHER__MODE": "fast"}
    config = load_config(DemoConfig, path, service="demo", environ=env)
    assert config.grpc.port == 7200 and config.peers == ["x"] and config.mode == "safe"


def test_bad_environment_override_is_refused() -> None:
    """An override with an unknown key is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(DemoConfig, None, service="demo", environ={"DIALTONE_DEMO__GRPC__PROT": "1"})


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    """Broken YAML and a top level that is not a mapping are reported with the file."""
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(DemoConfig, write(tmp_path, "grpc: [\n"), service="demo", environ={})
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(DemoConfig, write(tmp_path, "- a\n"), service="demo", environ={})


def test_missing_file() -> None:
    """A config path that does not exist is reported, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(DemoConfig, "/nonexistent/dialtone.yaml", service="demo", environ={})
