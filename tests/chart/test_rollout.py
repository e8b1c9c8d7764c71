"""A config change rolls exactly the pods that read it; dialogs, services and credentials
arrive where the services look for them."""

from __future__ import annotations

import base64

import yaml

from tests.chart.chart import CHART, COMPONENTS, ROOT, helm, name, render, template_args

FULL = CHART / "ci" / "full-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"
HOSTNET = CHART / "ci" / "hostnetwork-values.yaml"


def checksums(*sets: str) -> dict[str, str]:
    rendered = render([MINIMAL], sets)
    return {c: rendered.deployment(c)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for c in COMPONENTS}


def test_a_config_change_rolls_only_that_service() -> None:
    """Changing one service's config changes its checksum and no other's."""
    before = checksums()
    after = checksums("speechGateway.config.extra_key=1")
    assert [c for c in COMPONENTS if before[c] != after[c]] == ["speech-gateway"]


def test_shared_settings_roll_every_service() -> None:
    """The log level is in every config, so every service rolls."""
    before = checksums()
    after = checksums("log.level=DEBUG")
    assert all(before[c] != after[c] for c in COMPONENTS)


def test_a_dialog_change_rolls_the_runtime() -> None:
    """Editing a dialog file changes the runtime's checksum."""
    before = checksums("dialogs.files.a\\.yaml=one")
    after = checksums("dialogs.files.a\\.yaml=two")
    assert [c for c in COMPONENTS if before[c] != after[c]] == ["conversation-runtime"]


def test_user_config_is_merged_over_the_chart_keys() -> None:
    """`config` adds keys and may override the chart's, deep-merged."""
    rendered = render([MINIMAL], ["mediaGateway.config.sip.port=5070", "mediaGateway.config.routing.default=x"])
    config = yaml.safe_load(rendered.config_text("media-gateway"))
    assert config["sip"]["port"] == 5070 and config["sip"]["host"] == "0.0.0.0"
    assert config["routing"] == {"default": "x"}


def test_dialogs_are_one_configmap_per_file_projected_into_one_directory() -> None:
    """Each dialog file becomes its own ConfigMap; with the existing ones they are projected
    into the directory the runtime's `dialogs` setting names."""
    rendered = render([FULL])
    dialog_maps = [c for c in rendered.of_kind("ConfigMap") if c["metadata"]["labels"].get("dialtone.dev/dialog")]
    assert sorted(k for c in dialog_maps for k in c["data"]) == ["main-menu.yaml", "order_status.yaml"]
    assert all(len(c["data"]) == 1 for c in dialog_maps)
    spec = rendered.deployment("conversation-runtime")["spec"]["template"]["spec"]
    projected = next(v for v in spec["volumes"] if v["name"] == "dialogs")["projected"]["sources"]
    assert sorted(s["configMap"]["name"] for s in projected) == sorted(
        [c["metadata"]["name"] for c in dialog_maps] + ["acme-extra-dialogs"])
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "dialogs")
    assert yaml.safe_load(rendered.config_text("conversation-runtime"))["dialogs"] == [mount["mountPath"]]


def test_runtime_uses_redis_from_a_secret() -> None:
    """The runtime's store is Redis, its URL a config override taken from a Secret."""
    rendered = render([FULL])
    config = yaml.safe_load(rendered.config_text("conversation-runtime"))
    assert config["store"]["kind"] == "redis"
    env = {e["name"]: e for e in rendered.container("conversation-runtime")["env"]}
    ref = env["DIALTONE_CONVERSATION_RUNTIME__STORE__URL"]["valueFrom"]["secretKeyRef"]
    secret = rendered.get("Secret", ref["name"])
    url = base64.b64decode(secret["data"][ref["key"]]).decode()
    redis = rendered.get("Service", "dt-dialtone-redis")
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert url == f"redis://:{password}@{redis['metadata']['name']}:6379/0"


def test_integration_gateway_gets_services_file_and_credentials() -> None:
    """The services file is mounted where services_file points, and each credential is both
    an environment variable and a file."""
    rendered = render([FULL])
    configmap = rendered.get("ConfigMap", name("integration-gateway"))
    config = yaml.safe_load(configmap["data"]["config.yaml"])
    assert config["services_file"] == "/etc/dialtone/config/services.yaml"
    services = yaml.safe_load(configmap["data"]["services.yaml"])["services"]
    assert services["orders"]["base_url"] == "https://orders.example.com/api"
    container = rendered.container("integration-gateway")
    secret_name = container["envFrom"][0]["secretRef"]["name"]
    secret = rendered.get("Secret", secret_name)
    assert base64.b64decode(secret["data"]["ORDERS_API_KEY"]).decode() == "not-a-real-key"
    assert {"name": "credentials", "mountPath": "/etc/dialtone/secrets", "readOnly": True} in container["volumeMounts"]


def test_existing_services_configmap_and_secret_are_used_as_given() -> None:
    """With existing ConfigMap/Secret names the chart creates neither and mounts them."""
    rendered = render([HOSTNET])
    config = yaml.safe_load(rendered.config_text("integration-gateway"))
    assert config["services_file"] == "/etc/dialtone/services/backends.yaml"
    spec = rendered.deployment("integration-gateway")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["services"]["configMap"]["name"] == "acme-backends"
    assert volumes["credentials"]["secret"]["secretName"] == "acme-backend-credentials"
    assert not [s for s in rendered.of_kind("Secret") if "credentials" in s["metadata"]["name"]]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["DIALTONE_INTEGRATION_GATEWAY__STORE__REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "dialtone-redis", "key": "redis-url"}


def test_images_follow_registry_repository_and_tag() -> None:
    """Images are <registry>/<repository>/<service>:<tag>, overridable per service."""
    rendered = render([FULL])
    assert rendered.container("media-gateway")["image"] == \
        "registry.example.com/voice/dialtone/media-gateway:0.1.0-rc1"
    assert rendered.container("speech-gateway")["image"] == \
        "registry.example.com/voice/speech-gateway-gpu:0.1.0-cuda"
    assert render([MINIMAL]).container("integration-gateway")["image"] == "dialtone/integration-gateway:0.1.0"


def test_the_documented_install_puts_a_dialog_file_in_place() -> None:
    """docs/kubernetes.md's install line (--set-file of a packaged dialog, Redis from an
    existing Secret) renders the dialog's text unchanged into its ConfigMap."""
    dialog = ROOT / "services" / "conversation_runtime" / "examples" / "order_status.yaml"
    args = template_args([], ["externalRedis.existingSecret=dialtone-redis"])
    args += ["--set-file", f"dialogs.files.order_status\\.yaml={dialog}"]
    rendered = [d for d in yaml.safe_load_all(helm(*args)) if d]
    maps = [d for d in rendered if d["kind"] == "ConfigMap" and "order_status.yaml" in d.get("data", {})]
    assert len(maps) == 1
    assert maps[0]["data"]["order_status.yaml"].rstrip("\n") == dialog.read_text().rstrip("\n")
    assert "--set-file dialogs.files.order_status\\\\.yaml=" in (ROOT / "docs" / "kubernetes.md").read_text()
