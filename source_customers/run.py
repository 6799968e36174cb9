"""`source-customers`: the Airbyte protocol over one declarative manifest per vendor."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    Status,
    TraceType,
    Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)

from source_customers import components, speedups
from source_customers.vendors import VENDORS, combined_spec, config_problem, load_manifest

# Manifests name their components as the platform's runner registers them, so the same
# YAML runs unchanged there and here.
sys.modules.setdefault("source_declarative_manifest.components", components)


def build_source(args: Sequence[str]) -> ConcurrentDeclarativeSource | str:
    """The vendor's declarative source, or a message saying why the inputs select none."""
    parsed = AirbyteEntrypoint.parse_args(list(args))
    try:
        config = ConcurrentDeclarativeSource.read_config(parsed.config)
        catalog = (
            ConcurrentDeclarativeSource.read_catalog(parsed.catalog)
            if getattr(parsed, "catalog", None)
            else None
        )
        state_path = getattr(parsed, "state", None)
        state = ConcurrentDeclarativeSource.read_state(state_path) if state_path else []
    except (OSError, ValueError) as error:
        return f"Could not read the command's input files: {error}"
    vendor = config.get("vendor")
    if vendor not in VENDORS:
        found = "is missing" if vendor is None else f"is {vendor!r}"
        return f"Config field 'vendor' {found}; it must be one of: {', '.join(VENDORS)}."
    # Before the source is built: building it evaluates config values (num_workers).
    problem = config_problem(vendor, config)
    if problem:
        return problem
    return ConcurrentDeclarativeSource(
        catalog=catalog,
        config=config,
        state=state,
        source_config=load_manifest(vendor),
    )


def _print(message: AirbyteMessage) -> None:
    print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode(), flush=True)


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


def main(args: Sequence[str]) -> int:
    speedups.install()
    parsed = AirbyteEntrypoint.parse_args(list(args))
    if parsed.command == "spec":
        _print(AirbyteMessage(type=Type.SPEC, spec=combined_spec()))
        return 0
    source = build_source(args)
    if isinstance(source, str):
        return _fail(parsed.command, source)
    launch(source, list(args))
    return 0
