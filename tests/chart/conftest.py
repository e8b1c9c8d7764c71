"""The chart suite. The one test that needs a real cluster is marked `kubernetes`; it is
deselected (reported as deselected, never silently passed) unless KUBECONFIG is set."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KUBECONFIG"):
        return
    deselected = [item for item in items if item.get_closest_marker("kubernetes")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("kubernetes")]
