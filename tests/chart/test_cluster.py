"""Opt-in: install the rendered chart into a real cluster and wait until every service is
available and answers grpc.health.v1.

No Kubernetes API server can run on the build machines, so this test is marked `kubernetes`
and conftest.py deselects it unless KUBECONFIG is set (pytest reports it as deselected; it
never passes without a cluster). It needs the four images pushed where the cluster can pull
them (docs/kubernetes.md):

    KUBECONFIG=~/.kube/config DIALTONE_IMAGE_REGISTRY=registry.example.com DIALTONE_IMAGE_TAG=0.1.0 \\
        .venv/bin/python -m pytest tests/chart/test_cluster.py -m kubernetes
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml

from tests.chart.chart import COMPONENTS, helm, template_args

pytestmark = pytest.mark.kubernetes

INSTALL_TIMEOUT_S = 900.0
# A health check run inside each pod, with the image's own Python and grpcio.
HEALTH_CHECK = (
    "import grpc, sys\n"
    "from grpc_health.v1 import health_pb2, health_pb2_grpc\n"
    "stub = health_pb2_grpc.HealthStub(grpc.insecure_channel('127.0.0.1:%d'))\n"
    "reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)\n"
    "print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))\n"
)


def required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise AssertionError(f"{name} must be set for the cluster test (see this module's docstring)")
    return value


@pytest.fixture
def cluster_namespace() -> Iterator[tuple[object, str]]:
    from kubernetes import client, config

    config.load_kube_config()
    api = client.ApiClient()
    namespace = f"dialtone-test-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        yield api, namespace
    finally:
        client.CoreV1Api(api).delete_namespace(namespace)


def test_chart_installs_and_every_service_answers_health(cluster_namespace: tuple[object, str]) -> None:
    """Every Deployment becomes available and each pod answers SERVING on grpc.health.v1."""
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient
    from kubernetes.stream import stream

    api, namespace = cluster_namespace
    sets = [
        f"image.registry={required_env('DIALTONE_IMAGE_REGISTRY')}",
        f"image.tag={required_env('DIALTONE_IMAGE_TAG')}",
        "redis.enabled=true",
        # Small enough for a test cluster (kind, k3d, minikube).
        *(f"{key}.{item}" for key in ("mediaGateway", "speechGateway", "conversationRuntime", "integrationGateway")
          for item in ("autoscaling.minReplicas=1", "resources.requests.cpu=100m", "resources.requests.memory=128Mi")),
        "speechGateway.resources.limits.memory=3Gi",
    ]
    version = client.VersionApi(api).get_code()
    args = template_args([], sets, kube_version=f"{version.major}.{version.minor.rstrip('+')}.0")
    args[args.index("--namespace") + 1] = namespace
    documents = [d for d in yaml.safe_load_all(helm(*args)) if d]
    dynamic = DynamicClient(api)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        resource.server_side_apply(body=document, namespace=namespace, field_manager="dialtone-chart-test")

    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    pending = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"}
    assert len(pending) == len(COMPONENTS)
    while pending and time.monotonic() < deadline:
        for deployment_name in sorted(pending):
            status = apps.read_namespaced_deployment_status(deployment_name, namespace).status
            if status.available_replicas and status.available_replicas >= 1:
                pending.discard(deployment_name)
        time.sleep(5)
    assert not pending, f"not available after {INSTALL_TIMEOUT_S:.0f}s: {sorted(pending)}"

    core = client.CoreV1Api(api)
    for document in documents:
        if document["kind"] != "Deployment":
            continue
        selector = ",".join(f"{k}={v}" for k, v in document["spec"]["selector"]["matchLabels"].items())
        container = document["spec"]["template"]["spec"]["containers"][0]
        grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        assert pods, document["metadata"]["name"]
        answer = stream(core.connect_get_namespaced_pod_exec, pods[0].metadata.name, namespace,
                        container=container["name"], command=["python", "-c", HEALTH_CHECK % grpc_port],
                        stderr=True, stdout=True, stdin=False, tty=False)
        assert answer.strip().splitlines()[-1] == "SERVING", (document["metadata"]["name"], answer)
