"""Serves every vendor's sandbox for the standard suite and writes the configs it reads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_tests.sandbox import VENDORS, start

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def sandbox_configs() -> Iterator[None]:
    servers = []
    for name, module in VENDORS.items():
        if not (HERE / name / "acceptance-test-config.yml").exists():
            continue
        server = start(module.Api(**getattr(module, "SMALL", {})))
        servers.append(server)
        secrets = HERE / name / "secrets"
        secrets.mkdir(exist_ok=True)
        config = module.config(server.url)
        (secrets / "config.json").write_text(json.dumps(config))
        (secrets / "invalid_config.json").write_text(json.dumps(module.invalid_config(server.url)))
    yield
    for server in servers:
        server.stop()


def _docker_engine_runs() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite's image tests need a Docker engine; CI machines have only the client."""
    image_tests = [item for item in items if "docker_image" in item.name]
    if image_tests and not _docker_engine_runs():
        skip = pytest.mark.skip(reason="no Docker engine on this machine")
        for item in image_tests:
            item.add_marker(skip)
