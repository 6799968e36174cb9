"""`make examples`: regenerate each vendor's configured catalog and sample state.

    python -m scripts.examples [VENDOR ...]

Writes integration_tests/examples/<vendor>/configured_catalog.json (every stream
`discover` returns, in its best sync mode: see scripts/sandbox.py `configured_catalog`)
and sample_state.json (the state an incremental read of the sandbox ends with, each
per-customer state cut to its first two customers). sample_config.json and
invalid_config.json are written by hand. integration_tests/test_examples.py fails when
any of them no longer fits the connector: rerun this, then review the diff.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from integration_tests.cli import run
from integration_tests.sandbox import VENDORS, start
from scripts.sandbox import configured_catalog, write_json

EXAMPLES = Path(__file__).resolve().parents[1] / "integration_tests" / "examples"
PARTITIONS_KEPT = 2


def sample_state(final_state: list[dict[str, Any]], catalog: dict[str, Any]) -> list[Any]:
    """The final state of the catalog's incremental streams, per-customer lists shortened."""
    incremental = {s["stream"]["name"] for s in catalog["streams"]
                   if s["sync_mode"] == "incremental"}
    kept = []
    for message in final_state:
        if message["stream"]["stream_descriptor"]["name"] not in incremental:
            continue
        stream_state = dict(message["stream"]["stream_state"])
        if isinstance(stream_state.get("states"), list):
            stream_state["states"] = stream_state["states"][:PARTITIONS_KEPT]
        kept.append({"type": "STREAM", "stream": {**message["stream"],
                                                  "stream_state": stream_state}})
    return kept


def generate(vendor: str) -> None:
    module = VENDORS[vendor]
    server = start(module.Api(**getattr(module, "SMALL", {})))
    try:
        config = module.config(server.url)
        discovered = run("discover", config)
        (message,) = discovered.of_type("CATALOG")
        catalog = configured_catalog(message["catalog"])
        output = run("read", config, catalog)
        if output.returncode != 0:
            raise SystemExit(f"{vendor}: the read failed: {output.errors or output.stderr}")
    finally:
        server.stop()
    folder = EXAMPLES / vendor
    write_json(folder / "configured_catalog.json", catalog)
    write_json(folder / "sample_state.json", sample_state(output.final_state(), catalog))
    print(f"wrote {folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder}"
          "/configured_catalog.json, sample_state.json")


def main(vendors: list[str]) -> int:
    for vendor in vendors or sorted(VENDORS):
        generate(vendor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
