"""The Grafana dashboard ships in the chart and only charts metrics the services export."""

from __future__ import annotations

import json
import re

from tests.chart.chart import CHART, CI_VALUES, ROOT, render

DASHBOARD = CHART / "dashboards" / "dialtone.json"
METRIC_DEFINITION = re.compile(r"""\b(?:counter|gauge|histogram)\(\s*["']([a-z0-9_]+)["']""")


def exported_metrics() -> set[str]:
    """dialtone_* names defined through dialtone.common.metrics anywhere in services/."""
    names = set()
    for path in (ROOT / "services").rglob("*.py"):
        names |= {"dialtone_" + n for n in METRIC_DEFINITION.findall(path.read_text(encoding="utf-8"))}
    return names


def dashboard_metrics() -> set[str]:
    text = json.dumps(json.loads(DASHBOARD.read_text()))
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\bdialtone_[a-z0-9_]+", text)}


def test_dashboard_queries_only_exported_metrics() -> None:
    """Every dialtone_* series on the dashboard is one a service defines."""
    used = dashboard_metrics()
    assert len(used) >= 8
    missing = used - exported_metrics()
    assert not missing, f"the dashboard charts metrics no service exports: {sorted(missing)}"


def test_dashboard_covers_each_service() -> None:
    """Calls, speech, backends and gRPC each have panels."""
    used = dashboard_metrics()
    for prefix in ("dialtone_media_", "dialtone_speech_", "dialtone_backend_", "dialtone_grpc_"):
        assert any(m.startswith(prefix) for m in used), prefix


def test_dashboard_configmap_carries_the_json_and_sidecar_label() -> None:
    """With monitoring.grafanaDashboard.enabled the JSON ships in a labelled ConfigMap."""
    rendered = render([p for p in CI_VALUES if p.stem == "full-values"])
    configmap = rendered.get("ConfigMap", "dt-dialtone-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["dialtone.json"]) == json.loads(DASHBOARD.read_text())
    assert not render([p for p in CI_VALUES if p.stem == "minimal-values"]).has("ConfigMap", "dt-dialtone-dashboard")
