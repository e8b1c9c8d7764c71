"""The service images, checked statically (no container engine runs here): the one Dockerfile
at the repository root, built once per service with --build-arg SERVICE=<service>. Multi-stage,
a pinned slim Python base, a non-root user, `dialtone <service>` as the entrypoint, only the
service's own extra installed, ports matching the chart, any other SERVICE refused. The
Dockerfile's SERVICE table (a shell `case`) is run here with /bin/sh for each service."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.chart.chart import CHART, COMPONENTS, ROOT

DOCKERFILE = ROOT / "Dockerfile"

# SERVICE build argument (also the `dialtone` subcommand and the chart's component name)
#   -> (extra, Debian packages the final stage installs, chart values block)
SERVICES = {
    "media-gateway": ("media", ["libopus0"], "mediaGateway"),
    "speech-gateway": ("speech", ["espeak-ng", "flite", "libgomp1"], "speechGateway"),
    "conversation-runtime": ("runtime", [], "conversationRuntime"),
    "integration-gateway": ("integration", [], "integrationGateway"),
}
PARAMS = pytest.mark.parametrize("service", sorted(SERVICES))
DEFAULT_CMD = ["--config", "/etc/dialtone/config/config.yaml"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def parse(path: Path) -> Dockerfile:
    """Instructions by stage. Hand-written: the venv has no Dockerfile parser, and joining
    continuation lines and dropping comments is all this file needs."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            stages.append(Stage(base, words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        elif keyword == "ARG" and not stages:
            key, _, default = rest.partition("=")
            args[key.strip()] = default.strip()
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return Dockerfile(args, stages)


@functools.cache
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE)


@dataclass
class Resolved:
    """What the `service` stage wrote for one SERVICE value."""

    extra: str
    packages: list[str]
    entrypoint: Path


def run_service_stage(service: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The `service` stage's RUN, in workdir (its WORKDIR /service), with SERVICE set as the
    build argument sets it."""
    stage = dockerfile().stage("service")
    assert "SERVICE" in stage.all("ARG")
    assert stage.all("WORKDIR") == ["/service"]
    (script,) = stage.all("RUN")
    return subprocess.run(["/bin/sh", "-c", script], cwd=workdir, env={"PATH": os.environ["PATH"], "SERVICE": service},
                          capture_output=True, text=True, timeout=30, check=False)


def resolve(service: str, workdir: Path) -> Resolved:
    result = run_service_stage(service, workdir)
    assert result.returncode == 0, result.stderr
    return Resolved((workdir / "extra").read_text().strip(), (workdir / "packages").read_text().split(),
                    workdir / "entrypoint")


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def packages_of(extra: str) -> set[str]:
    """Distribution names an extra pulls in, following dialtone[...] references."""
    names: set[str] = set()
    for requirement in extras()[extra]:
        inner = re.fullmatch(r"dialtone\[([\w,]+)\]", requirement)
        if inner:
            for sub in inner.group(1).split(","):
                names |= packages_of(sub)
        else:
            names.add(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower())
    return names


def test_one_dockerfile_for_the_chart_services() -> None:
    """The root Dockerfile is the only one, and its SERVICE values are the chart's components."""
    assert sorted(SERVICES) == sorted(COMPONENTS)
    found = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("services/**/Dockerfile"))
    assert found == [], found
    script = dockerfile().stage("service").all("RUN")[0]
    labels = re.findall(r"(?:\bin|;;)\s+([\w-]+)\)", script)
    assert sorted(labels) == sorted(SERVICES), labels


def test_multi_stage_on_a_pinned_slim_python() -> None:
    """A service stage, a build stage and a final stage, all on the same slim Python pinned to
    a patch release (or a digest), never `latest`."""
    image = dockerfile()
    assert [stage.name for stage in image.stages] == ["service", "build", "runtime"]
    bases = {stage.base for stage in image.stages}
    assert len(bases) == 1, bases
    base = bases.pop()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base) or \
        re.fullmatch(r"python@sha256:[0-9a-f]{64}", base), base
    minor = tuple(int(x) for x in re.match(r"python:(\d+)\.(\d+)", base).groups())
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert minor >= tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())


def test_final_stage_runs_as_non_root_and_only_copies_the_environment() -> None:
    """The final stage switches to a numeric non-root user, copies the built environment
    from the build stage, and installs no Python packages itself."""
    final = dockerfile().stages[-1]
    users = final.all("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, users[-1]
    assert "--from=build /opt/dialtone /opt/dialtone" in final.all("COPY")
    assert not any("pip install" in run for run in final.all("RUN"))
    env = " ".join(final.all("ENV"))
    # Friendly to readOnlyRootFilesystem: no bytecode writes, HOME on the /tmp emptyDir.
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env
    assert "PATH=/opt/dialtone/bin:$PATH" in env


@PARAMS
def test_entrypoint_is_the_services_dialtone_command(service: str, tmp_path: Path) -> None:
    """ENTRYPOINT (exec form) is the script the service stage writes for SERVICE, copied onto
    the image's PATH; it execs `dialtone <service>` with the container's arguments, a command
    the CLI really has. The default CMD reads the config where the chart mounts it."""
    from dialtone.cli import build_parser

    final = dockerfile().stages[-1]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["dialtone-service"]
    assert "--from=service /service/entrypoint /opt/dialtone/bin/dialtone-service" in final.all("COPY")
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd == DEFAULT_CMD
    deployment_template = (CHART / "templates" / "_workload.tpl").read_text()
    assert '["--config", "/etc/dialtone/config/config.yaml"]' in deployment_template

    entrypoint = resolve(service, tmp_path).entrypoint
    assert os.access(entrypoint, os.X_OK)
    assert entrypoint.read_text().startswith("#!/bin/sh\n")
    # Run it with a `dialtone` on PATH that records how it was called (exec: same process).
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "dialtone").write_text('#!/bin/sh\necho "$$"; for a in "$@"; do echo "$a"; done\n')
    (stub / "dialtone").chmod(0o755)
    with subprocess.Popen([str(entrypoint), *cmd], env={"PATH": f"{stub}:/usr/bin:/bin"},
                          stdout=subprocess.PIPE, text=True) as process:
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    pid, *argv = out.splitlines()
    assert argv == [service, *cmd]
    assert int(pid) == process.pid, "the script must exec dialtone, not run it as a child"
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert service in commands


