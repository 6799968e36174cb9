"""The inputs besides config: the state file and the configured catalog, checked against the
vendor's manifest before the source is built.

The CDK's own messages for these name neither the file nor the stream ("'j' is not of type
'object'"), a saved cursor that is not a date-time stops the sync with a traceback, and a
catalog naming streams the vendor lacks reads nothing and says nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from functools import cache
from typing import Any

from airbyte_cdk.models import ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)

from source_customers.vendors import load_manifest

RESET = "Reset the connection's state"
STREAM_MESSAGE = '{"type": "STREAM", "stream": {"stream_descriptor": {"name": ...}, ' \
    '"stream_state": {...}}}'


@cache
def _streams(vendor: str) -> tuple[dict[str, Any], ...]:
    resolved = ManifestReferenceResolver().preprocess_manifest(load_manifest(vendor))
    return tuple(resolved["streams"])


def _name(stream: dict[str, Any]) -> str:
    return str(stream.get("name") or stream.get("$parameters", {}).get("name"))


def stream_names(vendor: str) -> list[str]:
    return [_name(s) for s in _streams(vendor)]


def cursor_of(vendor: str, stream: str) -> tuple[str, list[str]] | None:
    """The stream's cursor field and the formats its saved values are read with, if any."""
    for definition in _streams(vendor):
        sync = definition.get("incremental_sync") or {}
        if _name(definition) == stream and sync.get("cursor_field"):
            # As the CDK reads a saved cursor: each input format, then the output format.
            formats = [*sync.get("cursor_datetime_formats", []), sync["datetime_format"]]
            return str(sync["cursor_field"]), formats
    return None


def _pick_from(vendor: str) -> str:
    return f"Run discover and pick from: {', '.join(stream_names(vendor))}."


def catalog_problem(vendor: str, catalog: ConfiguredAirbyteCatalog, path: str) -> str | None:
    """Why the catalog selects nothing this vendor can read; None if it is fine."""
    if not catalog.streams:
        return f"Catalog file {path} selects no stream: there is nothing to read. " + _pick_from(
            vendor)
    unknown = [c.stream.name for c in catalog.streams if c.stream.name not in stream_names(vendor)]
    if not unknown:
        return None
    names = ", ".join(f"'{n}'" for n in dict.fromkeys(unknown))
    plural = "s" if len(set(unknown)) > 1 else ""
    return f"Catalog file {path}: {vendor} has no stream{plural} {names}. " + _pick_from(vendor)


def _kind(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return "a JSON " + kinds.get(type(value), "number")


def _quote(value: Any) -> str:
    """A saved value as the message shows it: at most about 40 characters of it."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:36] + "..." + text[-1]


def state_problem(vendor: str, state: Any, path: str, warn: Callable[[str], None]) -> str | None:
    """Why the state file is not one this connector wrote, naming the stream at fault; None
    if it is. The state of a stream the vendor does not have is ignored, with a warning."""
    where = f"State file {path}"
    again = f"{RESET} (or pass a state file this connector wrote) and sync again."
    if not state:  # as the CDK reads it: no state
        return None
    if not isinstance(state, list):
        legacy = " (the legacy form, which the CDK no longer reads)" * isinstance(state, dict)
        return (f"{where} holds {_kind(state)}{legacy}; it must be a JSON list of Airbyte "
                f"state messages, as this connector writes them: [{STREAM_MESSAGE}, ...]. {again}")
    for number, message in enumerate(state, start=1):
        item = f"{where}: item {number}"
        if not isinstance(message, dict):
            return f"{item} is {_kind(message)}, not a state message {STREAM_MESSAGE}. {again}"
        if message.get("type") != "STREAM":
            kind = f"is of type {message['type']}" if "type" in message else "has no type"
            return (f"{item} {kind}; this connector writes and reads only per-stream state "
                    f"(type STREAM). {again}")
        stream = message.get("stream")
        if not isinstance(stream, dict):
            return f"{item} has no 'stream' object: {STREAM_MESSAGE}. {again}"
        descriptor = stream.get("stream_descriptor")
        name = descriptor.get("name") if isinstance(descriptor, dict) else None
        if not isinstance(name, str):
            return f"{item} names no stream (stream.stream_descriptor.name). {again}"
        if name not in stream_names(vendor):
            warn(f"{where}: the saved state of stream '{name}' is ignored: {vendor} has no such "
                 f"stream (its streams: {', '.join(stream_names(vendor))}).")
            continue
        problem = _stream_state_problem(vendor, name, stream.get("stream_state"))
        if problem:
            return (f"{where}: {problem}. {RESET} for this stream (or remove it from the state "
                    "file) and sync again.")
    return None


def _stream_state_problem(vendor: str, stream: str, blob: Any) -> str | None:
    saved = f"the saved state of stream '{stream}'"
    if blob is None:
        return None
    if not isinstance(blob, dict):
        return f"{saved} is {_kind(blob)}, not an object"
    cursor = cursor_of(vendor, stream)
    if cursor is None:  # full refresh only: nothing in the state is read
        return None
    field, formats = cursor
    try:
        for partition, values in _cursors(blob):
            if field in values and not _is_date_time(values[field], formats):
                of = f" for {partition}" if partition else ""
                return (f"the saved cursor of stream '{stream}'{of} ({field} = "
                        f"{_quote(values[field])}) is not a date-time this connector wrote "
                        f"(such as {DatetimeParser().format(_EXAMPLE, formats[0])})")
    except _Shape as shape:
        return f"{saved} is not one this connector wrote: {shape}"
    return None


class _Shape(Exception):
    """A per-partition state whose parts are not of the form the CDK writes."""


_EXAMPLE = datetime(2024, 1, 31, 12, 0, tzinfo=timezone.utc)


def _cursors(blob: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each saved cursor of a stream state, with the partition it belongs to ("" if none):
    the stream's own, or per partition `{"states": [{"partition", "cursor"}], "state"}`."""
    yield "", blob
    lookback, use_global = blob.get("lookback_window", 0), blob.get("use_global_cursor", False)
    if isinstance(lookback, bool) or not isinstance(lookback, int | float):
        raise _Shape(f"its 'lookback_window' is {_kind(lookback)}, not a number of seconds")
    if not isinstance(use_global, bool):
        raise _Shape(f"its 'use_global_cursor' is {_kind(use_global)}, not true or false")
    if "state" in blob:
        if not isinstance(blob["state"], dict):
            raise _Shape(f"its 'state' is {_kind(blob['state'])}, not an object")
        yield "", blob["state"]
    states = blob.get("states", [])
    if not isinstance(states, list):
        raise _Shape(f"its 'states' is {_kind(states)}, not a list")
    for entry in states:
        if not isinstance(entry, dict) or not isinstance(entry.get("cursor"), dict):
            raise _Shape(f"its 'states' holds {_quote(entry)}, not "
                         '{"partition": {...}, "cursor": {...}}')
        partition = entry.get("partition")
        keys = partition.items() if isinstance(partition, dict) else []
        yield ", ".join(f"{k} {_quote(v)}" for k, v in keys if k != "parent_slice"), entry["cursor"]


def _is_date_time(value: Any, formats: list[str]) -> bool:
    """Whether the CDK reads `value` with one of `formats` (it reads a number as its text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    for form in formats:
        try:
            DatetimeParser().parse(str(value), form)
            return True
        except (ValueError, OverflowError, OSError):
            continue
    return False
