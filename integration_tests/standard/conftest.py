"""Serves every vendor's sandbox for the standard suite and writes the configs it reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_tests.sandbox import VENDORS, serve_secrets

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def sandbox_configs() -> Iterator[None]:
    servers = serve_secrets({name: HERE / name for name in VENDORS
                             if (HERE / name / "acceptance-test-config.yml").exists()})
    yield
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's image tests build an image per folder from its metadata.yaml: this
    repository's layout has none per vendor. The images are tested by `make image-test`
    (integration_tests/test_images.py), whatever engine this machine runs."""
    skip = pytest.mark.skip(reason="the images run in make image-test (test_images.py)")
    for item in items:
        if item.path.is_relative_to(HERE) and "docker_image" in item.name:
            item.add_marker(skip)
