"""uv.lock, the one lock every install comes from, checked against what uses it.

- the lock is the one uv makes from pyproject.toml as it stands, and pins every dependency
  pyproject declares at a version its specifier admits;
- the virtualenv these tests run in holds exactly the lock's versions (for this Python), and
  the package itself as a wheel would install it;
- the Dockerfile installs the lock's runtime pins, hash-checked, and the package without
  resolving anything;
- the Makefile re-installs when the lock changes, and uses the uv pyproject.toml names;
- scripts/python.sh picks an interpreter the toolchain supports, or says in one line which
  Python to install; its versions are the ones requires-python admits.

SOURCE_CUSTOMERS_LOCK names another lock to hold the virtualenv to (`make test-newest-cdk`
installs from a copy of uv.lock with the newest CDK).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPOSITORY = Path(__file__).resolve().parents[1]
LOCK = Path(os.environ.get("SOURCE_CUSTOMERS_LOCK") or REPOSITORY / "uv.lock")
PROJECT = "source-customers"
SCRIPT = REPOSITORY / "scripts" / "python.sh"
# Minor versions a Python could have, to enumerate the ones a specifier admits.
MINORS = [f"3.{minor}" for minor in range(6, 30)]


@cache
def lock() -> dict[str, Any]:
    return tomllib.loads(LOCK.read_text())


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def locked(name: str) -> list[dict[str, Any]]:
    """The lock's entries for a package: one per version (uv forks by Python version)."""
    return [p for p in lock()["package"] if p["name"] == canonicalize_name(name)]


def root() -> dict[str, Any]:
    (entry,) = locked(PROJECT)
    return entry


def declared() -> dict[str, list[Requirement]]:
    """pyproject's requirements by extra ("" for the package's own dependencies)."""
    project = pyproject()["project"]
    groups = {"": project["dependencies"], **project.get("optional-dependencies", {})}
    return {extra: [Requirement(r) for r in requirements] for extra, requirements in groups.items()}


def python_environment(minor: str, extra: str = "") -> dict[str, str]:
    environment = {key: str(value) for key, value in default_environment().items()}
    environment.update(python_version=minor, python_full_version=f"{minor}.0", extra=extra)
    return environment


def supported_minors() -> list[str]:
    admitted = SpecifierSet(pyproject()["project"]["requires-python"])
    return [minor for minor in MINORS if admitted.contains(f"{minor}.0")]


# --- the lock and pyproject.toml ------------------------------------------------------------

def test_lock_is_made_from_this_pyproject() -> None:
    """What uv checks before using the lock (`uv export --locked`), checked without uv."""
    project = pyproject()["project"]
    assert SpecifierSet(lock()["requires-python"]) == SpecifierSet(project["requires-python"])
    assert root()["version"] == project["version"]

    def table(requirements: list[tuple[str, Requirement]]) -> set[tuple[Any, ...]]:
        # Markers compared by what they decide for each supported Python and each extra:
        # uv rewrites python_version as python_full_version.
        rows = set()
        for extra, requirement in requirements:
            decisions = tuple(
                (group == extra or extra == "")
                and (requirement.marker is None
                     or requirement.marker.evaluate(python_environment(minor, group)))
                for minor in supported_minors() for group in ["", *declared()])
            rows.add((canonicalize_name(requirement.name), str(requirement.specifier),
                      tuple(sorted(requirement.extras)), decisions))
        return rows

    ours = [(extra, r) for extra, requirements in declared().items() for r in requirements]
    theirs = []
    for entry in root()["metadata"]["requires-dist"]:
        text = entry["name"] + (f"[{','.join(entry['extras'])}]" if entry.get("extras") else "")
        text += entry.get("specifier", "")
        requirement = Requirement(text + (f"; {entry['marker']}" if "marker" in entry else ""))
        extras = re.findall(r"extra == '([^']+)'", entry.get("marker", ""))
        theirs.append((extras[0] if extras else "", requirement))
    assert table(theirs) == table(ours), "uv.lock is stale: run `make lock` and commit uv.lock"
    assert sorted(root()["metadata"].get("provides-extras", [])) == sorted(
        e for e in declared() if e)


def test_every_declared_dependency_is_locked_at_a_version_it_admits() -> None:
    for extra, requirements in declared().items():
        for requirement in requirements:
            entries = locked(requirement.name)
            assert entries, f"{requirement} ({extra or 'dependencies'}) is not in uv.lock"
            for entry in entries:
                assert requirement.specifier.contains(entry["version"], prereleases=True), (
                    f"uv.lock pins {entry['name']} {entry['version']}, outside {requirement}")


