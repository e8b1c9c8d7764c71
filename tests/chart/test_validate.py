"""Every rendered document is valid against the Kubernetes schemas (strict: no unknown
fields) at the oldest and the newest supported Kubernetes versions."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.chart.chart import CI_VALUES, KUBERNETES_VERSIONS, render

# Kinds from CRDs that kubernetes-validate has no schema for; only these may go unchecked here
# (test_security.py checks the Certificates' fields against cert-manager's API).
ALLOWED_CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("cert-manager.io/v1", "Certificate")}


def validate(document: dict[str, Any], version: str) -> None:
    if (document["apiVersion"], document["kind"]) in ALLOWED_CUSTOM_KINDS:
        return
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{document['kind']}/{document['metadata']['name']}: {where}: {exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(f"unknown kind (not in the allow-list): {exc.message}") from exc


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_every_document_validates_strictly(values: Path, version: str) -> None:
    """kubernetes-validate (strict) accepts every rendered document."""
    rendered = render([values], kube_version=version)
    assert len(rendered.documents) >= 20
    for document in rendered.documents:
        validate(document, version)


def test_the_validator_catches_an_unknown_field() -> None:
    """The check above can fail: a field Kubernetes does not know is refused."""
    deployment = copy.deepcopy(render(CI_VALUES[:1]).of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(AssertionError, match="livenessProbes"):
        validate(deployment, KUBERNETES_VERSIONS[0])


def test_the_validator_refuses_kinds_outside_the_allow_list() -> None:
    """A custom kind that is not allow-listed fails instead of passing unchecked."""
    document = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(AssertionError, match="unknown kind"):
        validate(document, KUBERNETES_VERSIONS[-1])


def test_supported_versions_are_known_to_the_validator() -> None:
    """Both ends of the supported range have schemas in kubernetes-validate."""
    known = set(kubernetes_validate.utils.all_versions())
    for version in KUBERNETES_VERSIONS:
        assert version in known
