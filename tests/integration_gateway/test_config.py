"""The services config: schema through the common loader, checks, secrets from env or file."""

from __future__ import annotations

from pathlib import Path

import pytest
from dialtone.common.config import ConfigError, load_config
from dialtone.integration_gateway.config import (
    EXAMPLE_SERVICES_FILE,
    IntegrationGatewayConfig,
    SecretRef,
    load_services,
)

GOOD = """\
services:
  crm:
    base_url: https://crm.example.test/api
    timeouts: {connect_s: 1, read_s: 2, total_s: 5}
    auth:
      kind: api_key
      api_key: {header: X-Api-Key, secret: {env: CRM_KEY}}
    methods:
      lookup: {verb: GET, path: "/customers/{customer_id}", query: [fields]}
"""


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> IntegrationGatewayConfig:
    path = tmp_path / "integration_gateway.yaml"
    path.write_text(text)
    return load_config(IntegrationGatewayConfig, path, service="integration-gateway", environ=environ or {})


def test_a_full_service_loads(tmp_path: Path) -> None:
    """Nested service, timeouts, auth and method keys come out typed."""
    config = load(tmp_path, GOOD)
    crm = load_services(config)["crm"]
    assert crm.timeouts.read_s == 2.0 and crm.auth.api_key.header == "X-Api-Key"
    assert crm.methods["lookup"].path == "/customers/{customer_id}" and crm.methods["lookup"].query == ["fields"]


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    """A misspelt key is refused with the file, line and key path."""
    with pytest.raises(ConfigError, match=r"integration_gateway.yaml:4: key 'services.crm.timeouts.conect_s'"):
        load(tmp_path, GOOD.replace("connect_s", "conect_s"))


def test_wrong_verb_is_refused(tmp_path: Path) -> None:
    """A verb outside the allowed set names the choices."""
    with pytest.raises(ConfigError, match="expected one of 'GET', 'POST'"):
        load(tmp_path, GOOD.replace("verb: GET", "verb: FETCH"))


@pytest.mark.parametrize(("change", "message"), [
    (("https://crm.example.test/api", "ftp://crm"), "base_url: expected an http:// or https:// URL"),
    (("header: X-Api-Key", "header: X-Api-Key, query: k"), "exactly one of 'header' or 'query'"),
    (('path: "/customers', 'path: "customers'), "path: must start with '/'"),
    (("total_s: 5", "total_s: 0"), "every timeout must be > 0"),
])
def test_semantic_checks(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    """Values that parse but cannot work are refused at start, naming the service key."""
    config = load(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message):
        load_services(config)


def test_services_file_is_merged(tmp_path: Path) -> None:
    """services_file adds its services; the gateway's own `services` are kept beside them."""
    config = load(tmp_path, GOOD + f"services_file: {EXAMPLE_SERVICES_FILE}\n")
    assert set(load_services(config)) == {"crm", "orders", "appointments", "pharmacy"}


def test_bad_services_file_names_that_file(tmp_path: Path) -> None:
    """An error inside the services_file points at that file and line."""
    other = tmp_path / "svc.yaml"
    other.write_text("services:\n  x:\n    base_url: http://127.0.0.1:1\n    retries: 3\n")
    config = load(tmp_path, f"services_file: {other}\n")
    with pytest.raises(ConfigError, match=r"svc.yaml:4: key 'services.x.retries': unknown key"):
        load_services(config)


def test_env_override_reaches_a_service(tmp_path: Path) -> None:
    """DIALTONE_INTEGRATION_GATEWAY__SERVICES__CRM__BASE_URL overrides one service's URL."""
    config = load(tmp_path, GOOD, {"DIALTONE_INTEGRATION_GATEWAY__SERVICES__CRM__BASE_URL": "http://127.0.0.1:9"})
    assert config.services["crm"].base_url == "http://127.0.0.1:9"


def test_base_url_env_replaces_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's base_url_env, when set, wins over its base_url."""
    config = IntegrationGatewayConfig(services_file=str(EXAMPLE_SERVICES_FILE))
    assert load_services(config)["orders"].effective_base_url() == "http://127.0.0.1:8081"
    monkeypatch.setenv("DIALTONE_EXAMPLE_BACKEND_URL", "http://127.0.0.1:9999")
    assert load_services(config)["orders"].effective_base_url() == "http://127.0.0.1:9999"


class TestSecrets:
    def test_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A secret named by env comes from that variable."""
        monkeypatch.setenv("IG_TEST_SECRET", "s3cr3t")
        assert SecretRef(env="IG_TEST_SECRET").resolve("x") == "s3cr3t"

    def test_from_file(self, tmp_path: Path) -> None:
        """A secret named by file is that file's content, stripped."""
        (tmp_path / "key").write_text("abc\n")
        assert SecretRef(file=str(tmp_path / "key")).resolve("x") == "abc"

    def test_missing_is_a_config_error(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """An unset variable, a missing file or no source at all are refused with the place."""
        monkeypatch.delenv("IG_TEST_MISSING", raising=False)
        with pytest.raises(ConfigError, match="services.a.auth: environment variable IG_TEST_MISSING"):
            SecretRef(env="IG_TEST_MISSING").resolve("services.a.auth")
        with pytest.raises(ConfigError, match="cannot read secret file"):
            SecretRef(file=str(tmp_path / "nope")).resolve("s")
        with pytest.raises(ConfigError, match="give 'env'"):
            SecretRef().resolve("s")