def test_every_locked_package_has_hashes_from_pypi() -> None:
    """pip installs the lock with --require-hashes: every file needs one, from PyPI only."""
    for entry in lock()["package"]:
        if entry["name"] == PROJECT:
            continue
        assert entry["source"] == {"registry": "https://pypi.org/simple"}, entry["name"]
        files = entry.get("wheels", []) + ([entry["sdist"]] if "sdist" in entry else [])
        assert files, f"{entry['name']}: no files in uv.lock"
        for file in files:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", file["hash"]), (entry["name"], file)


def test_the_setuptools_the_builds_use_is_a_locked_runtime_package() -> None:
    """The Makefile and the Dockerfile build the package without isolation: with the
    setuptools the lock installs among the runtime pins, which must satisfy build-system."""
    (requirement,) = [Requirement(r) for r in pyproject()["build-system"]["requires"]]
    assert requirement.name == "setuptools"
    runtime = closure(extras=(), minor="3.11")
    assert requirement.specifier.contains(runtime["setuptools"])


# --- the virtualenv the tests run in --------------------------------------------------------

def closure(extras: tuple[str, ...], minor: str | None = None) -> dict[str, str]:
    """{package: version} the lock installs for the project with `extras`, on this Python
    (or on Python `minor`), following each dependency's marker."""
    environment = {key: str(value) for key, value in default_environment().items()}
    if minor:
        environment = python_environment(minor)
    environment["extra"] = ""
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in lock()["package"]:
        entries[entry["name"]].append(entry)

    def target(dependency: dict[str, Any]) -> dict[str, Any]:
        candidates = entries[dependency["name"]]
        if "version" in dependency:
            candidates = [c for c in candidates if c["version"] == dependency["version"]]
        (entry,) = candidates
        return entry

    versions: dict[str, str] = {}
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    todo = [(root(), tuple(extras))]
    while todo:
        entry, wanted = todo.pop()
        dependencies = list(entry.get("dependencies", []))
        for extra in wanted:
            dependencies += entry.get("optional-dependencies", {}).get(extra, [])
        for dependency in dependencies:
            if "marker" in dependency and not Marker(dependency["marker"]).evaluate(environment):
                continue
            package = target(dependency)
            key = (package["name"], package["version"], tuple(dependency.get("extra", ())))
            if key in seen:
                continue
            seen.add(key)
            versions[package["name"]] = package["version"]
            todo.append((package, key[2]))
    return versions


