"""The platform's components file (manifests/components.py) is what the modules make now,
runs without this package, and holds every component the manifests name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import bundle
from source_customers import components

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_components_file_is_what_the_modules_make() -> None:
    assert bundle.OUTPUT.read_text(encoding="utf-8") == bundle.build(), (
        "manifests/components.py is stale: run `make components` and commit it.")


def test_every_module_of_the_package_that_the_runner_needs_is_bundled() -> None:
    # What the components import of the package, the bundle must hold.
    imported = set()
    for module in bundle.MODULES:
        text = (ROOT / "source_customers" / f"{module}.py").read_text()
        imported |= {m.replace(".", "/") for m in
                     re.findall(r"^from source_customers\.(\S+) import", text, re.M)}
    assert imported <= set(bundle.MODULES)


def test_the_components_file_runs_without_the_package_and_names_every_component() -> None:
    names = sorted(components.__all__)
    probe = (
        "import importlib.util, sys\n"
        "sys.modules['source_customers'] = None  # importing it would fail\n"
        "spec = importlib.util.spec_from_file_location("
        "'source_declarative_manifest.components', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(' '.join(n for n in sys.argv[2:] if hasattr(module, n)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(bundle.OUTPUT), *names],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == names


def test_the_package_names_what_the_manifests_name() -> None:
    named = {name for path in (ROOT / "manifests").glob("*.yaml") for name in re.findall(
        r"source_declarative_manifest\.components\.(\w+)", path.read_text())}
    assert named == set(components.__all__)


def test_two_modules_defining_one_name_stop_the_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MODULES", ("masking", "masking"))
    with pytest.raises(SystemExit, match="defined in both masking and masking"):
        bundle.build()
