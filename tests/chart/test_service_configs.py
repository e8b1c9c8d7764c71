"""The config each service gets from the chart is one its own loader accepts, and its
addresses point at Services the chart renders. Loaded with dialtone.common.config, the same
way the container loads it: the ConfigMap's config.yaml plus the container's DIALTONE_* env."""

from __future__ import annotations

import base64
import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest
from dialtone.common.config import load_config

from tests.chart.chart import CI_VALUES, COMPONENTS, Rendered, name, render

SCHEMAS = {
    "media-gateway": ("dialtone.media_gateway.config", "MediaGatewayConfig"),
    "speech-gateway": ("dialtone.speech_gateway.config", "SpeechGatewayConfig"),
    "conversation-runtime": ("dialtone.conversation_runtime.config", "ConversationRuntimeConfig"),
    "integration-gateway": ("dialtone.integration_gateway.config", "IntegrationGatewayConfig"),
}
# What a secretKeyRef to a Secret the user manages (existingSecret) stands for here.
EXISTING_SECRET_VALUE = "redis://existing-redis.example:6379/0"
POD_IP = "10.1.2.3"


def container_env(rendered: Rendered, component: str) -> dict[str, str]:
    """The container's environment as the kubelet would set it (downward API: a sample IP)."""
    env: dict[str, str] = {}
    for item in rendered.container(component).get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[item["name"]] = POD_IP
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if rendered.has("Secret", ref["name"]):
                data = rendered.get("Secret", ref["name"])["data"]
                env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
            else:
                env[item["name"]] = EXISTING_SECRET_VALUE
    return env


def load(rendered: Rendered, component: str, tmp_path: Path) -> Any:
    module, cls = SCHEMAS[component]
    schema = getattr(importlib.import_module(module), cls)
    path = tmp_path / f"{component}.yaml"
    path.write_text(rendered.config_text(component))
    return load_config(schema, path, service=component, environ=container_env(rendered, component))


