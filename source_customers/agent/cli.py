"""`customers-mcp`: the configs read and checked, each vendor built once, then MCP over stdio
(or streamable HTTP behind a bearer token) until the client goes away.

The log (stderr) carries personal data masked and no secret; stdout is the protocol's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from source_customers import masking

TOKEN_VARIABLE = "CUSTOMERS_MCP_TOKEN"
USAGE = ("customers-mcp --config PATH [--config PATH ...] [--allow-writes] "
         "[--http HOST:PORT] [--deadline SECONDS]")


class Refused(Exception):
    """Inputs the server cannot start with; the message says what to fix."""


class _Masked(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

        return filter_secrets(masking.masked(super().format(record)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customers-mcp", usage=USAGE,
        description="One customer across Okendo, LOKE, Malomo and Capillary, for an AI "
                    "agent (Model Context Protocol).")
    parser.add_argument("--config", action="append", required=True, metavar="PATH",
                        help="a connector config as source-customers reads it; one per vendor")
    parser.add_argument("--allow-writes", action="store_true",
                        help="let update_customer apply changes when a call asks (apply: true)")
    parser.add_argument("--http", metavar="HOST:PORT",
                        help=f"serve streamable HTTP there (needs {TOKEN_VARIABLE})")
    parser.add_argument("--deadline", type=float, default=30.0, metavar="SECONDS",
                        help="every call answers within this, naming a vendor that did not "
                             "(default 30)")
    return parser


def _config(path: str) -> dict[str, Any]:
    from airbyte_cdk.utils.airbyte_secrets_utils import get_secrets, update_secrets

    from source_customers.agent.lookups import lookup_vendors
    from source_customers.vendors import config_problem, load_manifest, personal_values

    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Refused(f"Could not read the config file {path}: {error}") from None
    if not isinstance(config, dict):
        raise Refused(f"The config file {path} must hold a JSON object.")
    masking.register_personal(personal_values(config))
    vendor = config.get("vendor")
    if vendor not in lookup_vendors():
        found = "is missing" if vendor is None else f"is {vendor!r}"
        raise Refused(f"{path}: config field 'vendor' {found}; it must be one of: "
                      f"{', '.join(lookup_vendors())}.")
    spec = load_manifest(vendor)["spec"]["connection_specification"]
    update_secrets(get_secrets(spec, config))
    problem = config_problem(vendor, config)
    if problem:
        raise Refused(f"{path}: {problem}")
    return config


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Refused(f"--http {text}: give HOST:PORT, e.g. 127.0.0.1:8765.")
    return host, int(port)


def main(args: Sequence[str]) -> int:
    options = _parser().parse_args(list(args))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Masked("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    log = logging.getLogger("customers-mcp")
    try:
        if options.deadline <= 0:
            raise Refused("--deadline must be a positive number of seconds.")
        address = _address(options.http) if options.http else None
        token = os.environ.get(TOKEN_VARIABLE, "")
        if address and not token:
            raise Refused(f"--http needs a bearer token: set {TOKEN_VARIABLE} (every request "
                          "must then send Authorization: Bearer <it>).")
        masking.register_secret(token)
        configs = [_config(path) for path in options.config]
        named = [c["vendor"] for c in configs]
        twice = sorted({v for v in named if named.count(v) > 1})
        if twice:
            raise Refused(f"One config per vendor: {', '.join(twice)} is given twice.")
        from source_customers import components  # the manifests' components, for their auth
        from source_customers.agent.server import bearer, build
        from source_customers.agent.vendor import Vendor
        from source_customers.runtime import hooks

        sys.modules.setdefault("source_declarative_manifest.components", components)
        # The request deadline and masked CDK log lines, as for a sync; their WARN, if a
        # touch point moved, goes to the log like any line.
        hooks.install()

        vendors = {c["vendor"]: Vendor(c["vendor"], c) for c in configs}
    except Refused as refused:
        log.error(str(refused))
        return 2
    writes = "writes allowed" if options.allow_writes else "read-only (no --allow-writes)"
    log.info(f"serving {', '.join(v.name for v in vendors.values())}; {writes}; "
             f"deadline {options.deadline:g} s")
    host, port = address or ("127.0.0.1", 8000)
    server = build(vendors, options.allow_writes, options.deadline, host, port)
    if address is None:
        server.run("stdio")
    else:
        import uvicorn

        log.info(f"streamable HTTP on http://{host}:{port}/mcp (bearer token required)")
        uvicorn.run(bearer(server.streamable_http_app(), token), host=host, port=port,
                    log_level="warning")
    # The client has gone (or the server was stopped): a lookup still waiting on a vendor
    # past the deadline must not keep the process alive, as the pool's threads would.
    logging.shutdown()
    os._exit(0)


def run() -> None:
    sys.exit(main(sys.argv[1:]))