def test_the_virtualenv_runs_the_locked_versions() -> None:
    """Every package the lock installs for the tests (the dependencies and the dev extra), on
    this Python, at the lock's version: `make` installed exactly the lock."""
    wrong, missing = [], []
    for name, version in sorted(closure(extras=("dev",)).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if Version(installed) != Version(version):
            wrong.append(f"{name} {installed} (uv.lock: {version})")
    assert not missing and not wrong, (
        f"not as {LOCK.name} pins: missing {missing}, other versions {wrong}; `make install` "
        "installs the lock")


def test_the_package_is_installed_as_a_wheel_not_editable() -> None:
    distribution = metadata.distribution(PROJECT)
    assert distribution.version == pyproject()["project"]["version"]
    direct = json.loads(distribution.read_text("direct_url.json") or "{}")
    assert not direct.get("dir_info", {}).get("editable"), direct


def test_every_package_under_source_customers_ships() -> None:
    """setuptools ships only the packages pyproject lists (the manifests' mapping needs a list)."""
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPOSITORY).parts)
             for p in (REPOSITORY / "source_customers").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found <= listed, (
        f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml")
    assert "source_customers.manifests" in listed


# --- the Dockerfile -------------------------------------------------------------------------

@cache
def docker_instructions() -> tuple[tuple[str, str], ...]:
    text = re.sub(r"\\\n", " ", (REPOSITORY / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(arguments.split())))
    return tuple(pairs)


def commands(run: str) -> list[list[str]]:
    """A RUN line's commands, split on && and ;."""
    return [shlex.split(part) for part in re.split(r"&&|;", run) if part.strip()]


def pip_installs() -> list[list[str]]:
    return [c for keyword, arguments in docker_instructions() if keyword == "RUN"
            for c in commands(arguments) if c[:2] == ["pip", "install"]
            or c[1:4] == ["-m", "pip", "install"]]


def uv_export() -> list[str]:
    (command,) = [c for keyword, arguments in docker_instructions() if keyword == "RUN"
                  for c in commands(arguments) if c[0].endswith("/uv") and c[1:2] == ["export"]]
    return command


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def makefile_variable(name: str) -> str:
    values: list[str] = re.findall(rf"^{name} := (\S+)$", (REPOSITORY / "Makefile").read_text(),
                                   re.M)
    (value,) = values
    return value


def test_image_installs_the_runtime_pins_of_the_lock_with_their_hashes() -> None:
    export = uv_export()
    assert "--locked" in export or "--frozen" in export
    assert "--no-emit-project" in export and "--no-dev" in export
    assert not {"--extra", "--all-extras", "--all-groups", "--group"} & set(export), (
        "the image installs the runtime dependencies only")
    requirements = option(export, "--output-file")
    (from_lock,) = [c for c in pip_installs() if "-r" in c]
    assert option(from_lock, "-r") == requirements
    assert "--require-hashes" in from_lock and "--no-deps" in from_lock
    # uv reads pyproject.toml and uv.lock: both are in the image before the export runs.
    position = next(i for i, (k, a) in enumerate(docker_instructions())
                    if k == "RUN" and "export" in a)
    copied = [a.split()[:-1] for k, a in docker_instructions()[:position] if k == "COPY"]
    assert {"pyproject.toml", "uv.lock"} <= {name for names in copied for name in names}


def test_image_installs_the_package_without_resolving_anything() -> None:
    installs = pip_installs()
    for install in installs:
        assert "--no-deps" in install, f"{shlex.join(install)} resolves outside the lock"
    assert "." in installs[-1] and "--no-build-isolation" in installs[-1]


def test_image_makefile_and_pyproject_use_one_uv() -> None:
    version = makefile_variable("UV_VERSION")
    assert pyproject()["tool"]["uv"]["required-version"] == f"=={version}"
    (bootstrap,) = [c for c in pip_installs() if any(w.startswith("uv==") for w in c)]
    assert f"uv=={version}" in bootstrap


def test_image_export_yields_the_runtime_closure(tmp_path: Path) -> None:
    """The Dockerfile's own `uv export`, run on what the image holds at that point (offline,
    with the uv `make` installs in the virtualenv's tools/): the runtime packages, hashed."""
    uv = shutil.which("uv", path=str(Path(sys.prefix) / "tools" / "bin"))
    if uv is None:
        pytest.skip("no uv in this virtualenv's tools/ (`make install` puts it in .venv)")
    if LOCK != REPOSITORY / "uv.lock":
        pytest.skip("checked against the repository's uv.lock")
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copyfile(REPOSITORY / name, tmp_path / name)
    export = uv_export()
    output = tmp_path / "requirements.txt"
    arguments = export[1:]
    arguments[arguments.index("--output-file") + 1] = str(output)
    subprocess.run([uv, *arguments], cwd=tmp_path, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "UV_OFFLINE": "1", "UV_PYTHON": sys.executable})
    text = output.read_text()
    pins = {}
    for name, version, marker in re.findall(r"^([a-z0-9._-]+)==([^ ;\\]+)(?: ; ([^\\\n]+))?",
                                            text, re.M):
        if not marker or Marker(marker).evaluate():
            pins[name] = version
    runtime = closure(extras=())
    assert pins.keys() >= runtime.keys()
    assert {name: pins[name] for name in runtime} == runtime
    for dev_only in ("pytest", "mypy", "ruff", "hypothesis", "airbyte", "dlt"):
        assert dev_only not in pins, f"{dev_only} would ship in the image"
    blocks = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[-1].strip())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


# --- the Makefile ---------------------------------------------------------------------------

