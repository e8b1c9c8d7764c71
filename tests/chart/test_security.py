"""The chart's security settings, on the rendered objects: hardened pods, NetworkPolicies on by default,
tokens and certificates only ever in Secrets mounted as files where each service's config looks for
them, ServiceMonitors that send the metrics token, and cert-manager Certificates valid for the names
the clients dial. Where a service's own startup check decides (tokens beyond loopback, the mTLS files),
the rendered config and the mounted files are handed to that very check."""

from __future__ import annotations

import base64
import importlib
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from dialtone.common.auth import load_token, require_token
from dialtone.common.config import load_config
from dialtone.common.tls import mutual_tls
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.service import _control_token

from tests.chart.chart import CHART, CI_VALUES, COMPONENTS, HelmFailed, Rendered, name, render

SCENARIOS = pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
FULL = CHART / "ci" / "full-values.yaml"
HOSTNET = CHART / "ci" / "hostnetwork-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"
SCHEMAS = {
    "media-gateway": ("dialtone.media_gateway.config", "MediaGatewayConfig"),
    "speech-gateway": ("dialtone.speech_gateway.config", "SpeechGatewayConfig"),
    "conversation-runtime": ("dialtone.conversation_runtime.config", "ConversationRuntimeConfig"),
    "integration-gateway": ("dialtone.integration_gateway.config", "IntegrationGatewayConfig"),
}
UPSTREAM = {"speech-gateway": ("media-gateway", "speech_gateway_address"),
            "conversation-runtime": ("speech-gateway", "runtime_address"),
            "integration-gateway": ("conversation-runtime", "integration_address")}
# cert-manager.io/v1 Certificate spec fields (the ones a strict API server would accept that we use).
CERTIFICATE_FIELDS = {"secretName", "commonName", "dnsNames", "ipAddresses", "duration", "renewBefore", "privateKey",
                      "usages", "issuerRef"}


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    return rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet")


def pod(rendered: Rendered, component: str) -> dict[str, Any]:
    return rendered.deployment(component)["spec"]["template"]["spec"]


