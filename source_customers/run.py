"""`source-customers`: the Airbyte protocol over one declarative manifest per vendor."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteErrorTraceMessage,
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    Level,
    Status,
    TraceType,
    Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers import components, inputs, masking, speedups
from source_customers.runtime import hooks
from source_customers.vendors import (
    VENDORS,
    combined_spec,
    config_problem,
    load_manifest,
    personal_values,
)

# Manifests name their components as the platform's runner registers them, so the same
# YAML runs unchanged there and here.
sys.modules.setdefault("source_declarative_manifest.components", components)


USAGE = f"""usage: source-customers <command> [options]

Customer data from {", ".join(VENDORS)}, over the Airbyte protocol (JSON lines on stdout).
config["vendor"] selects the vendor.

  source-customers spec
      print the configuration specification: every vendor's fields; needs no config
  source-customers check --config CONFIG
      check the config, and that the vendor accepts its credentials
  source-customers discover --config CONFIG
      print the catalog: the vendor's streams, their keys and cursors
  source-customers read --config CONFIG --catalog CATALOG [--state STATE]
      read the catalog's streams as records, from the saved state if given

Each command also takes --debug (detailed logs) and -h/--help (its own options).

Example files, per vendor, in the source repository's integration_tests/examples/<vendor>/:
sample_config.json (fill in the <...> placeholders), configured_catalog.json (every stream
in its best sync mode), sample_state.json and invalid_config.json. `make sandbox-start`
serves every vendor's sandbox API on 127.0.0.1 and writes .sandbox/<vendor>/config.json
and catalog.json to read it; README.md, "Running it", walks through them.
"""
COMMANDS = ("spec", "check", "discover", "read")


def build_source(args: Sequence[str]) -> ConcurrentDeclarativeSource | str:
    """The vendor's declarative source, or a message saying why the inputs select none."""
    parsed = AirbyteEntrypoint.parse_args(list(args))
    catalog_path: str | None = getattr(parsed, "catalog", None)
    state_path: str | None = getattr(parsed, "state", None)
    try:
        config = ConcurrentDeclarativeSource.read_config(parsed.config)
        catalog = ConcurrentDeclarativeSource.read_catalog(catalog_path) if catalog_path else None
    except (OSError, ValueError) as error:
        return f"Could not read the command's input files: {error}"
    vendor = config.get("vendor")
    masking.register_personal(personal_values(config))
    if vendor not in VENDORS:
        found = "is missing" if vendor is None else f"is {vendor!r}"
        return f"Config field 'vendor' {found}; it must be one of: {', '.join(VENDORS)}."
    # Before the source is built: building it evaluates config values (num_workers) and
    # reads the saved cursors.
    problem = config_problem(vendor, config)
    if not problem and catalog is not None and catalog_path:
        problem = inputs.catalog_problem(vendor, catalog, catalog_path)
    if problem:
        return problem
    try:
        saved = json.loads(Path(state_path).read_text(encoding="utf-8")) if state_path else None
        if state_path:
            problem = inputs.state_problem(vendor, saved, state_path, warn=_warn)
        if problem:
            return problem
        state = ConcurrentDeclarativeSource.read_state(state_path) if state_path else []
    except (OSError, ValueError) as error:
        reset = f"{inputs.RESET} and sync again."
        return f"Could not read the state file {state_path}: {error}. {reset}"
    return ConcurrentDeclarativeSource(
        catalog=catalog,
        config=config,
        state=state,
        source_config=load_manifest(vendor),
    )


def _print(message: AirbyteMessage) -> None:
    text = orjson.dumps(AirbyteMessageSerializer.dump(message)).decode()
    print(filter_secrets(masking.masked(text)), flush=True)


def _warn(text: str) -> None:
    _print(AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.WARN, message=text)))


def _fail(command: str, text: str) -> int:
    if command == "check":
        status = AirbyteConnectionStatus(status=Status.FAILED, message=text)
        _print(AirbyteMessage(type=Type.CONNECTION_STATUS, connectionStatus=status))
        return 0
    trace = AirbyteTraceMessage(
        type=TraceType.ERROR,
        emitted_at=time.time() * 1000,
        error=AirbyteErrorTraceMessage(message=text, failure_type=FailureType.config_error),
    )
    _print(AirbyteMessage(type=Type.TRACE, trace=trace))
    return 1


def _usage(args: Sequence[str]) -> int:
    """Usage on stdout for -h/--help (exit 0); else on stderr, after what was wrong (exit 2)."""
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    said = f"source-customers: unknown command {args[0]!r}.\n\n" if args else ""
    print(said + USAGE, end="", file=sys.stderr)
    return 2


def main(args: Sequence[str]) -> int:
    if not args or args[0] not in COMMANDS:
        return _usage(args)
    speedups.install()
    # After the speed-ups: masked output wraps the message writer they install.
    hooks.install()
    parsed = AirbyteEntrypoint.parse_args(list(args))
    if parsed.command == "spec":
        _print(AirbyteMessage(type=Type.SPEC, spec=combined_spec()))
        return 0
    source = build_source(args)
    if isinstance(source, str):
        return _fail(parsed.command, source)
    try:
        launch(source, list(args))
    except AirbyteTracedException as error:
        # A failed sync's closing error: the CDK's uncaught-exception hook would log it once
        # more, with a Python traceback, before the same ERROR trace.
        _print(error.as_airbyte_message())
        return 1
    return 0
