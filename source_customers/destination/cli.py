"""`destination-customers`: warehouse rows written back into Capillary and Malomo customers,
over the Airbyte destination protocol (data activation).

The Python CDK's `Destination` has no `discover`, and its message class cannot carry a
DESTINATION_CATALOG nor the `rejectedRecordCount` of protocol 0.18: messages are written
here as the protocol's JSON (unit_tests/test_destination.py checks them against the
protocol's own models).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

# Nothing that imports the CDK at the top: it is imported once, in `_import_cdk`.
from source_customers.destination.errors import Refused

USAGE = """usage: destination-customers <command> [options]

Writes rows back into Capillary or Malomo customers, over the Airbyte protocol.
config["vendor"] selects the vendor; its connection keys are named as the source names them.

  destination-customers spec
  destination-customers check --config CONFIG         prove the credentials with a read
  destination-customers discover --config CONFIG      the objects, operations and matching keys
  destination-customers write --config CONFIG --catalog CATALOG < messages.jsonl
"""
COMMANDS = ("spec", "check", "discover", "write")
DOCUMENTATION_URL = "https://github.com/source-customers/source-customers/blob/main/docs/"
_PRINT = threading.Lock()


def emit(message: Mapping[str, Any]) -> None:
    """One message on stdout, personal data and secrets masked but in records and state."""
    from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

    from source_customers import masking

    text = orjson.dumps(message).decode()
    if message.get("type") not in ("STATE", "RECORD"):
        text = filter_secrets(masking.masked(text))
    with _PRINT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _trace(text: str, failure: str) -> dict[str, Any]:
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": time.time() * 1000,
                                       "error": {"message": text, "failure_type": failure}}}


def _status(ok: bool, text: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"status": "SUCCEEDED" if ok else "FAILED"}
    if text:
        status["message"] = text
    return {"type": "CONNECTION_STATUS", "connectionStatus": status}


def _parse(args: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="destination-customers", usage=USAGE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("spec")
    for name in ("check", "discover", "write"):
        command = commands.add_parser(name)
        command.add_argument("--config", required=True)
        if name == "write":
            command.add_argument("--catalog", required=True)
    return parser.parse_args(list(args))


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Refused(f"Could not read the {what} file {path}: {error}") from None


def spec_message() -> dict[str, Any]:
    from source_customers.destination.objects import connection_specification

    return {"type": "SPEC", "spec": {
        "documentationUrl": DOCUMENTATION_URL,
        "connectionSpecification": connection_specification(),
        "supported_destination_sync_modes": ["append", "append_dedup", "update",
                                             "soft_delete"],
        "supportsIncremental": True,
    }}


def _config(path: str) -> tuple[Any, dict[str, Any]]:
    from source_customers.destination.objects import (
        WRITABLE,
        connection_specification,
        load_writes,
    )
    from source_customers.vendors import config_problem, personal_values

    config = _read_json(path, "config")
    if not isinstance(config, dict):
        raise Refused("The config must be a JSON object.")
    vendor = config.get("vendor")
    if vendor not in WRITABLE:
        found = "is missing" if vendor is None else f"is {vendor!r}"
        raise Refused(f"Config field 'vendor' {found}; it must be one of: "
                       f"{', '.join(WRITABLE)} (the vendors whose APIs take writes).")
    from source_customers import masking

    masking.register_personal(personal_values(config))
    (branch,) = [b for b in connection_specification()["oneOf"]
                 if b["properties"]["vendor"]["const"] == vendor]
    problem = config_problem(vendor, config, branch)
    if problem:
        raise Refused(problem)
    _register_secrets(branch, config)
    return load_writes(vendor), config


def _register_secrets(schema: Mapping[str, Any], config: Any) -> None:
    """Every value the spec marks `airbyte_secret` is masked in all output."""
    from airbyte_cdk.utils.airbyte_secrets_utils import get_secrets, update_secrets

    update_secrets(get_secrets(dict(schema), config))


def check(path: str) -> dict[str, Any]:
    from source_customers.destination.vendor_http import VendorHttp

    writes, config = _config(path)
    http = VendorHttp(writes, {**config, "connection_check": True}, checking=True)
    answer = http.send(writes.check, http.values({}))
    if answer.ok or set(answer.codes) & set(writes.check.ok_codes):
        return _status(True)
    return _status(False, f"{writes.vendor} answered the check ({writes.check.method} "
                          f"{writes.check.path}) with HTTP {answer.status}: "
                          f"{answer.message or 'no explanation given'}. Check base_url.")


def discover(path: str) -> dict[str, Any]:
    writes, _ = _config(path)
    operations = []
    for obj in writes.objects.values():
        for mode in obj.operations:
            operation: dict[str, Any] = {"object_name": obj.name, "sync_mode": mode,
                                         "json_schema": obj.json_schema}
            if mode != "append":
                operation["matching_keys"] = obj.matching_keys
            operations.append(operation)
    return {"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": operations}}


def write(config_path: str, catalog_path: str) -> int:
    from source_customers.destination.objects import DESTINATION_PROPERTIES
    from source_customers.destination.plan import plan
    from source_customers.destination.rejected import RejectedRecords
    from source_customers.destination.vendor_http import VendorHttp
    from source_customers.destination.write import BadInput, Writer, failure_message

    writes, config = _config(config_path)
    catalog = _read_json(catalog_path, "catalog")
    http = VendorHttp(writes, config)
    dry_run = bool(config.get("dry_run"))
    streams = plan(writes, catalog, http, dry_run)
    rejected = RejectedRecords(config.get("object_storage_config"))
    workers = config.get("num_workers") or DESTINATION_PROPERTIES["num_workers"]["default"]
    writer = Writer(streams, int(workers), rejected, emit, dry_run)
    if dry_run:
        emit({"type": "LOG", "log": {"level": "INFO", "message": (
            "Dry run: every record is resolved with reads only; nothing is written.")}})
    try:
        writer.run(sys.stdin.buffer)
    except BadInput as error:
        writer.summary()
        emit(_trace(str(error), "config_error"))
        return 1
    except Exception as error:
        writer.summary()
        failure = getattr(getattr(error, "failure_type", None), "value", "system_error")
        emit(_trace(failure_message(error), str(failure)))
        return 1
    finally:
        stored = _close(rejected)
    if not stored:
        return 1
    writer.summary()
    return 0


def _close(rejected: Any) -> bool:
    """Sends the rejected records where the config says; a store that fails (S3 unreachable or
    refusing the PUT) is an ERROR trace, not a traceback."""
    try:
        rejected.close()
    except OSError as error:  # requests' errors are OSErrors too
        emit(_trace(f"Could not store the rejected records in {rejected.where()}: "
                    f"{type(error).__name__}: {error}", "system_error"))
        return False
    return True


def main(args: Sequence[str]) -> int:
    if not args or args[0] not in COMMANDS:
        print(USAGE, end="", file=sys.stdout if args[:1] in (["-h"], ["--help"]) else sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    parsed = _parse(args)
    _import_cdk()
    if parsed.command == "spec":
        emit(spec_message())
        return 0
    from airbyte_cdk.logger import init_logger
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    from source_customers import components  # the manifests' components, for their auth
    from source_customers.runtime import hooks

    sys.modules.setdefault("source_declarative_manifest.components", components)
    init_logger("airbyte")
    hooks.install()
    try:
        if parsed.command == "check":
            emit(check(parsed.config))
        elif parsed.command == "discover":
            emit(discover(parsed.config))
        else:
            return write(parsed.config, parsed.catalog)
    except Refused as refused:
        if parsed.command == "check":
            emit(_status(False, str(refused)))
            return 0
        emit(_trace(str(refused), "config_error"))
        return 1
    except AirbyteTracedException as error:
        if parsed.command == "check":
            emit(_status(False, error.message or str(error)))
            return 0
        emit(_trace(error.message or str(error), str(error.failure_type.value
                                                      if error.failure_type else "system_error")))
        return 1
    return 0


def _import_cdk() -> None:
    """Imports the CDK as `source-customers` does (source_customers/startup.py). Measured on
    a write of no rows: 1.5 s of CPU and 2.0 s of wall time before, 0.8 s and 1.2 s after
    (medians of 4)."""
    if "airbyte_cdk" in sys.modules:  # in tests, or imported by the caller
        return
    from source_customers.startup import imported

    imported(lambda: importlib.import_module("airbyte_cdk"))


def run() -> None:
    sys.exit(main(sys.argv[1:]))
