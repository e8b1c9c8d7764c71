"""How SIP and RTP reach the media gateways, and how they drain."""

from __future__ import annotations

import yaml

from tests.chart.chart import CHART, name, render

FULL = CHART / "ci" / "full-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"
HOSTNET = CHART / "ci" / "hostnetwork-values.yaml"
NODEPORT = CHART / "ci" / "nodeport-values.yaml"
MEDIA = "media-gateway"


def test_default_is_cluster_internal() -> None:
    """Without hostNetwork or publicService there is no external SIP Service and no host port."""
    rendered = render([MINIMAL])
    assert not rendered.has("Service", name(MEDIA) + "-sip")
    assert rendered.deployment(MEDIA)["spec"]["template"]["spec"].get("hostNetwork") is None


def test_sip_listens_on_udp_and_tcp() -> None:
    """The pod exposes SIP on UDP and TCP at the port the config binds."""
    rendered = render([MINIMAL])
    ports = {(p["name"], p["protocol"]): p["containerPort"] for p in rendered.container(MEDIA)["ports"]}
    config = yaml.safe_load(rendered.config_text(MEDIA))
    assert ports[("sip-udp", "UDP")] == ports[("sip-tcp", "TCP")] == config["sip"]["port"] == 5060
    assert ports[("http", "TCP")] == config["control_http"]["port"]
    assert config["control_http"]["enabled"] is True