def assert_points_at_service(rendered: Rendered, address: str, component: str) -> None:
    """The address is gRPC's DNS target of the component's headless Service (one record per pod, so
    clients balance each call across pods), on its gRPC port, selecting the same pods as the Service."""
    assert address.startswith("dns:///"), address
    host, _, port = address.removeprefix("dns:///").rpartition(":")
    assert host == name(component) + "-headless"
    headless = rendered.get("Service", host)
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == rendered.get("Service", name(component))["spec"]["selector"]
    grpc = next(p for p in headless["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["port"] == int(port)


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_rendered_config_loads_with_the_service_loader(values: Path, component: str, tmp_path: Path) -> None:
    """config.yaml + env from the chart pass the service's own schema (no unknown key, no
    wrong type), and listen where the pod's ports and probes expect."""
    rendered = render([values])
    config = load(rendered, component, tmp_path)
    ports = {p["name"]: p["containerPort"] for p in rendered.container(component)["ports"]}
    pod = rendered.deployment(component)["spec"]["template"]["spec"]
    # On the host's network every interface is the node's: gRPC and metrics bind its InternalIP only.
    host = POD_IP if pod.get("hostNetwork") else "0.0.0.0"
    assert (config.grpc.host, config.grpc.port) == (host, ports["grpc"])
    assert (config.metrics.host, config.metrics.port, config.metrics.enabled) == (host, ports["metrics"], True)
    assert config.shutdown_grace_s < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_the_call_path_addresses_are_the_charts_services(values: Path, tmp_path: Path) -> None:
    """media -> speech -> runtime -> integration: each address is the next Service's gRPC port."""
    rendered = render([values])
    assert_points_at_service(rendered, load(rendered, "media-gateway", tmp_path).speech_gateway_address,
                             "speech-gateway")
    assert_points_at_service(rendered, load(rendered, "speech-gateway", tmp_path).runtime_address,
                             "conversation-runtime")
    assert_points_at_service(rendered, load(rendered, "conversation-runtime", tmp_path).integration_address,
                             "integration-gateway")


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_state_lives_in_the_shared_redis(values: Path, tmp_path: Path) -> None:
    """The runtime's sessions and the integration gateway's state use the same Redis URL."""
    rendered = render([values])
    runtime = load(rendered, "conversation-runtime", tmp_path)
    integration = load(rendered, "integration-gateway", tmp_path)
    assert runtime.store.kind == "redis" and integration.store.kind == "redis"
    assert runtime.store.url == integration.store.redis_url
    assert runtime.store.url.startswith(("redis://", "rediss://"))


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_media_gateway_sip_and_rtp_match_the_pod(values: Path, tmp_path: Path) -> None:
    """SIP, RTP and the control API listen where the pod and its Services expect, and an
    address other than 0.0.0.0 is advertised."""
    rendered = render([values])
    config = load(rendered, "media-gateway", tmp_path)
    ports = {p["name"]: p["containerPort"] for p in rendered.container("media-gateway")["ports"]}
    assert config.sip.port == ports["sip-udp"] == ports["sip-tcp"]
    assert config.control_http.enabled and config.control_http.port == ports["http"]
    assert config.sip.advertised_host not in ("", "0.0.0.0")
    assert config.rtp.port_high - config.rtp.port_low >= 2
    assert config.sip.allowed_networks
    public = name("media-gateway") + "-sip"
    spec = rendered.get("Service", public)["spec"] if rendered.has("Service", public) else {"type": None}
    if spec["type"] == "NodePort":
        # Peers are told the node port, which kube-proxy maps to the pod's SIP port.
        assert config.sip.advertised_port == next(p["nodePort"] for p in spec["ports"] if p["name"] == "sip-udp")
    else:
        assert config.sip.advertised_port in (0, config.sip.port)
    if spec["type"] is not None:
        rtp = [p["port"] for p in spec["ports"] if p["name"].startswith("rtp-")]
        assert rtp == list(range(config.rtp.port_low, config.rtp.port_high))


def test_dialogs_from_values_replace_the_packaged_examples(tmp_path: Path) -> None:
    """With dialog ConfigMaps the runtime reads the mounted directory; without any it keeps
    its packaged defaults."""
    from dialtone.conversation_runtime.config import ConversationRuntimeConfig

    full = load(render([p for p in CI_VALUES if p.stem == "full-values"]), "conversation-runtime", tmp_path)
    assert full.dialogs == ["/etc/dialtone/dialogs"]
    minimal = load(render([p for p in CI_VALUES if p.stem == "minimal-values"]), "conversation-runtime", tmp_path)
    default = dataclasses.fields(ConversationRuntimeConfig)
    assert minimal.dialogs == next(f for f in default if f.name == "dialogs").default_factory()


def test_integration_services_file_loads_and_checks(tmp_path: Path) -> None:
    """The services file the chart writes is accepted by the integration gateway's loader,
    with the credential taken from the chart's Secret through the environment."""
    from dialtone.integration_gateway.config import load_services

    rendered = render([p for p in CI_VALUES if p.stem == "full-values"])
    config = load(rendered, "integration-gateway", tmp_path)
    services_yaml = rendered.get("ConfigMap", name("integration-gateway"))["data"]["services.yaml"]
    assert config.services_file == "/etc/dialtone/config/services.yaml"
    local = tmp_path / "services.yaml"
    local.write_text(services_yaml)
    config.services_file = str(local)
    services = load_services(config)
    assert list(services) == ["orders"]
    secret = rendered.get("Secret", rendered.container("integration-gateway")["envFrom"][0]["secretRef"]["name"])
    assert services["orders"].auth.api_key.secret.env in secret["data"]


def test_a_wrong_key_in_a_config_block_is_refused_by_the_loader(tmp_path: Path) -> None:
    """The check above can fail: a key the service does not know, passed through `config`,
    is refused with its name by the service's loader."""
    from dialtone.common.config import ConfigError

    minimal = [p for p in CI_VALUES if p.stem == "minimal-values"]
    rendered = render(minimal, ["mediaGateway.config.sip.advertised_adress=203.0.113.9"])
    with pytest.raises(ConfigError, match="advertised_adress"):
        load(rendered, "media-gateway", tmp_path)


def test_softphone_listens_where_its_service_port_points(tmp_path: Path) -> None:
    """With webrtc on, the softphone binds the port the Service exposes and takes its access
    key from the named Secret; with it off, the section keeps the service's defaults."""
    rendered = render([p for p in CI_VALUES if p.stem == "full-values"])
    config = load(rendered, "media-gateway", tmp_path)
    service = rendered.get("Service", name("media-gateway"))
    webrtc = next(p for p in service["spec"]["ports"] if p["name"] == "webrtc")
    ports = {p["name"]: p["containerPort"] for p in rendered.container("media-gateway")["ports"]}
    assert config.webrtc.enabled and config.webrtc.host == "0.0.0.0"
    assert config.webrtc.port == ports["webrtc"] == webrtc["port"]
    assert config.webrtc.access_key == EXISTING_SECRET_VALUE
    minimal = load(render([p for p in CI_VALUES if p.stem == "minimal-values"]), "media-gateway", tmp_path)
    assert not minimal.webrtc.enabled


def test_sentinel_settings_reach_both_redis_users(tmp_path: Path) -> None:
    """externalRedis.sentinel: both stores get the Sentinels and the master's name from the config and
    the Sentinels' password from its Secret; each service's loader accepts them."""
    rendered = render([p for p in CI_VALUES if p.stem == "nodeport-values"])
    runtime = load(rendered, "conversation-runtime", tmp_path)
    integration = load(rendered, "integration-gateway", tmp_path)
    for store in (runtime.store, integration.store):
        assert store.sentinel.addresses == ["sentinel-0.redis.example.internal:26379",
                                            "sentinel-1.redis.example.internal:26379"]
        assert store.sentinel.master_name == "dialtone" and not store.cluster
        assert store.sentinel.password == EXISTING_SECRET_VALUE
    minimal = load(render([p for p in CI_VALUES if p.stem == "minimal-values"]), "conversation-runtime", tmp_path)
    assert minimal.store.sentinel.addresses == [] and not minimal.store.cluster


def test_in_chart_redis_requires_the_password_its_url_carries() -> None:
    """The in-chart Redis starts with --requirepass from the URL Secret's password, the URL the
    services get carries that password, and its probe authenticates (REDISCLI_AUTH)."""
    rendered = render([p for p in CI_VALUES if p.stem == "full-values"])
    secret = rendered.get("Secret", name("redis-url"))["data"]
    password = base64.b64decode(secret["password"]).decode()
    assert len(password) >= 32
    assert base64.b64decode(secret["url"]).decode() == f"redis://:{password}@{name('redis')}:6379/0"
    redis = rendered.get("StatefulSet", name("redis"))["spec"]["template"]["spec"]["containers"][0]
    assert redis["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in redis["env"]}
    assert env["REDIS_PASSWORD"] == env["REDISCLI_AUTH"] == {"name": name("redis-url"), "key": "password"}


def test_speech_gateway_on_gpu_nodes(tmp_path: Path) -> None:
    """speechGateway.gpu: the pod asks for the GPU as a limit (its other limits kept), tolerates the GPU
    nodes' taint besides its own tolerations, lands where nodeSelector says, and its ASR is told to
    use CUDA (so a pod without a GPU fails at start); off, none of it."""
    rendered = render([p for p in CI_VALUES if p.stem == "full-values"])
    pod = rendered.deployment("speech-gateway")["spec"]["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "8Gi", "nvidia.com/gpu": 1}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert load(rendered, "speech-gateway", tmp_path).asr.device == "cuda"
    minimal = render([p for p in CI_VALUES if p.stem == "minimal-values"])
    plain = minimal.deployment("speech-gateway")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in plain["containers"][0]["resources"]["limits"]
    assert "tolerations" not in plain
    assert load(minimal, "speech-gateway", tmp_path).asr.device == "auto"