def dry_run(venv: Path, *options: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    result = subprocess.run([make, "--dry-run", *options, f"VENV={venv}", "install"],
                            cwd=REPOSITORY, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_a_changed_lock_or_pyproject_reinstalls(tmp_path: Path) -> None:
    """With every stamp newer than the sources, `make install` has nothing to do; when uv.lock
    (or pyproject.toml) is newer, it exports the lock again and re-installs from it."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "tools").mkdir()
    tools = f"tools/.uv-{makefile_variable('UV_VERSION')}-pip-{makefile_variable('PIP_VERSION')}"
    future = time.time() + 3600
    for name in ("pyvenv.cfg", tools, "requirements-dev.txt", ".installed"):
        (venv / name).touch()
        os.utime(venv / name, (future, future))
        future += 1
    assert "pip install" not in dry_run(venv)
    for changed in ("uv.lock", "pyproject.toml"):
        planned = dry_run(venv, f"--what-if={changed}")
        assert "export" in planned and "--locked" in planned
        assert "--require-hashes --no-deps -r" in planned
        assert "--no-deps --no-build-isolation" in planned


def test_test_pythons_covers_the_range_pyproject_declares() -> None:
    (pythons,) = re.findall(r"^PYTHONS := (.+)$", (REPOSITORY / "Makefile").read_text(), re.M)
    assert pythons.split() == supported_minors()


# --- scripts/python.sh ----------------------------------------------------------------------

def fake_python(folder: Path, name: str, version: str, venv: bool = True) -> Path:
    """An executable that answers scripts/python.sh's question as Python `version` would."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{version} {"yes" if venv else "no"} $0"\n')
    path.chmod(0o755)
    return path


def pick(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """scripts/python.sh on a machine whose only Pythons are the fakes in tmp_path/bin."""
    environment = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home"),
                   "XDG_DATA_HOME": str(tmp_path / "home" / "data")}
    return subprocess.run(["/bin/sh", str(SCRIPT), *arguments], env=environment,
                          capture_output=True, text=True, timeout=30)


def test_versions_are_the_ones_requires_python_admits() -> None:
    for purpose in ("test", "demo"):
        result = subprocess.run(["/bin/sh", str(SCRIPT), "versions", purpose],
                                capture_output=True, text=True, check=True)
        versions = result.stdout.split()
        assert versions[0] == "3.11", "CI's Python first"
        if purpose == "test":
            assert sorted(versions, key=Version) == supported_minors()
        else:
            (pyairbyte,) = declared()["demo"]
            assert sorted(versions, key=Version) == [
                m for m in supported_minors()
                if pyairbyte.marker is None or pyairbyte.marker.evaluate(python_environment(m))]


def test_only_python_3_13_the_demo_says_in_one_line_which_python_to_install(
        tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3", "3.13")
    result = pick(tmp_path, "pick", "demo")
    assert result.returncode == 1
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("make demo needs Python 3.11 or 3.12"), line
    assert "PyAirbyte needs Python < 3.13" in line and "python3 is 3.13" in line
    assert "install Python 3.11" in line


def test_only_python_3_13_the_tests_run_on_it(tmp_path: Path) -> None:
    python = fake_python(tmp_path / "bin", "python3", "3.13")
    result = pick(tmp_path, "pick", "test")
    assert (result.returncode, result.stdout) == (0, f"{python}\n")


def test_too_old_a_python_says_which_to_install(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3", "3.9")
    result = pick(tmp_path, "pick", "test")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert "make test needs Python 3.11, 3.12 or 3.13" in line
    assert "python3 is 3.9" in line and "install Python 3.11" in line


def test_a_supported_python_is_preferred_to_python3(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3", "3.13")
    python312 = fake_python(tmp_path / "bin", "python3.12", "3.12")
    for purpose in ("test", "demo"):
        assert pick(tmp_path, "pick", purpose).stdout == f"{python312}\n"


def test_a_python_without_venv_says_which_package_to_install(tmp_path: Path) -> None:
    fake_python(tmp_path / "bin", "python3.11", "3.11", venv=False)
    result = pick(tmp_path, "pick", "demo")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert "python3.11-venv" in line


def test_a_pyenv_version_not_on_path_is_found(tmp_path: Path) -> None:
    """pyenv's shims run only the selected version: the others are found in its folder."""
    fake_python(tmp_path / "bin", "python3", "3.13")
    python = fake_python(tmp_path / "home" / ".pyenv" / "versions" / "3.12.1" / "bin",
                         "python3.12", "3.12")
    assert pick(tmp_path, "find", "3.12").stdout == f"{python}\n"
    assert pick(tmp_path, "pick", "demo").stdout == f"{python}\n"
    missing = pick(tmp_path, "find", "3.10")
    assert (missing.returncode, missing.stdout) == (1, "no Python 3.10 on this machine\n")


def test_make_demo_with_only_python_3_13_stops_with_one_line(tmp_path: Path) -> None:
    """The whole of what `make demo` prints on a fresh clone whose only Python is 3.13."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    fake_python(tmp_path / "bin", "python3", "3.13")
    for tool in ("find",):  # what the Makefile itself runs before it needs a Python
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", tmp_path / "bin" / tool)
    environment = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home")}
    result = subprocess.run([make, "demo", f"VENV={tmp_path / 'venv'}"], cwd=REPOSITORY,
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1, lines
    assert "make demo needs Python 3.11 or 3.12" in lines[0]
    assert not (tmp_path / "venv").exists()
