"""values.schema.json closes every block: a key it does not list is an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from tests.chart.chart import CHART

# Blocks that are free-form on purpose: Kubernetes objects passed through (checked by the API
# server and by test_validate), label/annotation maps, and the services' own config (checked
# by each service's loader, see test_service_configs).
FREE_FORM = {
    "global", "podSecurityContext", "securityContext", "affinity", "behavior", "config", "services",
}

# Keys the schema allows that values.yaml leaves out on purpose (an empty `strategy` is the chart's
# default for the service).
OPTIONAL_KEYS = {"global", "claims", "type", "rollingUpdate"}


def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def object_schemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.items():
            yield from object_schemas(child, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from object_schemas(child, f"{path}[{index}]")


def test_every_block_refuses_unknown_keys() -> None:
    """Each object in the schema sets additionalProperties (false for blocks with listed
    properties), except the deliberate free-form ones."""
    for path, node in object_schemas(schema()):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in FREE_FORM:
            continue
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
        elif leaf != "items":
            # Maps (labels, quantities, dialog files) constrain their values instead.
            assert isinstance(node.get("additionalProperties"), dict), path


def test_schema_lists_exactly_the_keys_of_values_yaml() -> None:
    """Every block in values.yaml is described, and the schema describes nothing that
    values.yaml does not have (so the schema and the defaults cannot drift apart)."""
    root = schema()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return root["definitions"][ref.rsplit("/", 1)[-1]] if ref else node

    def compare(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        node = resolve(node)
        if "properties" not in node or path.rsplit(".", 1)[-1] in FREE_FORM:
            return
        props = node["properties"]
        assert set(values) <= set(props), (path, set(values) - set(props))
        assert set(props) - set(values) <= OPTIONAL_KEYS, (path, set(props) - set(values))
        for key, value in values.items():
            if isinstance(value, dict):
                compare(value, props[key], f"{path}.{key}" if path else key)

    compare(yaml.safe_load((CHART / "values.yaml").read_text()), root, "")
