"""One config loader for every service: a YAML file, then environment overrides,
checked against the service's dataclass schema.

A config is a tree of dataclasses. Unknown keys and wrong types are refused with
the file, the key path, the line and what was expected, so an operator can fix the
file without reading code. Environment variables override single keys:
``DIALTONE_<SERVICE>__<KEY>__<SUBKEY>=value`` (value parsed as a YAML scalar), e.g.
``DIALTONE_MEDIA_GATEWAY__SIP__PORT=5070``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(Exception):
    """A config file or override that does not match the schema. The message is for operators."""


@dataclasses.dataclass
class GrpcServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    max_message_bytes: int = 4 * 1024 * 1024
    # A connection older than this is asked to go away (GOAWAY) once its streams end, so clients
    # re-resolve and new replicas get calls; a call's stream is never cut (max_connection_age_grace
    # is a day). 0 = connections live for ever. 30 s: a replica an HPA adds takes calls within a minute.
    max_connection_age_s: float = 30.0


@dataclasses.dataclass
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port (logged at start)
    enabled: bool = True
    # The bearer token scrapers send (Authorization: Bearer ...), required when host is beyond loopback:
    # the value (set it through DIALTONE_<SERVICE>__METRICS__TOKEN, not in a file in git) or a file holding it.
    token: str = ""
    token_file: str = ""


@dataclasses.dataclass
class TokenConfig:
    """A bearer token an API's callers must present (``dialtone.common.auth``): the value (set it through
    the environment, e.g. DIALTONE_MEDIA_GATEWAY__CONTROL__TOKEN) or a file holding it (a mounted Secret)."""

    token: str = ""
    token_file: str = ""


@dataclasses.dataclass
class TlsConfig:
    """Mutual TLS on every gRPC hop (``dialtone.common.tls``), off while cert_file is empty. The one
    certificate is this service's identity as a server and as the client of the next service; the
    files are read again when they change."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""          # the CA every peer's certificate must chain to (clients' and servers')
    # A plaintext port that serves only grpc.health.v1, for probes that cannot speak TLS (the kubelet's);
    # 0 = none.
    health_port: int = 0


@dataclasses.dataclass
class LogConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


@dataclasses.dataclass
class ServiceConfig:
    """Fields every service has; each service's config extends this."""

    grpc: GrpcServerConfig = dataclasses.field(default_factory=GrpcServerConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    log: LogConfig = dataclasses.field(default_factory=LogConfig)
    shutdown_grace_s: float = 10.0


def env_prefix(service: str) -> str:
    return "DIALTONE_" + service.upper().replace("-", "_") + "__"


def load_config(
    schema: type[T],
    path: str | os.PathLike[str] | None,
    *,
    service: str,
    environ: Mapping[str, str] | None = None,
) -> T:
    """Read ``path`` (may be None: defaults only), apply env overrides, validate into ``schema``."""
    environ = os.environ if environ is None else environ
    source = str(path) if path else "<defaults>"
    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from exc
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of keys, got {_kind(loaded)}")
        raw = loaded
        if node is not None:
            _record_lines(node, (), lines)
    prefix = env_prefix(service)
    for name, value in sorted(environ.items()):
        if name.startswith(prefix) and len(name) > len(prefix):
            keys = [k.lower() for k in name[len(prefix) :].split("__")]
            _set_path(raw, keys, _parse_scalar(value), f"environment variable {name}")
    return _convert(schema, raw, (), _Where(source, lines))


@dataclasses.dataclass
class _Where:
    source: str
    lines: dict[tuple[str, ...], int]

    def at(self, path: tuple[str, ...]) -> str:
        key = ".".join(path) or "(top level)"
        line = self.lines.get(path)
        return f"{self.source}:{line}: key '{key}'" if line else f"{self.source}: key '{key}'"


def _record_lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), out)


def _parse_scalar(value: str) -> Any:
    try:
        return yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return value


def _set_path(raw: dict[str, Any], keys: list[str], value: Any, origin: str) -> None:
    node = raw
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__) + (
        f" {value!r}" if isinstance(value, str | int | float | bool) else "")


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_describe(get_args(tp)[1])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, path: tuple[str, ...], where: _Where) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where.at(path)}: expected a mapping, got {_kind(value)}")
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        kwargs = {}
        for key, item in value.items():
            key = str(key)
            if key not in fields:
                raise ConfigError(
                    f"{where.at((*path, key))}: unknown key; expected one of: {', '.join(sorted(fields))}")
            kwargs[key] = _convert(hints[key], item, (*path, key), where)
        return tp(**kwargs)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return _convert(option, value, path, where)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{where.at(path)}: expected {_describe(tp)}, got {_kind(value)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where.at(path)}: expected {_describe(tp)}, got {_kind(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where.at(path)}: expected {_describe(tp)}, got {_kind(value)}")
        (item_tp,) = get_args(tp)
        return [_convert(item_tp, v, (*path, str(i)), where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where.at(path)}: expected {_describe(tp)}, got {_kind(value)}")
        _, value_tp = get_args(tp)
        return {str(k): _convert(value_tp, v, (*path, str(k)), where) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # ports and numbers written bare where a string is wanted
    else:
        raise TypeError(f"config schema uses unsupported type {tp!r}")
    raise ConfigError(f"{where.at(path)}: expected {_describe(tp)}, got {_kind(value)}")
