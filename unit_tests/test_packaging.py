"""The connector image and the wheel, checked without a Docker engine (CI has none).

What `docker build` would do is replayed from the Dockerfile itself: the base image it
names, its entry point, the paths it COPYs through `.dockerignore`, and a wheel built from
exactly those paths.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import tomllib
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = "source-customers"
# Each connector of the package: its console script, and the metadata Airbyte registers it by.
# One Dockerfile builds either (the build argument CONNECTOR).
CONNECTORS = {"source-customers": "metadata.yaml",
              "destination-customers": "destination-metadata.yaml"}


@cache
def instructions() -> tuple[tuple[str, str], ...]:
    """The Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = (REPOSITORY / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return tuple(pairs)


def arguments(keyword: str) -> list[str]:
    return [a for k, a in instructions() if k == keyword]


def copies() -> list[tuple[list[str], str]]:
    """Each COPY as (sources, destination); flags such as --chown are dropped."""
    result = []
    for line in arguments("COPY"):
        words = json.loads(line) if line.startswith("[") else line.split()
        words = [w for w in words if not w.startswith("--")]
        result.append((words[:-1], words[-1]))
    return result


@cache
def ignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    """`.dockerignore` as (excludes, regex) rules, in order; the last rule that matches wins."""
    rules = []
    for raw in (REPOSITORY / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                token, re.escape(token))
        rules.append((excludes, re.compile(regex)))
    return tuple(rules)


def ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: it or a parent matches."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for excludes, regex in ignore_rules():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = excludes
    return verdict


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def metadata(file: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPOSITORY / file).read_text())["data"]
    return data


@pytest.mark.parametrize("file", CONNECTORS.values())
def test_image_is_built_on_the_exact_base_image_metadata_names(file: str) -> None:
    base = metadata(file)["connectorBuildOptions"]["baseImage"]
    assert re.fullmatch(r"docker\.io/airbyte/python-connector-base:[\d.]+@sha256:[0-9a-f]{64}",
                        base), base
    # The base is a build argument (make image-test builds on a stand-in where Airbyte's
    # registry is out of reach); its default is the base metadata.yaml names.
    assert arguments("FROM") == ["${BASE_IMAGE}"]
    assert build_argument("BASE_IMAGE") == base


def test_image_runs_as_the_non_root_user_airbyte() -> None:
    assert arguments("USER") == ["airbyte"]
    # After the installs: they write to the system Python, which only root may.
    keywords = [k for k, _ in instructions()]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


@pytest.mark.parametrize("file", CONNECTORS.values())
def test_image_tag_in_metadata_is_the_package_version(file: str) -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert metadata(file)["dockerImageTag"] == project["version"]


def build_argument(name: str) -> str:
    """The default the Dockerfile gives a build argument (`ARG NAME=default`)."""
    (default,) = [a.partition("=")[2] for a in arguments("ARG") if a.partition("=")[0] == name]
    return default


def test_image_runs_the_console_script_the_build_argument_names() -> None:
    assert build_argument("CONNECTOR") == CONSOLE_SCRIPT  # a plain build is the source
    # Airbyte's platform reads the command from AIRBYTE_ENTRYPOINT; the entry point runs it.
    assert 'AIRBYTE_ENTRYPOINT="${CONNECTOR}"' in arguments("ENV")
    (entrypoint,) = [json.loads(a) for a in arguments("ENTRYPOINT")]
    assert entrypoint[:2] == ["/bin/sh", "-c"] and '"$AIRBYTE_ENTRYPOINT"' in entrypoint[2]
    # The build refuses any CONNECTOR but the package's console scripts.
    (check,) = [a for a in arguments("RUN") if "${CONNECTOR}" in a]
    allowed = re.search(r'case "\$\{CONNECTOR\}" in ([\w|-]+)\)', check)
    assert allowed and set(allowed.group(1).split("|")) == set(CONNECTORS)
    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert set(CONNECTORS) <= set(project["scripts"])
    for script in CONNECTORS:
        module, _, name = project["scripts"][script].partition(":")
        assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize(("script", "title"), [("source-customers", "Customers ("),
                                               ("destination-customers", "Customers write-back")])
