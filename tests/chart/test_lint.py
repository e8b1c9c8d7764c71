"""`helm lint --strict` passes on every ci/*-values.yaml, and mistakes in values fail with a
message that names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.chart import CHART, CI_VALUES, HelmFailed, helm, template_args

MINIMAL = CHART / "ci" / "minimal-values.yaml"


def test_ci_values_cover_the_required_scenarios() -> None:
    """The ci folder holds the minimal, the full and the hostNetwork scenarios."""
    names = {p.name for p in CI_VALUES}
    assert {"minimal-values.yaml", "full-values.yaml", "hostnetwork-values.yaml"} <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_lint_strict_passes(values: Path) -> None:
    """helm lint --strict reports no error and no template `fail` for the scenario."""
    out = helm("lint", "--strict", str(CHART), "--namespace", "voice", "--values", str(values))
    assert "0 chart(s) failed" in out
    assert "[ERROR]" not in out and "[WARNING]" not in out
    # In lint mode helm only logs a template's `fail` as INFO; it must not happen either.
    assert "Fail:" not in out, out


TYPOS = [
    # (--set that misspells a key, the path the error must name)
    ("speechGateway.replica=3", "speechGateway: Additional property replica is not allowed"),
    ("mediaGateway.autoscaling.maxReplica=4", "mediaGateway.autoscaling: Additional property maxReplica"),
    ("mediaGateway.publicService.externalTraficPolicy=Local",
     "mediaGateway.publicService: Additional property externalTraficPolicy"),
    ("conversationRuntime.podDisruptionBudget.maxUnavailble=1",
     "conversationRuntime.podDisruptionBudget: Additional property maxUnavailble"),
    ("integrationGateway.credentials.existingSecrets=x",
     "integrationGateway.credentials: Additional property existingSecrets"),
    ("externalRedis.uri=redis://r:6379", "externalRedis: Additional property uri"),
    ("mediagateway.hostNetwork=true", "Additional property mediagateway is not allowed"),
    ("monitoring.serviceMonitor.enable=true", "monitoring.serviceMonitor: Additional property enable"),
]


@pytest.mark.parametrize(("setting", "message"), TYPOS, ids=[t[0].split("=")[0] for t in TYPOS])
def test_typo_fails_template_naming_the_key(setting: str, message: str) -> None:
    """helm template refuses a misspelt key and says which one."""
    with pytest.raises(HelmFailed) as caught:
        helm(*template_args([MINIMAL], [setting]))
    assert message in str(caught.value)


def test_typo_fails_lint_naming_the_key() -> None:
    """helm lint --strict refuses a misspelt key and says which one."""
    with pytest.raises(HelmFailed) as caught:
        helm("lint", "--strict", str(CHART), "--values", str(MINIMAL), "--set", "speechGateway.replica=3")
    assert "speechGateway: Additional property replica is not allowed" in str(caught.value)


WRONG_TYPES = [
    ("mediaGateway.rtp.portLow=seventy", "mediaGateway.rtp.portLow"),
    ("mediaGateway.publicService.type=ExternalName", "mediaGateway.publicService.type"),
    ("log.level=LOUD", "log.level"),
    ("externalRedis.url=http://redis:6379", "externalRedis.url"),
]


@pytest.mark.parametrize(("setting", "key"), WRONG_TYPES, ids=[t[1] for t in WRONG_TYPES])
def test_wrong_value_fails_naming_the_key(setting: str, key: str) -> None:
    """A value of the wrong type or outside its set is refused with its key."""
    with pytest.raises(HelmFailed) as caught:
        helm(*template_args([MINIMAL], [setting]))
    assert key in str(caught.value)


# A public SIP/RTP Service serves one media gateway at most.
ONE_MEDIA_GATEWAY = ["mediaGateway.autoscaling.enabled=false", "mediaGateway.replicas=1"]

CHART_RULES = [
    ([], "dialtone needs Redis on a cluster"),
    (["externalRedis.url=redis://r:6379/0", "redis.enabled=true"], "set either redis.enabled or externalRedis"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.publicService.enabled=true",
      "mediaGateway.publicService.type=NodePort", *ONE_MEDIA_GATEWAY], "must lie within 30000-32767"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.publicService.enabled=true",
      "mediaGateway.rtp.portHigh=30000", *ONE_MEDIA_GATEWAY], "more than 1000 ports"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.publicService.enabled=true"],
     "(LoadBalancer) with up to 10 replicas: the Service sends every RTP port to every pod"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.publicService.enabled=true",
      "mediaGateway.publicService.type=NodePort", "mediaGateway.publicService.sipNodePort=30060",
      "mediaGateway.rtp.portLow=31000", "mediaGateway.rtp.portHigh=31010", "mediaGateway.autoscaling.enabled=false",
      "mediaGateway.replicas=2"], "(NodePort) with up to 2 replicas"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.publicService.enabled=true",
      "mediaGateway.publicService.type=NodePort", "mediaGateway.rtp.portLow=31000",
      "mediaGateway.rtp.portHigh=31010", *ONE_MEDIA_GATEWAY],
     "NodePort needs publicService.sipNodePort (or sip.advertisedPort)"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.hostNetwork=true"],
     "mediaGateway.hostNetwork with networkPolicy.enabled needs networkPolicy.mediaNodeCidrs"),
    (["externalRedis.url=redis://r:6379/0", "externalRedis.sentinel.addresses={s:26379}", "externalRedis.cluster=true"],
     "externalRedis: sentinel.addresses or cluster, not both"),
    (["redis.enabled=true", "externalRedis.cluster=true"], "the in-chart one (redis.enabled) is a single server"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.hostNetwork=true",
      "mediaGateway.publicService.enabled=true", *ONE_MEDIA_GATEWAY], "use hostNetwork or publicService, not both"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.rtp.portLow=21000", "mediaGateway.rtp.portHigh=21001"],
     "[portLow, portHigh) = [21000, 21001) holds no RTP/RTCP port pair"),
    (["externalRedis.url=redis://r:6379/0", "speechGateway.autoscaling.minReplicas=5",
      "speechGateway.autoscaling.maxReplicas=2"], "speechGateway.autoscaling.minReplicas (5) is above maxReplicas"),
    (["externalRedis.url=redis://r:6379/0", "integrationGateway.credentials.create=true"],
     "integrationGateway.credentials.create needs credentials.values"),
    (["externalRedis.url=redis://r:6379/0", "dialogs.files.bad\\ name\\.txt=x"], "is not a dialog file name"),
    (["externalRedis.url=redis://r:6379/0", "mediaGateway.webrtc.enabled=true"],
     "mediaGateway.webrtc.enabled needs webrtc.accessKeySecret"),
]


@pytest.mark.parametrize(("sets", "message"), CHART_RULES, ids=[m for _, m in CHART_RULES])
def test_inconsistent_values_fail_with_a_reason(sets: list[str], message: str) -> None:
    """Values that pass the schema but cannot work together are refused with the reason."""
    with pytest.raises(HelmFailed) as caught:
        helm(*template_args([], sets))
    assert message in str(caught.value)


def test_kube_version_below_the_supported_range_is_refused() -> None:
    """Chart.yaml's kubeVersion refuses clusters older than the oldest tested version."""
    with pytest.raises(HelmFailed) as caught:
        helm(*template_args([MINIMAL], kube_version="1.26.9"))
    assert "kubeVersion" in str(caught.value) or "incompatible" in str(caught.value)
