"""The service images, checked statically (no container engine runs here): multi-stage,
a pinned slim Python base, a non-root user, `dialtone <service>` as the entrypoint, only
the service's own extra installed, ports matching the chart."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.chart.chart import CHART, ROOT

# service folder -> (`dialtone` subcommand, extra, chart values block)
IMAGES = {
    "media_gateway": ("media-gateway", "media", "mediaGateway"),
    "speech_gateway": ("speech-gateway", "speech", "speechGateway"),
    "conversation_runtime": ("conversation-runtime", "runtime", "conversationRuntime"),
    "integration_gateway": ("integration-gateway", "integration", "integrationGateway"),
}
PARAMS = pytest.mark.parametrize("folder", sorted(IMAGES))


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


def parse(path: Path) -> Dockerfile:
    """Instructions by stage. Hand-written: the venv has no Dockerfile parser, and joining
    continuation lines and dropping comments is all these files need."""
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


def dockerfile(folder: str) -> Dockerfile:
    return parse(ROOT / "services" / folder / "Dockerfile")


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


@PARAMS
def test_multi_stage_on_a_pinned_slim_python(folder: str) -> None:
    """A build stage and a final stage, both on the same slim Python pinned to a patch
    release (or a digest), never `latest`."""
    image = dockerfile(folder)
    assert len(image.stages) >= 2
    bases = {stage.base for stage in image.stages}
    assert len(bases) == 1, bases
    base = bases.pop()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base) or \
        re.fullmatch(r"python@sha256:[0-9a-f]{64}", base), base
    minor = tuple(int(x) for x in re.match(r"python:(\d+)\.(\d+)", base).groups())
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert minor >= tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())


@PARAMS
def test_final_stage_runs_as_non_root_and_only_copies_the_environment(folder: str) -> None:
    """The final stage switches to a numeric non-root user, copies the built environment
    from the build stage, and installs no Python packages itself."""
    final = dockerfile(folder).stages[-1]
    users = final.all("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, users[-1]
    assert any(c.startswith("--from=build ") for c in final.all("COPY"))
    assert not any("pip install" in run for run in final.all("RUN"))
    env = " ".join(final.all("ENV"))
    # Friendly to readOnlyRootFilesystem: no bytecode writes, HOME on the /tmp emptyDir.
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env


@PARAMS
def test_entrypoint_is_the_services_dialtone_command(folder: str) -> None:
    """ENTRYPOINT (exec form) is `dialtone <service>`, a command the CLI really has, and the
    default CMD reads the config where the chart mounts it."""
    from dialtone.cli import build_parser

    command, _extra, _values = IMAGES[folder]
    final = dockerfile(folder).stages[-1]
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["dialtone", command]
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert command in commands
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd == ["--config", "/etc/dialtone/config/config.yaml"]
    deployment_template = (CHART / "templates" / "_workload.tpl").read_text()
    assert '["--config", "/etc/dialtone/config/config.yaml"]' in deployment_template


@PARAMS
def test_installs_only_its_own_extra(folder: str) -> None:
    """The build installs dialtone with exactly the service's extra."""
    _command, extra, _values = IMAGES[folder]
    runs = " ".join(dockerfile(folder).stages[0].all("RUN"))
    installed = re.findall(r"""pip install\s+["']?\.\[([\w,]+)\]""", runs)
    assert installed == [extra], installed
    assert extra in extras()


def test_media_gateway_image_carries_no_speech_stack() -> None:
    """The media gateway's extra pulls in none of the speech extra's packages (no whisper)."""
    media = packages_of("media")
    speech_only = packages_of("speech") - packages_of("media")
    assert speech_only and not (media & speech_only)
    assert not {"faster-whisper", "pywhispercpp", "piper-tts"} & media
    runs = " ".join(run for stage in dockerfile("media_gateway").stages for run in stage.all("RUN"))
    assert "speech" not in runs and "whisper" not in runs


@PARAMS
def test_exposed_ports_match_the_chart(folder: str) -> None:
    """EXPOSE lists the ports the chart's values give the service."""
    _command, _extra, block = IMAGES[folder]
    ports = yaml.safe_load((CHART / "values.yaml").read_text())[block]["ports"]
    exposed = {p.split("/")[0] for e in dockerfile(folder).stages[-1].all("EXPOSE") for p in shlex.split(e)}
    assert {str(v) for v in ports.values()} == exposed


def test_parser_sees_continuations_and_stages(tmp_path: Path) -> None:
    """The parser joins continued lines, resolves the base ARG and names stages."""
    path = tmp_path / "Dockerfile"
    path.write_text("ARG B=python:3.11.13-slim\nFROM ${B} AS build\n# note\nRUN a \\\n && b\nFROM ${B}\nUSER 1\n")
    parsed = parse(path)
    assert [(s.base, s.name) for s in parsed.stages] == [("python:3.11.13-slim", "build"),
                                                        ("python:3.11.13-slim", None)]
    assert parsed.stages[0].all("RUN") == ["a  && b"]
