"""What a vendor's writes manifest declares (`manifests/<vendor>.writes.yaml`): its objects, the
operations each offers, their requests and bodies; and the destination's config spec, made of
the source manifest's own connection keys.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from source_customers.destination.screen import Screen
from source_customers.vendors import MANIFEST_DIR, load_manifest

WRITABLE: tuple[str, ...] = tuple(sorted(
    p.name.removesuffix(".writes.yaml") for p in MANIFEST_DIR.iterdir()
    if p.name.endswith(".writes.yaml")))
SYNC_MODES = ("append", "update", "append_dedup", "soft_delete")
_PLACEHOLDER = re.compile(r"\{([$\w]+)\}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    gone_statuses: tuple[int, ...] = ()
    ok_codes: tuple[int, ...] = ()  # vendor codes that still answer the request (a check's)


@dataclass(frozen=True)
class Operation:
    """One sync mode of an object: the requests that apply a record."""

    mode: str
    create: Endpoint | None = None
    update: Endpoint | None = None
    delete: Endpoint | None = None
    find: Endpoint | None = None


@dataclass(frozen=True)
class WritableObject:
    name: str
    matching_keys: list[list[str]]
    json_schema: dict[str, Any]
    operations: dict[str, Operation]
    listing: Mapping[str, Any] | None = None  # how to list the object, where it has no lookup
    screen: Screen | None = None  # what a record must pass before it is sent
    identifier_find: Endpoint | None = None  # who holds an identifier to add, on any source


@dataclass(frozen=True)
class Answers:
    """How the vendor answers: which statuses and codes retry, fail the sync, or refuse one
    record (any other error)."""

    message_paths: list[list[str]]
    reference_path: list[str]
    error_codes_path: list[str]
    warnings_path: list[str]  # a written record's warnings: done, a side activity failed
    retry_statuses: frozenset[int]
    retry_codes: frozenset[int]
    fail_statuses: frozenset[int]  # the credentials refused: the sync cannot go on
    credentials: str  # what to check when they are: "api_key"
    unprocessed_statuses: frozenset[int]  # retried answers that say nothing was done
    fail_codes: frozenset[int]
    not_found_codes: frozenset[int]
    codes: Mapping[int, str]


@dataclass(frozen=True)
class Writes:
    vendor: str  # the vendor's name as users write it (Capillary)
    key: str  # as config["vendor"] names it (capillary)
    config_keys: list[str]
    check: Endpoint
    answers: Answers
    objects: dict[str, WritableObject]
    defaults: Mapping[str, Any]  # the source spec's defaults of the connection keys


def _endpoint(spec: Mapping[str, Any] | None) -> Endpoint | None:
    if not spec:
        return None
    return Endpoint(method=spec["method"], path=spec["path"],
                    query=dict(spec.get("query") or {}), body=spec.get("body"),
                    gone_statuses=tuple(spec.get("gone_statuses") or ()))


@cache
def _writes_text(vendor: str) -> str:
    return (MANIFEST_DIR / f"{vendor}.writes.yaml").read_text(encoding="utf-8")


@cache
def load_writes(vendor: str) -> Writes:
    raw = yaml.safe_load(_writes_text(vendor))
    answers = raw.get("answers") or {}
    objects = {}
    for name, spec in (raw.get("objects") or {}).items():
        operations = {}
        for mode, op in (spec.get("operations") or {}).items():
            assert mode in SYNC_MODES, f"{vendor}.writes.yaml: unknown sync mode {mode}"
            operations[mode] = Operation(
                mode=mode, create=_endpoint(op.get("create")), update=_endpoint(op.get("update")),
                delete=_endpoint(op.get("delete")), find=_endpoint(op.get("find")))
        objects[name] = WritableObject(
            name=name, matching_keys=[list(k) for k in spec.get("matching_keys") or []],
            json_schema=spec["json_schema"], operations=operations, listing=spec.get("list"),
            screen=Screen.of(spec.get("screen")),
            identifier_find=_endpoint(((spec.get("screen") or {}).get("identifiers") or {})
                                      .get("find")))
    check = raw["check"]
    source_spec = load_manifest(vendor)["spec"]["connection_specification"]["properties"]
    return Writes(
        vendor=raw["vendor"], key=vendor, config_keys=list(raw["config_keys"]),
        check=Endpoint(method=check["method"], path=check["path"],
                       query={**(check.get("query") or {}), **(check.get("check_query") or {})},
                       ok_codes=tuple(check.get("ok_codes") or ())),
        answers=Answers(
            message_paths=[list(p) for p in answers.get("message_paths") or []],
            reference_path=list(answers.get("reference_path") or []),
            error_codes_path=list(answers.get("error_codes_path") or []),
            warnings_path=list(answers.get("warnings_path") or []),
            retry_statuses=frozenset(answers.get("retry_statuses") or ()),
            retry_codes=frozenset(answers.get("retry_codes") or ()),
            fail_statuses=frozenset(answers.get("fail_statuses") or ()),
            credentials=str(answers.get("credentials") or "the credentials"),
            unprocessed_statuses=frozenset(answers.get("unprocessed_statuses") or ()),
            fail_codes=frozenset(answers.get("fail_codes") or ()),
            not_found_codes=frozenset(answers.get("not_found_codes") or ()),
            codes={int(k): str(v) for k, v in (answers.get("codes") or {}).items()}),
        objects=objects,
        defaults={k: source_spec[k]["default"] for k in raw["config_keys"]
                  if "default" in source_spec.get(k, {})},
    )


def fill(template: str, values: Mapping[str, Any]) -> str:
    """`template` with each `{name}` replaced by its value ("" for none)."""
    def value(match: re.Match[str]) -> str:
        found = values.get(match.group(1))
        return "" if found is None else str(found)
    return _PLACEHOLDER.sub(value, template)


def body(template: Any, record: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The request body `template` makes of `record`: a plain string names a record field, a
    `{name}` string is filled from `values`, a `*name` item of a list spreads the record's list
    `name` there; a field the record lacks or holds as null is left out, and so is an object
    or list left empty."""
    if isinstance(template, Mapping):
        built = {k: body(v, record, values) for k, v in template.items()}
        return {k: v for k, v in built.items() if v is not None} or None
    if isinstance(template, list):
        items = []
        for item in template:
            if isinstance(item, str) and item.startswith("*"):  # the record's list, spread
                spread = record.get(item[1:])
                items.extend(spread if isinstance(spread, list) else [])
            else:
                items.append(body(item, record, values))
        return [item for item in items if item is not None] or None
    if isinstance(template, str):
        if _PLACEHOLDER.search(template):
            return fill(template, values) or None
        found = record.get(template)
        return None if found is None or found == {} or found == [] else found
    return template


