"""`source-customers` exactly as installed, with waits cut short for property-based tests.

Run as a script (`python integration_tests/any_answer/launch.py read --config ...`), so that
`source_customers` is the installed package, not the checkout. Three changes, nothing else:

1. Backoff waits are skipped: `time.sleep` called by the `backoff` library, the CDK's HTTP
   layer or `source_customers` returns at once (every retry still happens, over real HTTP).
   Any other sleep (an API budget pacing requests, a thread pool polling) really sleeps.
2. Every requester's connect and read timeout in the loaded manifests becomes
   `ANY_ANSWER_DEADLINE` seconds (default 1), and so does `DEFAULT_DEADLINE_SECONDS`
   (runtime/deadline.py)
   (the deadline of requests sent without a timeout) where it exists.
3. Then `source_customers.__main__.run()` runs, exactly like the installed command.

This file imports nothing from the tests, so it can run outside the checkout's path.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

_REAL_SLEEP = time.sleep
_BACKOFF_CALLERS = ("backoff.", "airbyte_cdk.sources.streams.http.", "source_customers.")
_TIMEOUT_KEYS = ("read_timeout_in_seconds", "connect_timeout_in_seconds")


def _sleep(seconds: float) -> None:
    caller = str(sys._getframe(1).f_globals.get("__name__", ""))
    if not caller.startswith(_BACKOFF_CALLERS):
        _REAL_SLEEP(seconds)


def _shorten(node: Any, deadline: float) -> None:
    if isinstance(node, dict):
        for key in _TIMEOUT_KEYS:
            if key in node:
                node[key] = deadline
        for value in node.values():
            _shorten(value, deadline)
    elif isinstance(node, list):
        for value in node:
            _shorten(value, deadline)


def main() -> None:
    deadline = float(os.environ.get("ANY_ANSWER_DEADLINE", "1"))
    # As the command does, before anything imports the CDK.
    from source_customers import serializer_schemas

    serializer_schemas.defer()
    from source_customers import vendors
    from source_customers.components import capillary
    from source_customers.runtime import deadline as request_deadline

    shipped = vendors.load_manifest

    def load_manifest(vendor: str) -> dict[str, Any]:
        manifest = shipped(vendor)
        _shorten(manifest, deadline)
        return manifest

    vendors.load_manifest = load_manifest
    # The deadline of a request that set none, and of Capillary's token request.
    request_deadline.DEFAULT_DEADLINE_SECONDS = deadline
    capillary.DEFAULT_DEADLINE_SECONDS = deadline
    from source_customers import run as run_module

    run_module.load_manifest = load_manifest  # imported by name there
    time.sleep = _sleep
    from source_customers.__main__ import run

    run()


if __name__ == "__main__":
    main()
