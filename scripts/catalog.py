"""Writes `dist/airbyte-catalog/source-<vendor>/`: one folder per vendor, in the shape Airbyte's
connector catalog takes for a manifest-only source that carries custom components.

Airbyte Cloud runs no custom image and no custom components in the Connector Builder: its
users reach a connector only through the catalog, which takes one manifest per source,
built FROM `source-declarative-manifest`. Each folder is generated from `manifests/`, never
edited by hand (`make catalog`):

    manifest.yaml                       manifests/<vendor>.yaml, as it is
    components.py                       scripts/bundle.py, only the modules this manifest needs
    metadata.yaml                       what Airbyte's metadata schema requires
    acceptance-test-config.yml          the standard tests the catalog's CI runs
    integration_tests/                  integration_tests/examples/<vendor>/ (Airbyte's files)
    icon.svg                            a monogram (the vendors' logos are theirs to give)
    docs/integrations/sources/<vendor>.md  the catalog's page shape, with a changelog

    python -m scripts.catalog [DEST]    # default: dist/airbyte-catalog

`integration_tests/catalog/` runs each folder as the catalog's CI does.
"""

from __future__ import annotations

import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tomllib
import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)

from scripts import bundle

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "dist" / "airbyte-catalog"
# definitionId: the same for a vendor on every run and every machine, so that the catalog
# (and every Airbyte instance that registered it) keeps knowing it as one connector.
NAMESPACE = uuid.UUID("6f0c8a52-3b1e-4d8e-9a57-2c4b1f7e9d31")  # the package's own definitionId
COMPONENT = re.compile(r"source_declarative_manifest\.components\.(\w+)")
URL = re.compile(r"https://[\w.{}-]+")


def vendors() -> list[str]:
    return sorted(p.stem for p in (ROOT / "manifests").glob("*.yaml") if "." not in p.stem)


def cdk_version() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (version,) = [p["version"] for p in lock["package"] if p["name"] == "airbyte-cdk"]
    return str(version)


def package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
               ["project"]["version"])


def title(vendor: str) -> str:
    """The vendor's name as its page spells it (`# LOKE`)."""
    first = (ROOT / "docs" / f"{vendor}.md").read_text(encoding="utf-8").splitlines()[0]
    return first.removeprefix("# ").strip()


def allowed_hosts(text: str) -> list[str]:
    """The hosts the manifest names (its header and defaults); `{cluster}` becomes `*`, the
    wildcard Airbyte's allowedHosts takes."""
    hosts = {urlparse(re.sub(r"\{\w+\}", "WILDCARD", url)).hostname or "" for url in URL.findall(
        "\n".join(line for line in text.splitlines()
                  if line.startswith("#") or "default:" in line or "token_url" in line))}
    hosts = {h.replace("wildcard", "*") for h in hosts if h and not h.endswith("github.com")}
    return sorted(hosts)


def metadata(vendor: str, manifest_text: str) -> dict[str, Any]:
    name = f"source-{vendor}"
    return {
        "metadataSpecVersion": "1.0",
        "data": {
            "allowedHosts": {"hosts": allowed_hosts(manifest_text)},
            "registryOverrides": {"oss": {"enabled": True}, "cloud": {"enabled": True}},
            "remoteRegistries": {"pypi": {"enabled": False, "packageName": f"airbyte-{name}"}},
            "connectorBuildOptions": {
                "baseImage": f"docker.io/airbyte/source-declarative-manifest:{cdk_version()}"},
            "connectorSubtype": "api",
            "connectorType": "source",
            "definitionId": str(uuid.uuid5(NAMESPACE, name)),
            "dockerImageTag": package_version(),
            "dockerRepository": f"airbyte/{name}",
            "documentationUrl": f"https://docs.airbyte.com/integrations/sources/{vendor}",
            "githubIssueLabel": name,
            "icon": "icon.svg",
            "license": "MIT",
            "name": title(vendor),
            "releaseStage": "alpha",
            "supportLevel": "community",
            "tags": ["language:manifest-only", "cdk:low-code"],
            "ab_internal": {"sl": 100, "ql": 100},
        },
    }


def acceptance_test_config(vendor: str) -> str:
    return f"""\
# See [Connector Acceptance Tests](https://docs.airbyte.com/connector-development/testing-connectors/connector-acceptance-tests-reference)
# for more information about how to configure these tests.
# secrets/config.json and secrets/invalid_config.json hold a working and a refused config;
# integration_tests/sample_config.json shows their shape. basic_read reads every stream
# discover offers (the CDK's suite merges the entries of one config into one scenario, and a
# configured_catalog_path there would reach `spec` too).
connector_image: airbyte/source-{vendor}:dev
acceptance_tests:
  spec:
    tests:
      - spec_path: "manifest.yaml"
        config_path: "secrets/config.json"
  connection:
    tests:
      - config_path: "secrets/config.json"
        status: "succeed"
      - config_path: "secrets/invalid_config.json"
        status: "failed"
  discovery:
    tests:
      - config_path: "secrets/config.json"
  basic_read:
    tests:
      - config_path: "secrets/config.json"
        empty_streams: []
"""