def connection_specification() -> dict[str, Any]:
    """The destination's config: one branch per writable vendor, holding its connection keys
    as the source's spec defines them, and the destination's own keys."""
    branches = []
    for vendor in WRITABLE:
        writes = load_writes(vendor)
        source = load_manifest(vendor)["spec"]["connection_specification"]
        properties = {k: copy.deepcopy(source["properties"][k]) for k in writes.config_keys}
        properties["vendor"] = {"title": "Vendor", "type": "string", "const": vendor,
                                "order": 0}
        properties.update(copy.deepcopy(DESTINATION_PROPERTIES))
        branches.append({
            "title": writes.vendor,
            "type": "object",
            "required": ["vendor", *[k for k in source.get("required", [])
                                     if k in writes.config_keys]],
            # Keys only the source reads are accepted and ignored: one config, both ways.
            "additionalProperties": True,
            "properties": properties,
        })
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Customers write-back (" + ", ".join(WRITABLE) + ")",
        "type": "object",
        "required": ["vendor"],
        "properties": {"vendor": {"title": "Vendor", "type": "string", "enum": list(WRITABLE),
                                  "description": "Whose API to write to.", "order": 0}},
        "oneOf": branches,
    }


DESTINATION_PROPERTIES: dict[str, Any] = {
    "num_workers": {
        # 10, as the source's default for these vendors: 2.1 x the rows/s of 4 at 20 ms a
        # request (bench/README.md, 2026-12-07); past 10 the bench gained less (1.36 x at 16,
        # nothing more at 20) for more parallel load on the vendor.
        "title": "Number of workers", "type": "integer", "minimum": 1, "maximum": 20,
        "default": 10, "order": 20,
        "description": ("Write requests sent in parallel. Records with the same matching key "
                        "are applied one after the other, in input order."),
    },
    "dry_run": {
        "title": "Dry run", "type": "boolean", "default": False, "order": 21,
        "description": ("Resolve every record with reads only, and report what would be "
                        "created, updated, deleted, left unchanged or rejected. Nothing is "
                        "written."),
    },
    "object_storage_config": {
        "title": "Rejected records", "type": "object", "order": 22,
        "description": "Where records the vendor refused are stored, with the reason.",
        "oneOf": [
            {"title": "None", "required": ["storage_type"],
             "properties": {"storage_type": {"type": "string", "const": "None"}}},
            {"title": "Local", "required": ["storage_type", "path"],
             "properties": {"storage_type": {"type": "string", "const": "Local"},
                            "path": {"type": "string", "title": "Folder",
                                     "description": "JSON Lines files are written here."}}},
            {"title": "S3", "required": ["storage_type", "s3_bucket_name", "s3_bucket_region"],
             "properties": {
                 "storage_type": {"type": "string", "const": "S3"},
                 "s3_bucket_name": {"type": "string"},
                 "s3_bucket_region": {"type": "string"},
                 "bucket_path": {"type": "string", "default": ""},
                 "access_key_id": {"type": "string", "airbyte_secret": True},
                 "secret_access_key": {"type": "string", "airbyte_secret": True},
                 "s3_endpoint": {"type": "string",
                                 "description": "An S3-compatible endpoint; AWS if unset."}}},
        ],
    },
}