def test_pod_ip_is_advertised_by_default() -> None:
    """The gateway binds 0.0.0.0, so without a public address the pod's IP goes into SDP."""
    rendered = render([MINIMAL])
    config = yaml.safe_load(rendered.config_text(MEDIA))
    assert config["sip"]["host"] == config["rtp"]["host"] == "0.0.0.0"
    assert "advertised_host" not in config["sip"]
    env = {e["name"]: e for e in rendered.container(MEDIA)["env"]}
    assert env["DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] \
        == "status.podIP"


def test_hostnetwork_binds_on_the_node_one_gateway_per_node() -> None:
    """hostNetwork: ClusterFirstWithHostNet DNS, a required anti-affinity per node, and the
    node's IP as the advertised address."""
    rendered = render([HOSTNET])
    spec = rendered.deployment(MEDIA)["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    terms = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
    assert terms[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == MEDIA
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] \
        == "status.hostIP"
    assert spec["nodeSelector"] == {"dialtone.dev/media": "true"}
    assert not rendered.has("Service", name(MEDIA) + "-sip")
    # Only the media gateway uses the host's network.
    for component in ("speech-gateway", "conversation-runtime", "integration-gateway"):
        assert "hostNetwork" not in rendered.deployment(component)["spec"]["template"]["spec"]


def test_load_balancer_lists_sip_and_every_rtp_port_with_local_policy() -> None:
    """publicService LoadBalancer: SIP UDP+TCP and one UDP port per RTP port of the range,
    externalTrafficPolicy Local, and the LB IP advertised in SIP/SDP."""
    rendered = render([FULL])
    service = rendered.get("Service", name(MEDIA) + "-sip")
    spec = service["spec"]
    assert spec["type"] == "LoadBalancer" and spec["externalTrafficPolicy"] == "Local"
    assert spec["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    sip = [(p["protocol"], p["port"]) for p in spec["ports"] if p["name"].startswith("sip-")]
    assert sorted(sip) == [("TCP", 5060), ("UDP", 5060)]
    rtp = [p for p in spec["ports"] if p["name"].startswith("rtp-")]
    config = yaml.safe_load(rendered.config_text(MEDIA))
    assert [p["port"] for p in rtp] == list(range(config["rtp"]["port_low"], config["rtp"]["port_high"]))
    assert all(p["protocol"] == "UDP" and p["targetPort"] == p["port"] for p in rtp)
    assert config["sip"]["advertised_host"] == "203.0.113.10"
    assert config["sip"]["allowed_networks"] == ["198.51.100.0/24"]
    container = rendered.container(MEDIA)
    assert "DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST" not in {e["name"] for e in container.get("env", [])}


def test_node_port_keeps_rtp_ports_equal_to_node_ports() -> None:
    """publicService NodePort: each RTP port is its own node port (the port put in SDP), and
    SIP takes the configured node port."""
    rendered = render([NODEPORT])
    spec = rendered.get("Service", name(MEDIA) + "-sip")["spec"]
    assert spec["type"] == "NodePort"
    rtp = [p for p in spec["ports"] if p["name"].startswith("rtp-")]
    assert len(rtp) == 20 and all(p["nodePort"] == p["port"] == p["targetPort"] for p in rtp)
    assert {p["nodePort"] for p in spec["ports"] if p["name"].startswith("sip-")} == {30060}


def test_drain_waits_for_calls_before_the_pod_is_killed() -> None:
    """The media gateway gets a preStop pause, then its own drain period (new INVITEs get 503,
    active calls finish), within terminationGracePeriodSeconds."""
    rendered = render([MINIMAL])
    pod = rendered.deployment(MEDIA)["spec"]["template"]["spec"]
    config = yaml.safe_load(rendered.config_text(MEDIA))
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + config["shutdown_grace_s"]
    assert config["shutdown_grace_s"] >= 300


def test_autoscaling_on_active_calls_and_queue_depth() -> None:
    """The media gateway can scale on active calls and the speech gateway on its queue depth
    (Pods metrics), besides or instead of CPU."""
    media = render([HOSTNET]).get("HorizontalPodAutoscaler", name(MEDIA))["spec"]["metrics"]
    assert {m["type"] for m in media} == {"Resource", "Pods"}
    pods = next(m for m in media if m["type"] == "Pods")["pods"]
    assert pods["metric"]["name"] == "dialtone_media_active_calls"
    assert pods["target"] == {"type": "AverageValue", "averageValue": "200"}
    speech = render([FULL]).get("HorizontalPodAutoscaler", name("speech-gateway"))["spec"]["metrics"]
    assert [m["type"] for m in speech] == ["Pods"]
    assert speech[0]["pods"]["metric"]["name"] == "dialtone_speech_pool_queue_depth"


def test_cpu_is_the_default_autoscaling_metric() -> None:
    """With defaults, every service has an HPA on CPU utilisation."""
    rendered = render([MINIMAL])
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert len(rendered.of_kind("HorizontalPodAutoscaler")) == 4


def test_media_gateways_scale_down_slowly_by_default() -> None:
    """Draining takes minutes, so the default HPA removes at most one gateway per 5 minutes."""
    rendered = render([MINIMAL])
    behavior = rendered.get("HorizontalPodAutoscaler", name(MEDIA))["spec"]["behavior"]["scaleDown"]
    assert behavior["stabilizationWindowSeconds"] >= 300
    assert behavior["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


def test_hostnetwork_keeps_the_control_plane_off_public_interfaces() -> None:
    """On the host's network, gRPC, control HTTP and metrics bind the node's InternalIP (the env
    overrides listenAddress), SIP and RTP stay on every interface; the media gateway gets no
    NetworkPolicy (none applies to host-networked pods) and the speech gateway admits the media
    nodes' CIDRs on its gRPC port."""
    rendered = render([HOSTNET])
    env = {e["name"]: e for e in rendered.container(MEDIA)["env"]}
    for key in ("GRPC", "METRICS", "CONTROL_HTTP"):
        assert env[f"DIALTONE_MEDIA_GATEWAY__{key}__HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    config = yaml.safe_load(rendered.config_text(MEDIA))
    assert config["sip"]["host"] == config["rtp"]["host"] == "0.0.0.0"
    assert "DIALTONE_MEDIA_GATEWAY__GRPC__HOST" not in {e["name"] for e in render([MINIMAL]).container(MEDIA)["env"]}
    assert not rendered.has("NetworkPolicy", name(MEDIA))
    speech = rendered.get("NetworkPolicy", name("speech-gateway"))["spec"]["ingress"]
    from_nodes = [r for r in speech if any("ipBlock" in p for p in r.get("from", []))]
    assert from_nodes == [{"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                           "ports": [{"port": 7002, "protocol": "TCP"}]}]


def test_rollout_strategy_fits_the_networking() -> None:
    """hostNetwork: the old gateway goes first (maxSurge 0), since a surge pod finds no node with
    free SIP/RTP ports; otherwise the new gateway is ready before an old one drains; a value wins."""
    def strategy(values: object) -> dict[str, object]:
        return render([values]).deployment(MEDIA)["spec"]["strategy"]

    assert strategy(HOSTNET) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert strategy(MINIMAL) == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert strategy(FULL) == {"type": "Recreate"}
    assert "strategy" not in render([MINIMAL]).deployment("speech-gateway")["spec"]


def test_media_pods_are_not_evicted_by_the_cluster_autoscaler() -> None:
    """cluster-autoscaler leaves a node with a media gateway alone, and a drain fits within its
    default maximum graceful termination (600 s)."""
    rendered = render([MINIMAL])
    template = rendered.deployment(MEDIA)["spec"]["template"]
    assert template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert template["spec"]["terminationGracePeriodSeconds"] <= 600
    assert "cluster-autoscaler.kubernetes.io/safe-to-evict" not in \
        rendered.deployment("speech-gateway")["spec"]["template"]["metadata"]["annotations"]


def test_node_port_advertises_the_node_and_its_sip_node_port() -> None:
    """NodePort: Contact/Via carry the node's IP and the SIP node port, not the pod's IP and 5060."""
    rendered = render([NODEPORT])
    env = {e["name"]: e for e in rendered.container(MEDIA)["env"]}
    assert env["DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST"]["valueFrom"]["fieldRef"]["fieldPath"] \
        == "status.hostIP"
    assert yaml.safe_load(rendered.config_text(MEDIA))["sip"]["advertised_port"] == 30060


def test_stun_server_gives_each_gateway_its_own_public_address() -> None:
    """sip.stunServer: the gateway asks it at start (sip.advertised_host_stun) instead of advertising
    the node's InternalIP; an explicit advertisedAddress still wins."""
    stun = "mediaGateway.sip.stunServer=stun.example.net:3478"
    rendered = render([HOSTNET], [stun])
    config = yaml.safe_load(rendered.config_text(MEDIA))
    assert config["sip"]["advertised_host_stun"] == "stun.example.net:3478"
    env = {e["name"] for e in rendered.container(MEDIA)["env"]}
    assert "DIALTONE_MEDIA_GATEWAY__SIP__ADVERTISED_HOST" not in env
    pinned = render([HOSTNET], [stun, "mediaGateway.sip.advertisedAddress=203.0.113.9"])
    config = yaml.safe_load(pinned.config_text(MEDIA))
    assert config["sip"]["advertised_host"] == "203.0.113.9" and "advertised_host_stun" not in config["sip"]
