"""Sandbox fixtures: each test gets its own vendor API on a fresh port of 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration_tests.sandbox import start
from integration_tests.sandbox.server import Server, VendorApi


@pytest.fixture
def serve() -> Iterator[Callable[[VendorApi], Server]]:
    """Starts the given API; stops every server the test started when it ends."""
    servers: list[Server] = []

    def _serve(api: VendorApi) -> Server:
        servers.append(start(api))
        return servers[-1]

    yield _serve
    for server in servers:
        server.stop()


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (retry waits)")
