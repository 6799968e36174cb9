"""The CDK's standard connector tests (spec, check, discover, read), once per vendor manifest.

Each vendor's folder here holds its `acceptance-test-config.yml`; the manifest and the
components file are injected exactly as the platform's declarative runner injects them.
"""

from __future__ import annotations

from pathlib import Path

from airbyte_cdk.test.standard_tests.declarative_sources import DeclarativeSourceTestSuite
from boltons.typeutils import classproperty

REPOSITORY = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent


def suite_for(vendor: str) -> type[DeclarativeSourceTestSuite]:
    class Suite(DeclarativeSourceTestSuite):
        @classmethod
        def get_connector_root_dir(cls) -> Path:
            return HERE / vendor

        @classproperty
        def manifest_yaml_path(cls) -> Path:
            return REPOSITORY / "manifests" / f"{vendor}.yaml"

        @classproperty
        def components_py_path(cls) -> Path:
            return REPOSITORY / "manifests" / "components.py"

    Suite.__name__ = Suite.__qualname__ = f"TestStandard{vendor.title()}"
    return Suite


for _vendor in sorted(p.name for p in HERE.iterdir()
                      if (p / "acceptance-test-config.yml").exists()):
    globals()[f"TestStandard{_vendor.title()}"] = suite_for(_vendor)
