"""The vendors' manifests, and the one spec that covers them all."""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from airbyte_cdk.models import ConnectorSpecification

DOCUMENTATION_URL = "https://github.com/source-customers/source-customers#readme"


def _manifest_dir() -> Traversable:
    try:
        return files("source_customers.manifests")
    except ModuleNotFoundError:
        # Imported from a checkout rather than an installed wheel: the repository's folder.
        return Path(__file__).resolve().parent.parent / "manifests"


MANIFEST_DIR = _manifest_dir()


def _shipped() -> tuple[str, ...]:
    names = (p.name for p in MANIFEST_DIR.iterdir())
    return tuple(sorted(n.removesuffix(".yaml") for n in names if n.endswith(".yaml")))


VENDORS: tuple[str, ...] = _shipped()


@cache
def _manifest_text(vendor: str) -> str:
    return (MANIFEST_DIR / f"{vendor}.yaml").read_text(encoding="utf-8")


def load_manifest(vendor: str) -> dict[str, Any]:
    """A fresh copy of the vendor's manifest: the CDK mutates what it is given."""
    manifest: dict[str, Any] = yaml.safe_load(_manifest_text(vendor))
    return manifest


def combined_spec() -> ConnectorSpecification:
    """One spec for every vendor: `vendor` selects the branch holding that vendor's fields.

    Each branch is the vendor manifest's own `connection_specification`, so the manifests
    stay the single source of truth.
    """
    branches = []
    for vendor in VENDORS:
        branch = copy.deepcopy(load_manifest(vendor)["spec"]["connection_specification"])
        branch.pop("$schema", None)
        branch["properties"]["vendor"] = {"title": "Vendor", "type": "string", "const": vendor}
        branch["required"] = ["vendor", *branch.get("required", [])]
        branches.append(branch)
    return ConnectorSpecification(
        documentationUrl=DOCUMENTATION_URL,
        connectionSpecification={
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Customers (" + ", ".join(VENDORS) + ")",
            "type": "object",
            "required": ["vendor"],
            "properties": {
                "vendor": {
                    "title": "Vendor",
                    "description": "Whose API to read; the other fields follow from it.",
                    "type": "string",
                    "enum": list(VENDORS),
                    "order": 0,
                }
            },
            "oneOf": branches,
        },
    )
