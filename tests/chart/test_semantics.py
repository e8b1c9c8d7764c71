"""What the schemas cannot see: objects that point at each other do so correctly."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chart import (
    CHART,
    CI_VALUES,
    COMPONENTS,
    Rendered,
    container_ports,
    name,
    pod_labels,
    render,
    selects,
)

FULL = CHART / "ci" / "full-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"
HOSTNET = CHART / "ci" / "hostnetwork-values.yaml"
NODEPORT = CHART / "ci" / "nodeport-values.yaml"

SCENARIOS = pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    return rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet")


def selected_workloads(rendered: Rendered, selector: dict[str, str]) -> list[str]:
    return [w["metadata"]["name"] for w in workloads(rendered) if selects(selector, pod_labels(w))]


@SCENARIOS
def test_each_service_has_its_objects(values: Path) -> None:
    """Each of the four services has a ConfigMap, a Deployment and a Service."""
    rendered = render([values])
    for component in COMPONENTS:
        for kind in ("ConfigMap", "Deployment", "Service"):
            assert rendered.has(kind, name(component)), (kind, component)


@SCENARIOS
def test_hpas_target_existing_deployments_without_replicas(values: Path) -> None:
    """Each HPA scales an existing Deployment, which then leaves `replicas` to it."""
    rendered = render([values])
    scaled = set()
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        deployment = rendered.get("Deployment", ref["name"])
        assert "replicas" not in deployment["spec"], ref["name"]
        assert hpa["spec"]["metrics"], ref["name"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        scaled.add(ref["name"])
    for deployment in rendered.of_kind("Deployment"):
        if deployment["metadata"]["name"] not in scaled:
            assert deployment["spec"]["replicas"] >= 1, deployment["metadata"]["name"]


@SCENARIOS
def test_workload_selectors_match_their_own_pods(values: Path) -> None:
    """Each Deployment/StatefulSet selects its pod template and no other workload's pods."""
    rendered = render([values])
    for workload in workloads(rendered):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selected_workloads(rendered, selector) == [workload["metadata"]["name"]]


@SCENARIOS
def test_pdbs_select_exactly_one_workload(values: Path) -> None:
    """Each PodDisruptionBudget covers the pods of one service."""
    rendered = render([values])
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert selected_workloads(rendered, selector) == [pdb["metadata"]["name"]]
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])


@SCENARIOS
def test_services_select_pods_and_named_ports_exist(values: Path) -> None:
    """Each Service selects one workload, and every named targetPort is a container port of
    that workload with the same protocol."""
    rendered = render([values])
    for service in rendered.of_kind("Service"):
        owners = selected_workloads(rendered, service["spec"]["selector"])
        assert len(owners) == 1, (service["metadata"]["name"], owners)
        workload = next(w for w in workloads(rendered) if w["metadata"]["name"] == owners[0])
        ports = {(p["name"], p.get("protocol", "TCP")): p["containerPort"] for p in container_ports(workload)}
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            if isinstance(target, str):
                assert (target, port.get("protocol", "TCP")) in ports, (service["metadata"]["name"], target)
            else:
                assert service["metadata"]["name"].endswith("-sip") and port["protocol"] == "UDP", port


@SCENARIOS
def test_container_port_names_are_unique_and_valid(values: Path) -> None:
    """Container port names are unique per pod and valid IANA service names."""
    rendered = render([values])
    for workload in workloads(rendered):
        names = [p["name"] for p in container_ports(workload)]
        assert len(names) == len(set(names))
        for port_name in names:
            assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", port_name), port_name


@SCENARIOS
def test_probes_point_at_the_grpc_port_the_service_serves(values: Path) -> None:
    """Readiness, liveness and startup probes use grpc.health.v1 on the port that the config
    makes the service listen on (with mutual TLS, its plaintext health-only port)."""
    rendered = render([values])
    for component in COMPONENTS:
        container = rendered.container(component)
        grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        config = yaml.safe_load(rendered.config_text(component))
        assert config["grpc"]["port"] == grpc_port
        metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
        assert config["metrics"]["port"] == metrics_port
        probed = grpc_port
        if "tls" in config:
            probed = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
            assert config["tls"]["health_port"] == probed != grpc_port
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == probed, (component, probe)


@SCENARIOS
def test_config_checksum_and_mounts(values: Path) -> None:
    """Each service's pods carry checksum/config and mount their own ConfigMap, and the
    container reads config.yaml from that mount."""
    rendered = render([values])
    for component in COMPONENTS:
        deployment = rendered.deployment(component)
        pod = deployment["spec"]["template"]
        assert re.fullmatch(r"[0-9a-f]{64}", pod["metadata"]["annotations"]["checksum/config"])
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == name(component)
        container = pod["spec"]["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert container["args"] == ["--config", mounts["config"] + "/config.yaml"]
        assert mounts["tmp"] == "/tmp" and "emptyDir" in volumes["tmp"]


@SCENARIOS
def test_pods_run_unprivileged_with_a_read_only_root(values: Path) -> None:
    """Every pod runs as non-root, without privilege escalation, on a read-only root fs."""
    rendered = render([values])
    for workload in workloads(rendered):
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]


