"""`make catalog` (scripts/catalog.py): one folder per vendor in the shape Airbyte's catalog
takes for a manifest-only source with custom components."""

from __future__ import annotations

import ast
import filecmp
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import catalog

VENDORS = catalog.vendors()
# Every field Airbyte's metadata schema requires of a connector.
REQUIRED = ("name", "definitionId", "connectorType", "connectorSubtype", "dockerRepository",
            "dockerImageTag", "license", "documentationUrl", "releaseStage")
FILES = ("manifest.yaml", "components.py", "metadata.yaml", "acceptance-test-config.yml",
         "icon.svg")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("catalog")
    return {vendor: catalog.write(vendor, dest) for vendor in VENDORS}


def data(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "metadata.yaml").read_text())["data"]
    return loaded


def test_catalog_has_one_folder_per_source_manifest(built: dict[str, Path]) -> None:
    assert VENDORS == ["capillary", "loke", "malomo", "okendo"]  # not the *.writes.yaml
    for vendor, folder in built.items():
        assert folder.name == f"source-{vendor}"
        for name in FILES:
            assert (folder / name).is_file(), name
        assert (folder / "docs" / "integrations" / "sources" / f"{vendor}.md").is_file()
        assert (folder / "manifest.yaml").read_text() == (
            catalog.ROOT / "manifests" / f"{vendor}.yaml").read_text()


@pytest.mark.parametrize("vendor", VENDORS)
def test_metadata_has_every_field_the_schema_requires_for_a_manifest_only_source(
        built: dict[str, Path], vendor: str) -> None:
    fields = data(built[vendor])
    assert all(fields.get(key) for key in REQUIRED), [k for k in REQUIRED if not fields.get(k)]
    assert fields["connectorType"] == "source"
    assert fields["dockerRepository"] == f"airbyte/source-{vendor}"
    assert "language:manifest-only" in fields["tags"]
    assert fields["connectorBuildOptions"]["baseImage"] == (
        f"docker.io/airbyte/source-declarative-manifest:{catalog.cdk_version()}")
    assert re.fullmatch(r"\d+\.\d+\.\d+", catalog.cdk_version())
    assert fields["allowedHosts"]["hosts"]
    assert all("127.0.0.1" not in h and "github" not in h for h in fields["allowedHosts"]["hosts"])


def test_definition_ids_are_stable_and_distinct(built: dict[str, Path],
                                                tmp_path: Path) -> None:
    ids = {vendor: data(folder)["definitionId"] for vendor, folder in built.items()}
    again = {vendor: data(catalog.write(vendor, tmp_path))["definitionId"] for vendor in VENDORS}
    assert ids == again
    assert len(set(ids.values())) == len(ids)
    package = yaml.safe_load((catalog.ROOT / "metadata.yaml").read_text())["data"]
    assert package["definitionId"] not in ids.values()
    for value in ids.values():
        assert uuid.UUID(value).version == 5


def test_a_second_run_writes_the_same_files(built: dict[str, Path], tmp_path: Path) -> None:
    for vendor, folder in built.items():
        again = catalog.write(vendor, tmp_path)
        comparison = filecmp.dircmp(folder, again)
        assert not comparison.diff_files and not comparison.left_only, vendor


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}


@pytest.mark.parametrize("vendor", VENDORS)
def test_components_hold_what_the_manifest_names_and_no_other_vendors_quirks(
        built: dict[str, Path], vendor: str) -> None:
    folder = built[vendor]
    named = set(catalog.COMPONENT.findall((folder / "manifest.yaml").read_text()))
    defined = _defined(folder / "components.py")
    assert named and named <= defined, named - defined
    vendor_classes = {"loke": "SharedClientCredentialsOAuthenticator",
                      "capillary": "CapillaryTokenAuthenticator",
                      "okendo": "OkendoCustomerLookup"}
    for other, cls in vendor_classes.items():
        assert (cls in defined) == (other == vendor), cls
    # The file ends by installing the runtime, as manifests/components.py does.
    assert (folder / "components.py").read_text().rstrip().endswith("install()")


@pytest.mark.parametrize("vendor", VENDORS)
def test_docs_page_lists_streams_and_the_vendor_pages_changelog(
        built: dict[str, Path], vendor: str) -> None:
    page = (built[vendor] / "docs" / "integrations" / "sources" / f"{vendor}.md").read_text()
    manifest = yaml.safe_load((built[vendor] / "manifest.yaml").read_text())
    assert page.startswith(f"# {catalog.title(vendor)}\n")
    for heading in ("## Configuration", "## Streams", "## Changelog"):
        assert heading in page
    for stream in manifest["streams"]:
        name = stream.get("name") or stream.get("$parameters", {}).get("name")
        if name:
            assert f"| {name} |" in page
    rows = catalog._changelog(vendor)
    assert rows
    for version, date, _ in rows:
        assert f"| {version} | {date} |" in page
    assert "connection_check" not in page  # hidden from users
    assert "../shared" not in page
