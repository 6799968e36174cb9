"""`make demo`: start the local sandbox APIs and sync every vendor end to end with the CLI."""

from __future__ import annotations

import json
import time

from integration_tests.cli import catalog_for, run
from integration_tests.sandbox import VENDORS, start


def sync(vendor: str, url: str) -> bool:
    config = VENDORS[vendor].config(url)
    print(f"\n== {vendor}  ({url})")
    checked = run("check", config)
    print(f"   check     {checked.connection_status['status']}")
    discovered = run("discover", config)
    streams = [s["name"] for s in discovered.of_type("CATALOG")[0]["catalog"]["streams"]]
    print(f"   discover  {', '.join(streams)}")
    began = time.monotonic()
    read = run("read", config, catalog_for(discovered, incremental=True))
    seconds = time.monotonic() - began
    counts = read.counts()
    for stream in streams:
        print(f"   read      {stream:<24} {counts[stream]:>7,} records")
    for state in read.final_state():
        stream = state["stream"]["stream_descriptor"]["name"]
        value = json.dumps(state["stream"]["stream_state"])
        print(f"   state     {stream:<24} {value[:70]}")
    print(f"   {'ok' if read.returncode == 0 else 'FAILED'} in {seconds:.1f}s")
    for error in read.errors:
        print(f"   error: {error}")
    return read.returncode == 0 and checked.connection_status["status"] == "SUCCEEDED"


def main() -> int:
    servers = {name: start(module.Api()) for name, module in VENDORS.items()}
    try:
        results = [sync(name, server.url) for name, server in servers.items()]
    finally:
        for server in servers.values():
            server.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