@SCENARIOS
def test_references_to_configmaps_and_secrets_resolve(values: Path) -> None:
    """Every ConfigMap/Secret a pod uses is rendered by the chart or named in values as an
    existing one."""
    rendered = render([values])
    given = yaml.safe_load(values.read_text())
    existing = set(given.get("dialogs", {}).get("existingConfigMaps", []))
    existing.add(given.get("integrationGateway", {}).get("existingServicesConfigMap", ""))
    existing.add(given.get("integrationGateway", {}).get("credentials", {}).get("existingSecret", ""))
    existing.add(given.get("externalRedis", {}).get("existingSecret", ""))
    existing.add(given.get("externalRedis", {}).get("sentinel", {}).get("existingSecret", ""))
    existing.add(given.get("mediaGateway", {}).get("webrtc", {}).get("accessKeySecret", ""))
    existing.update(given.get("tls", {}).get("secrets", {}).values())
    existing.update(token.get("existingSecret", "") for token in given.get("tokens", {}).values())
    existing.update(c["spec"]["secretName"] for c in rendered.of_kind("Certificate"))   # cert-manager writes them
    existing.discard("")
    for workload in workloads(rendered):
        spec = workload["spec"]["template"]["spec"]
        refs: list[tuple[str, str]] = []
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                refs.append(("Secret", volume["secret"]["secretName"]))
            for source in volume.get("projected", {}).get("sources", []):
                refs.append(("ConfigMap", source["configMap"]["name"]))
        for container in spec["containers"]:
            for env in container.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    refs.append(("Secret", env["valueFrom"]["secretKeyRef"]["name"]))
            for source in container.get("envFrom", []):
                refs.append(("Secret", source["secretRef"]["name"]))
        for kind, ref in refs:
            assert rendered.has(kind, ref) or ref in existing, (workload["metadata"]["name"], kind, ref)


@SCENARIOS
def test_no_secret_reaches_a_configmap(values: Path) -> None:
    """The Redis URL and backend credentials live in Secrets only, never in ConfigMaps."""
    rendered = render([values])
    secrets = []
    for secret in rendered.of_kind("Secret"):
        secrets += [base64.b64decode(v).decode() for v in secret.get("data", {}).values()]
    configmaps = yaml.safe_dump([c.get("data", {}) for c in rendered.of_kind("ConfigMap")])
    for secret in secrets:
        assert secret not in configmaps
    assert "redis://" not in configmaps and "rediss://" not in configmaps


def test_default_values_hold_no_secrets() -> None:
    """values.yaml defaults leave every credential empty."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["externalRedis"]["url"] == ""
    assert defaults["integrationGateway"]["credentials"] == {"existingSecret": "", "create": False, "values": {}}


@SCENARIOS
def test_service_monitors_scrape_a_metrics_port(values: Path) -> None:
    """Each ServiceMonitor selects one Service that has a port named like its endpoint."""
    rendered = render([values])
    for monitor in rendered.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in rendered.of_kind("Service") if selects(selector, s["metadata"]["labels"])
                    and not s["metadata"]["name"].endswith(("-sip", "-headless"))]
        assert len(services) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in services[0]["spec"]["ports"]}
        assert all(e["port"] in port_names for e in monitor["spec"]["endpoints"])


@SCENARIOS
def test_network_policies_select_workloads_and_allow_only_the_call_path(values: Path) -> None:
    """Each NetworkPolicy covers one workload; gRPC ingress to each service comes only from
    the one before it on the call path."""
    rendered = render([values])
    policies = rendered.of_kind("NetworkPolicy")
    if not policies:
        return
    upstream = {"speech-gateway": "media-gateway", "conversation-runtime": "speech-gateway",
                "integration-gateway": "conversation-runtime"}
    for policy in policies:
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selected_workloads(rendered, selector) == [policy["metadata"]["name"]]
    for component, source in upstream.items():
        policy = rendered.get("NetworkPolicy", name(component))
        # (Host-networked media gateways come from node CIDRs: test_media_gateway checks that rule.)
        grpc_rules = [r for r in policy["spec"]["ingress"] if "from" in r and r.get("ports", [{}])[0].get("port")
                      == yaml.safe_load(rendered.config_text(component))["grpc"]["port"]
                      and all("podSelector" in p for p in r["from"])]
        assert len(grpc_rules) == 1
        peers = grpc_rules[0]["from"]
        assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers] == [source]