@PARAMS
def test_installs_only_its_own_extra(service: str, tmp_path: Path) -> None:
    """SERVICE names the service's extra, and the build installs dialtone with exactly it."""
    extra, _packages, _block = SERVICES[service]
    assert resolve(service, tmp_path).extra == extra
    assert extra in extras()
    build = dockerfile().stage("build")
    runs = " ".join(build.all("RUN"))
    installed = re.findall(r"""pip install\s+["']?\.\[([^\]]*)\]""", runs)
    assert installed == ["$(cat /service/extra)"], installed
    install = next(run for run in build.all("RUN") if "pip install" in run)
    assert install.startswith("--mount=type=bind,from=service,source=/service,target=/service ")


@PARAMS
def test_installs_only_its_own_system_packages(service: str, tmp_path: Path) -> None:
    """The final stage apt-installs the Debian packages the service's wheels load (libopus for
    the media gateway, espeak-ng/flite/libgomp for the speech gateway), and runs no apt-get
    for a service that needs none. Its RUN is run here on the service stage's output, with
    apt-get and rm recording their arguments instead."""
    _extra, packages, _block = SERVICES[service]
    resolved = tmp_path / "service"
    resolved.mkdir()
    assert resolve(service, resolved).packages == packages
    final = dockerfile().stages[-1]
    (apt,) = [run for run in final.all("RUN") if "apt-get" in run]
    mount = "--mount=type=bind,from=service,source=/service,target=/service "
    assert apt.startswith(mount)
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "calls"
    for name in ("apt-get", "rm"):
        (stub / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
        (stub / name).chmod(0o755)
    # set -f: the stub rm gets the glob as written, not this machine's /var/lib/apt/lists.
    script = "set -f; " + apt.removeprefix(mount).replace("/service/", f"{resolved}/")
    subprocess.run(["/bin/sh", "-c", script], env={"PATH": f"{stub}:/usr/bin:/bin"}, check=True, timeout=30)
    calls = log.read_text().splitlines() if log.exists() else []
    if packages:
        assert calls == ["apt-get update",
                         "apt-get install -y --no-install-recommends " + " ".join(packages),
                         "rm -rf /var/lib/apt/lists/*"]
    else:
        assert calls == []


@pytest.mark.parametrize("service", ["", "media_gateway", "speech", "Media-Gateway", "dialtone"])
def test_unknown_service_is_refused(service: str, tmp_path: Path) -> None:
    """Any other SERVICE, or none, stops the build in the service stage (before anything is
    installed) with a message naming the valid values."""
    result = run_service_stage(service, tmp_path)
    assert result.returncode != 0
    assert f"unknown SERVICE '{service}'" in result.stderr
    for name in SERVICES:
        assert name in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_media_gateway_image_carries_no_speech_stack(tmp_path: Path) -> None:
    """The media gateway's extra pulls in none of the speech extra's packages (no whisper), and
    its image gets none of the speech gateway's system packages."""
    media = packages_of("media")
    speech_only = packages_of("speech") - packages_of("media")
    assert speech_only and not (media & speech_only)
    assert not {"faster-whisper", "pywhispercpp", "piper-tts"} & media
    resolved = resolve("media-gateway", tmp_path)
    assert resolved.extra == "media"
    assert not set(resolved.packages) & set(SERVICES["speech-gateway"][1])


def exposed() -> set[str]:
    return {p for e in dockerfile().stages[-1].all("EXPOSE") for p in shlex.split(e)}


@PARAMS
def test_exposed_ports_match_the_chart(service: str) -> None:
    """EXPOSE (one list for every SERVICE) holds the ports the chart's values give the service,
    SIP on both transports."""
    _extra, _packages, block = SERVICES[service]
    ports = yaml.safe_load((CHART / "values.yaml").read_text())[block]["ports"]
    numbers = {p.split("/")[0] for p in exposed()}
    assert {str(v) for v in ports.values()} <= numbers
    if "sip" in ports:
        assert {f"{ports['sip']}/udp", f"{ports['sip']}/tcp"} <= exposed()


def test_exposed_ports_are_only_the_charts() -> None:
    """...and nothing else: every exposed port is one the chart gives some service."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_ports = {str(v) for _e, _p, block in SERVICES.values() for v in values[block]["ports"].values()}
    assert {p.split("/")[0] for p in exposed()} == chart_ports


def test_parser_sees_continuations_and_stages(tmp_path: Path) -> None:
    """The parser joins continued lines, resolves the base ARG and names stages."""
    path = tmp_path / "Dockerfile"
    path.write_text("ARG B=python:3.11.13-slim\nFROM ${B} AS build\n# note\nRUN a \\\n && b\nFROM ${B}\nUSER 1\n")
    parsed = parse(path)
    assert [(s.base, s.name) for s in parsed.stages] == [("python:3.11.13-slim", "build"),
                                                        ("python:3.11.13-slim", None)]
    assert parsed.stages[0].all("RUN") == ["a  && b"]