def icon(vendor: str) -> str:
    letter = title(vendor)[0].upper()
    return f"""\
<svg xmlns="http://www.w3.org/2000/svg" width="250" height="250" viewBox="0 0 250 250">
  <title>{title(vendor)}</title>
  <circle cx="125" cy="125" r="120" fill="#615EFF"/>
  <text x="125" y="125" dy="0.35em" text-anchor="middle" font-family="sans-serif"
        font-size="140" font-weight="bold" fill="#FFFFFF">{letter}</text>
</svg>
"""


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _pagination(stream: dict[str, Any]) -> str:
    paginator = stream["retriever"].get("paginator") or {}
    strategy = paginator.get("pagination_strategy") or {}
    if not paginator or paginator.get("type") == "NoPagination":
        return "No pagination"
    return str(strategy.get("class_name", strategy.get("type", "DefaultPaginator"))).rsplit(".")[-1]


def _changelog(vendor: str) -> list[tuple[str, str, str]]:
    """The rows of the vendor page's changelog table: (version, date, change)."""
    text = (ROOT / "docs" / f"{vendor}.md").read_text(encoding="utf-8")
    section = text.partition("\n## Changelog")[2]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"\d+\.\d+\.\d+", cells[0]):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def docs_page(vendor: str, manifest: dict[str, Any]) -> str:
    spec = manifest["spec"]["connection_specification"]
    required = set(spec.get("required", []))
    intro = (ROOT / "docs" / f"{vendor}.md").read_text(encoding="utf-8").split("\n\n")[1]
    lines = [
        f"# {title(vendor)}",
        "",
        " ".join(intro.split()),
        "",
        "This connector is a manifest-only connector with custom components, generated by "
        "[source-customers](https://github.com/source-customers/source-customers), whose "
        f"[{title(vendor)} page](https://github.com/source-customers/source-customers/blob/main/"
        f"docs/{vendor}.md) holds its full documentation: how it reads, its errors, privacy "
        "and assumptions.",
        "",
        "## Configuration",
        "",
        "| Input | Type | Description | Default Value |",
        "|-------|------|-------------|---------------|",
    ]
    for key, prop in spec["properties"].items():
        if key == "vendor" or prop.get("airbyte_hidden"):
            continue  # fixed by the manifest (one vendor), or never the user's to set
        name = f"`{key}`" + (" *(required)*" if key in required else "")
        default = prop.get("default", "")
        lines.append(f"| {name} | `{prop.get('type', 'object')}` | "
                     f"{_cell(prop.get('title', key))}. {_cell(prop.get('description', ''))} | "
                     f"{_cell(default) if default != '' else ''} |")
    lines += [
        "",
        "## Streams",
        "",
        "| Stream Name | Primary Key | Pagination | Supports Full Sync | Supports Incremental |",
        "|-------------|-------------|------------|---------------------|----------------------|",
    ]
    for stream in manifest["streams"]:
        key = stream.get("primary_key") or []
        key = [key] if isinstance(key, str) else key
        lines.append(f"| {stream['name']} | {'.'.join(key) if len(key) == 1 else ', '.join(key)} "
                     f"| {_pagination(stream)} | ✅ | "
                     f"{'✅' if stream.get('incremental_sync') else '❌'} |")
    lines += [
        "",
        "## Changelog",
        "",
        "<details>",
        "  <summary>Expand to review</summary>",
        "",
        "| Version | Date | Pull Request | Subject |",
        "|---------|------|--------------|---------|",
    ]
    lines += [f"| {version} | {date} | | {_cell(change)} |"
              for version, date, change in _changelog(vendor)]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def components_for(manifest_text: str) -> str:
    return bundle.build(bundle.modules_for(set(COMPONENT.findall(manifest_text))))


def write(vendor: str, dest: Path) -> Path:
    folder = dest / f"source-{vendor}"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "docs" / "integrations" / "sources").mkdir(parents=True)
    text = (ROOT / "manifests" / f"{vendor}.yaml").read_text(encoding="utf-8")
    resolved = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(text))
    (folder / "manifest.yaml").write_text(text, encoding="utf-8")
    (folder / "components.py").write_text(components_for(text), encoding="utf-8")
    (folder / "metadata.yaml").write_text(
        yaml.safe_dump(metadata(vendor, text), sort_keys=False), encoding="utf-8")
    (folder / "acceptance-test-config.yml").write_text(
        acceptance_test_config(vendor), encoding="utf-8")
    shutil.copytree(ROOT / "integration_tests" / "examples" / vendor,
                    folder / "integration_tests")
    (folder / "icon.svg").write_text(icon(vendor), encoding="utf-8")
    (folder / "docs" / "integrations" / "sources" / f"{vendor}.md").write_text(
        docs_page(vendor, resolved), encoding="utf-8")
    return folder


def main(args: list[str]) -> int:
    dest = Path(args[0]) if args else DEST
    for vendor in vendors():
        folder = write(vendor, dest)
        print(f"wrote {folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
