"""Local stand-ins for the vendor APIs: see server.py, and one module per vendor.

A vendor module provides `Api` (a `VendorApi` subclass), `config(url)` (a connector config
for it) and `SECRETS` (every credential value it accepts, for leak checks).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from integration_tests.sandbox import capillary, loke, malomo, okendo
from integration_tests.sandbox.server import Server, VendorApi

VENDORS: dict[str, ModuleType] = {"loke": loke, "okendo": okendo, "capillary": capillary,
                                  "malomo": malomo}


def start(api: VendorApi) -> Server:
    """Serves `api` on a free port of 127.0.0.1 and tells it its own public URL."""
    server = Server(api).start()
    api.public_url = server.url
    return server


def serve_secrets(folders: dict[str, Path]) -> list[Server]:
    """For the CDK's standard suite: serves each vendor's small sandbox and writes the
    `secrets/config.json` and `secrets/invalid_config.json` its acceptance-test-config.yml
    names, in the vendor's folder. The caller stops the servers."""
    servers = []
    for name, folder in folders.items():
        module = VENDORS[name]
        server = start(module.Api(**getattr(module, "SMALL", {})))
        servers.append(server)
        secrets = folder / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "config.json").write_text(json.dumps(module.config(server.url)))
        (secrets / "invalid_config.json").write_text(
            json.dumps(module.invalid_config(server.url)))
    return servers
