"""What each configured stream of a `write` catalog writes: its object, operation and matching
key, checked against what the vendor offers before any request is sent.

An activation catalog names them (`destination_object_name`, `destination_sync_mode`,
`primary_key` = the chosen matching key); a classic one (PyAirbyte's) names the object by the
stream and may leave the key to the records' fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from source_customers.destination.apply import applier
from source_customers.destination.errors import Refused
from source_customers.destination.objects import Writes
from source_customers.destination.vendor_http import VendorHttp
from source_customers.destination.write import StreamWrite


def plan(writes: Writes, catalog: Any, http: VendorHttp, dry_run: bool
         ) -> dict[str, StreamWrite]:
    streams: dict[str, StreamWrite] = {}
    configured = catalog.get("streams") if isinstance(catalog, Mapping) else None
    if not isinstance(configured, list) or not configured:
        raise Refused("The catalog configures no stream to write.")
    for entry in configured:
        stream = entry.get("stream") or {}
        name = str(stream.get("name"))
        object_name = entry.get("destination_object_name") or name
        obj = writes.objects.get(object_name)
        if obj is None:
            raise Refused(f"Stream '{name}' writes to object '{object_name}', which "
                           f"{writes.vendor} does not offer; it offers: "
                           f"{', '.join(writes.objects)}.")
        mode = str(entry.get("destination_sync_mode") or "append")
        operation = obj.operations.get(mode)
        if operation is None:
            raise Refused(f"Stream '{name}': {writes.vendor}'s {object_name} cannot be written "
                           f"in mode '{mode}'; it offers: {', '.join(obj.operations)}.")
        key = _key(entry, stream, obj.matching_keys, mode)
        if mode != "append" and key not in obj.matching_keys:
            offered = " or ".join("[" + ", ".join(k) + "]" for k in obj.matching_keys)
            chosen = "[" + ", ".join(key) + "]" if key else "none"
            raise Refused(f"Stream '{name}': matching key {chosen} is not one "
                           f"{writes.vendor}'s {object_name} offers: {offered}.")
        streams[name] = StreamWrite(name, applier(http, obj, operation, key, dry_run))
    return streams


def _key(entry: Mapping[str, Any], stream: Mapping[str, Any], offered: list[list[str]],
         mode: str) -> list[str]:
    chosen = entry.get("primary_key") or stream.get("source_defined_primary_key") or []
    key = [str(part[0]) if isinstance(part, list) and part else str(part) for part in chosen]
    if key or mode == "append":
        return key
    # A classic catalog without a key: the first offered key the stream's schema holds.
    fields = set((stream.get("json_schema") or {}).get("properties") or {})
    for option in offered:
        if set(option) <= fields:
            return option
    return []
