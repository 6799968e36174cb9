"""Serve every vendor's sandbox until interrupted: `python -m integration_tests.sandbox FILE`.

Writes FILE, a JSON object of vendor -> {"url", "config"}, once all servers listen.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

from integration_tests.sandbox import VENDORS, start


def main(out: str) -> None:
    servers = {name: start(module.Api()) for name, module in VENDORS.items()}
    listing = {name: {"url": s.url, "config": VENDORS[name].config(s.url)}
               for name, s in servers.items()}
    Path(out).write_text(json.dumps(listing, indent=2))
    print("sandbox: " + ", ".join(f"{n} at {v['url']}" for n, v in listing.items()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    for server in servers.values():
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sandbox.json")