def secret_mounts(rendered: Rendered, component: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """mountPath -> (Secret name, its volume's secret block) for the component's container."""
    spec = pod(rendered, component)
    volumes = {v["name"]: v for v in spec["volumes"]}
    found = {}
    for mount in spec["containers"][0]["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" in volume:
            assert "subPath" not in mount, mount   # a subPath mount never sees a renewed Secret
            found[mount["mountPath"]] = (volume["secret"]["secretName"], volume["secret"])
    return found


def file_source(rendered: Rendered, component: str, path: str) -> tuple[str, str]:
    """(Secret name, key) whose value the pod sees at ``path``."""
    directory, _, file_name = path.rpartition("/")
    secret, block = secret_mounts(rendered, component)[directory]
    items = {item["path"]: item["key"] for item in block.get("items", [])}
    return secret, items.get(file_name, file_name) if items else file_name


def config(rendered: Rendered, component: str, root: Path | None = None) -> Any:
    """The service's config as its loader reads it; with ``root``, /etc/dialtone paths are moved under it."""
    module, cls = SCHEMAS[component]
    text = rendered.config_text(component)
    if root is not None:
        text = text.replace("/etc/dialtone/", f"{root}/etc/dialtone/")
    path = (root or Path("/nonexistent")) / f"{component}.yaml"
    if root is None:
        return yaml.safe_load(text)
    path.write_text(text)
    return load_config(getattr(importlib.import_module(module), cls), path, service=component, environ={})


def materialize(rendered: Rendered, component: str, root: Path, files: dict[str, bytes]) -> None:
    """Write what the pod would see in its Secret mounts: rendered Secrets' data, else ``files`` (a
    Secret the user or cert-manager makes: key -> bytes)."""
    for mount_path, (secret_name, block) in secret_mounts(rendered, component).items():
        target = root / mount_path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        data = ({k: base64.b64decode(v) for k, v in rendered.get("Secret", secret_name)["data"].items()}
                if rendered.has("Secret", secret_name) else files)
        items = block.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            (target / item["path"]).write_bytes(data.get(item["key"], files.get(item["key"], b"x")))


@SCENARIOS
def test_every_pod_is_hardened(values: Path) -> None:
    """Non-root (a non-zero uid), seccomp RuntimeDefault, no privilege escalation or privilege, every
    capability dropped and none added, a read-only root, no service-account token, no hostPath."""
    for workload in workloads(render([values])):
        spec = workload["spec"]["template"]["spec"]
        where = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert not any("hostPath" in v for v in spec.get("volumes", [])), where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context.get("privileged", False) is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context.get("seccompProfile", {"type": "RuntimeDefault"}) == {"type": "RuntimeDefault"}, where


def test_network_policies_are_on_by_default() -> None:
    rendered = render([MINIMAL])
    assert sorted(p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")) == sorted(
        name(c) for c in COMPONENTS)
    assert len(render([MINIMAL], sets=["redis.enabled=true", "externalRedis.url="]).of_kind("NetworkPolicy")) == 5


@SCENARIOS
def test_tokens_are_secret_files_where_each_service_looks_and_its_own_check_passes(
        values: Path, tmp_path: Path) -> None:
    """metrics.token_file (every service) and control.token_file (media gateway) are files of mounted
    Secrets; with those files in place, the services' own startup checks for a surface bound to 0.0.0.0
    pass. A chart-made token is random and long."""
    rendered = render([values])
    for component in COMPONENTS:
        root = tmp_path / component
        materialize(rendered, component, root, {"token": b"given-token\n", "bearer": b"given-token\n",
                                                "metrics": b"given-token\n", "control": b"given-token\n"})
        loaded = config(rendered, component, root)
        assert loaded.metrics.host == "0.0.0.0"
        token = load_token(loaded.metrics.token, loaded.metrics.token_file, "metrics")
        require_token(loaded.metrics.host, token, "metrics", "metrics")
        secret, key = file_source(rendered, component, config(rendered, component)["metrics"]["token_file"])
        if rendered.has("Secret", secret):
            assert len(token) >= 32 and token.isalnum()
        else:
            assert token == "given-token"
        if component == "media-gateway":
            assert isinstance(loaded, MediaGatewayConfig)
            assert _control_token(loaded)     # grpc and control_http on 0.0.0.0: refused without it
            secret, key = file_source(rendered, component, config(rendered, component)["control"]["token_file"])
            given = yaml.safe_load(values.read_text()).get("tokens", {}).get("control", {})
            expected = (given["existingSecret"], given["existingSecretKey"]) if given.get("existingSecret") \
                else (name("tokens"), "control")
            assert (secret, key) == expected


@SCENARIOS
def test_service_monitors_send_the_token_the_pods_check(values: Path) -> None:
    rendered = render([values])
    for monitor in rendered.of_kind("ServiceMonitor"):
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        expected = file_source(rendered, component, config(rendered, component)["metrics"]["token_file"])
        for endpoint in monitor["spec"]["endpoints"]:
            credentials = endpoint["authorization"]["credentials"]
            assert endpoint["authorization"]["type"] == "Bearer"
            assert (credentials["name"], credentials["key"]) == expected


def test_without_tls_there_is_no_certificate_and_probes_use_the_grpc_port() -> None:
    rendered = render([MINIMAL])
    assert rendered.of_kind("Certificate") == []
    for component in COMPONENTS:
        assert "tls" not in config(rendered, component)
        assert "/etc/dialtone/tls" not in secret_mounts(rendered, component)


@pytest.mark.parametrize("values", [FULL, HOSTNET], ids=lambda p: p.stem)
def test_tls_files_come_from_each_services_secret_and_load(values: Path, tmp_path: Path) -> None:
    """Each service mounts its own TLS Secret (kubernetes.io/tls layout) whole, its config points at the
    files, and the service's own mTLS check accepts them (a certificate from one CA, as cert-manager or
    the user would write it)."""
    rendered = render([values])
    ca = trustme.CA()
    given = yaml.safe_load(values.read_text())["tls"]
    keys = dict(zip(COMPONENTS, ("mediaGateway", "speechGateway", "conversationRuntime", "integrationGateway"),
                    strict=True))
    certificates = {c["metadata"]["labels"]["app.kubernetes.io/component"]: c for c in rendered.of_kind("Certificate")}
    for component in COMPONENTS:
        tls = config(rendered, component)["tls"]
        secret, _ = file_source(rendered, component, tls["cert_file"])
        assert {file_source(rendered, component, tls[f])[0] for f in ("key_file", "ca_file")} == {secret}
        assert (tls["cert_file"], tls["key_file"], tls["ca_file"]) == (
            "/etc/dialtone/tls/tls.crt", "/etc/dialtone/tls/tls.key", "/etc/dialtone/tls/ca.crt")
        if given.get("secrets", {}).get(keys[component]):
            assert secret == given["secrets"][keys[component]]
        else:
            assert secret == certificates[component]["spec"]["secretName"] == f"{name(component)}-tls"
        leaf = ca.issue_cert(name(component))
        root = tmp_path / component
        materialize(rendered, component, root, {"tls.crt": leaf.cert_chain_pems[0].bytes(),
                                                "tls.key": leaf.private_key_pem.bytes(),
                                                "ca.crt": ca.cert_pem.bytes(), "token": b"t", "bearer": b"t",
                                                "metrics": b"t", "control": b"t"})
        loaded = config(rendered, component, root)
        assert mutual_tls(loaded.tls) is not None
        assert loaded.tls.health_port == given.get("healthPort", 7070)


def test_cert_manager_certificates_cover_the_names_clients_dial() -> None:
    rendered = render([FULL])
    values = yaml.safe_load(FULL.read_text())["tls"]["certManager"]
    certificates = {c["metadata"]["labels"]["app.kubernetes.io/component"]: c for c in rendered.of_kind("Certificate")}
    assert set(certificates) == set(COMPONENTS)
    for component, certificate in certificates.items():
        spec = certificate["spec"]
        assert set(spec) <= CERTIFICATE_FIELDS, set(spec) - CERTIFICATE_FIELDS
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert spec["issuerRef"] == {"name": values["issuerRef"]["name"], "kind": values["issuerRef"]["kind"],
                                     "group": "cert-manager.io"}
        assert spec["privateKey"]["rotationPolicy"] == "Always"
        assert f"{name(component)}.voice.svc.cluster.local" in spec["dnsNames"]
        assert spec["ipAddresses"] == ["127.0.0.1"]     # the CLI inside the pod dials loopback
        if component in UPSTREAM:
            client, key = UPSTREAM[component]
            host = config(rendered, client)[key].removeprefix("dns:///").rpartition(":")[0]
            assert host in spec["dnsNames"], (component, host)


def test_cert_manager_without_an_issuer_is_refused_with_a_reason() -> None:
    with pytest.raises(HelmFailed, match="tls.certManager.enabled needs tls.certManager.issuerRef.name"):
        render([MINIMAL], sets=["tls.enabled=true", "tls.certManager.enabled=true"])
