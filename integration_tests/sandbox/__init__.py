"""Local stand-ins for the vendor APIs: see server.py, and one module per vendor.

A vendor module provides `Api` (a `VendorApi` subclass), `config(url)` (a connector config
for it) and `SECRETS` (every credential value it accepts, for leak checks).
"""

from __future__ import annotations

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