def test_image_entrypoint_runs_each_connector_with_the_arguments_given(script: str,
                                                                        title: str) -> None:
    """The ENTRYPOINT as Docker runs it, with AIRBYTE_ENTRYPOINT as the build would set it."""
    (entrypoint,) = [json.loads(a) for a in arguments("ENTRYPOINT")]
    bin_folder = Path(sys.executable).parent
    assert (bin_folder / script).exists(), f"{script} is not installed in this virtualenv"
    env = {**os.environ, "AIRBYTE_ENTRYPOINT": script,
           "PATH": os.pathsep.join([str(bin_folder), os.environ.get("PATH", "")])}
    done = subprocess.run([*entrypoint, "spec"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    (spec,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert spec["type"] == "SPEC"
    assert spec["spec"]["connectionSpecification"]["title"].startswith(title)


def test_destination_metadata_declares_a_data_activation_destination() -> None:
    source, destination = metadata(CONNECTORS["source-customers"]), metadata(
        CONNECTORS["destination-customers"])
    assert source["connectorType"] == "source"
    assert destination["connectorType"] == "destination"
    # Airbyte offers its activation screens (object, sync mode, matching key) only then.
    assert destination["supportsDataActivation"] is True
    assert destination["connectorSubtype"] == "api"
    for script, file in CONNECTORS.items():
        assert metadata(file)["dockerRepository"] == f"airbyte/{script}", file
    assert str(uuid.UUID(destination["definitionId"])) == destination["definitionId"]
    assert destination["definitionId"] != source["definitionId"]
    for key in ("releaseStage", "supportLevel", "license", "connectorBuildOptions"):
        assert destination[key] == source[key], key
    # The spec's documentationUrl and the metadata's are one address.
    from source_customers.destination.cli import DOCUMENTATION_URL
    assert destination["documentationUrl"] == DOCUMENTATION_URL


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    sources = [source for paths, _ in copies() for source in paths]
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert (REPOSITORY / source).exists(), f"COPY {source}: no such path"
        assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
        if (REPOSITORY / source).is_dir():
            folder = REPOSITORY / source
            shipped = [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]
            shipped += list(folder.rglob("*.yaml"))
            left_out = [str(p.relative_to(REPOSITORY)) for p in shipped
                        if ignored(str(p.relative_to(REPOSITORY)))]
            assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out}"


def test_build_context_leaves_out_the_virtualenv_and_secrets() -> None:
    assert ignored(".venv/bin/python")
    assert ignored("integration_tests/standard/loke/secrets/config.json")
    assert ignored("source_customers/__pycache__/run.cpython-311.pyc")


def build_context(folder: Path) -> Path:
    """What the image's WORKDIR holds before `pip install .`: the COPYs, through .dockerignore."""
    for sources, destination in copies():
        for source in sources:
            origin = REPOSITORY / source
            files = [origin] if origin.is_file() else [p for p in origin.rglob("*") if p.is_file()]
            for file in files:
                relative = file.relative_to(REPOSITORY)
                if ignored(str(relative)):
                    continue
                inside = file.relative_to(origin) if origin.is_dir() else Path(file.name)
                target = folder / destination / inside
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
    return folder


def test_wheel_built_from_the_image_context_ships_the_code_and_every_manifest(
        tmp_path: Path) -> None:
    context = build_context(tmp_path / "context")
    # The venv's setuptools (airbyte-cdk needs a recent one) builds it, offline.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(context)],
                   check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("source_customers-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        console = archive.read(entry_points).decode()
    manifests = {f"source_customers/manifests/{p.name}"
                 for p in (REPOSITORY / "manifests").glob("*.yaml")}
    # Every module, subpackages included (pyproject lists each package: test_lock.py).
    code = {p.relative_to(REPOSITORY).as_posix()
            for p in (REPOSITORY / "source_customers").rglob("*.py")
            if "__pycache__" not in p.parts}
    assert manifests, "no manifests in the repository"
    assert manifests <= names, f"missing from the wheel: {sorted(manifests - names)}"
    assert code <= names, f"missing from the wheel: {sorted(code - names)}"
    project = pyproject()["project"]
    assert isinstance(project, dict)
    for script in CONNECTORS:
        assert f"{script} = {project['scripts'][script]}" in console
