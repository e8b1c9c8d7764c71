"""Render charts/dialtone with the pinned helm (`make helm` puts it in .cache/bin/helm) and
look at the result: documents by kind and name, pod specs, container ports."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dialtone"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
HELM = ROOT / ".cache" / "bin" / "helm"

# The Kubernetes versions the chart supports (Chart.yaml kubeVersion is the oldest); every
# rendering is checked at both ends.
OLDEST_KUBERNETES = "1.27.0"
NEWEST_KUBERNETES = "1.37.0"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, NEWEST_KUBERNETES)

RELEASE = "dt"
NAMESPACE = "voice"
COMPONENTS = ("media-gateway", "speech-gateway", "conversation-runtime", "integration-gateway")


class HelmFailed(AssertionError):
    """helm exited non-zero; the message holds its output."""


def helm(*args: str, timeout: float = 60.0) -> str:
    if not HELM.is_file():
        raise AssertionError(f"{HELM} is missing: run `make helm` (the chart tests need the pinned helm)")
    proc = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=timeout,
                          env={"HOME": str(ROOT / ".cache"), "PATH": "/usr/bin:/bin",
                               "HELM_CACHE_HOME": str(ROOT / ".cache" / "helm"),
                               "HELM_CONFIG_HOME": str(ROOT / ".cache" / "helm-config"),
                               "HELM_DATA_HOME": str(ROOT / ".cache" / "helm-data")})
    if proc.returncode != 0:
        raise HelmFailed(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def template_args(values: Iterable[Path] = (), sets: Iterable[str] = (),
                  kube_version: str = NEWEST_KUBERNETES) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


@dataclass(frozen=True)
class Rendered:
    documents: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        if len(found) != 1:
            names = [d["metadata"]["name"] for d in self.of_kind(kind)]
            raise AssertionError(f"expected one {kind} named {name}, found {len(found)} among {names}")
        return found[0]

    def has(self, kind: str, name: str) -> bool:
        return any(d["metadata"]["name"] == name for d in self.of_kind(kind))

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", name(component))

    def container(self, component: str) -> dict[str, Any]:
        return self.deployment(component)["spec"]["template"]["spec"]["containers"][0]

    def config_text(self, component: str) -> str:
        return self.get("ConfigMap", name(component))["data"]["config.yaml"]


def name(component: str) -> str:
    return f"{RELEASE}-dialtone-{component}"


def render(values: Iterable[Path] = (), sets: Iterable[str] = (),
           kube_version: str = NEWEST_KUBERNETES) -> Rendered:
    """`helm template`, parsed; cached per arguments (callers must not mutate the documents)."""
    return _render(tuple(values), tuple(sets), kube_version)


@functools.lru_cache(maxsize=64)
def _render(values: tuple[Path, ...], sets: tuple[str, ...], kube_version: str) -> Rendered:
    out = helm(*template_args(values, sets, kube_version))
    return Rendered([d for d in yaml.safe_load_all(out) if d])


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_ports(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        yield from container.get("ports", [])
