"""Generates the catalog folders (`scripts/catalog.py`, what `make catalog` writes) into
build/, serves each vendor's sandbox and writes the secrets their acceptance-test-config.yml
names: the catalog's CI reads them from its secret store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_tests.sandbox import serve_secrets
from scripts import catalog

BUILD = Path(__file__).parent / "build"
FOLDERS = {vendor: catalog.write(vendor, BUILD) for vendor in catalog.vendors()}


@pytest.fixture(scope="session", autouse=True)
def sandbox_secrets() -> Iterator[None]:
    servers = serve_secrets(FOLDERS)
    yield
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without `--connector-image` the suite's image tests build each folder with the CDK's
    Dockerfile template, which it downloads from GitHub: `make image-test` builds and runs
    the folders' images instead (integration_tests/test_images.py)."""
    skip = pytest.mark.skip(reason="the folders' images run in make image-test (test_images.py)")
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent) and "docker_image" in item.name:
            item.add_marker(skip)
