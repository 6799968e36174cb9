"""`update_customer`: the changes checked against what the destination writes, a preview
(the customer as she is, each field from what to what), and a write applied by the
destination's own `Applier` (its retries, matching and rejection reasons), never another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from source_customers.agent.lookups import LookupFailed
from source_customers.agent.vendor import Vendor
from source_customers.destination.apply import ListedObject, Outcome, applier
from source_customers.destination.objects import WritableObject

# An agent fixes a customer: it never creates one, so `update`, whatever else is offered.
MODE = "update"


class BadChanges(ValueError):
    """Arguments the destination would not take; the message says what to fix."""


def writable(vendor: Vendor) -> WritableObject:
    obj = vendor.lookups.writes.objects.get("customers")
    if obj is None:
        raise BadChanges(f"{vendor.name} takes no writes here.")
    return obj


def check(vendor: Vendor, match: Mapping[str, Any], changes: Mapping[str, Any]
          ) -> tuple[str, Any]:
    """The matching key and value; raises BadChanges naming what to fix."""
    obj = writable(vendor)
    offered = [k[0] for k in obj.matching_keys if len(k) == 1]
    if len(match) != 1:
        raise BadChanges(f"match must hold exactly one key, one of: {', '.join(offered)}.")
    ((key, value),) = match.items()
    if key not in offered:
        raise BadChanges(f"{vendor.name} matches customers by {', '.join(offered)}, "
                         f"not '{key}'.")
    if not isinstance(value, str) or not value:
        raise BadChanges(f"match.{key} must be a non-empty string.")
    # The fields the update's body sends (a Capillary identifier is not among them), but
    # the one matched by.
    fields = {name: spec for name, spec in writable_fields(obj).items() if name != key}
    allowed = ", ".join(fields)
    if not changes:
        raise BadChanges(f"changes is empty: name at least one field to change, one of: "
                         f"{allowed}.")
    for name, new in changes.items():
        spec = fields.get(name)
        if spec is None:
            raise BadChanges(f"{vendor.name} customers have no writable field '{name}'; "
                             f"the fields are: {allowed}.")
        if new is None:
            raise BadChanges(f"changes.{name} is null: a write never blanks a field.")
        kind = spec.get("type")
        types = {"string": str, "object": dict, "array": list, "boolean": bool}
        if kind in types and not isinstance(new, types[kind]):
            raise BadChanges(f"changes.{name} must be a {kind}.")
        if "enum" in spec and new not in spec["enum"]:
            raise BadChanges(f"changes.{name} must be one of: {', '.join(spec['enum'])}.")
    return key, value


def writable_fields(obj: WritableObject) -> dict[str, Any]:
    """The object's fields (name -> schema) that its update's body sends."""
    update = obj.operations[MODE].update
    sent = _fields_of(update.body if update is not None else None)
    return {name: spec for name, spec in (obj.json_schema.get("properties") or {}).items()
            if name in sent}


def _fields_of(template: Any) -> set[str]:
    """The record fields a writes manifest's body template names (see objects.body)."""
    if isinstance(template, Mapping):
        return set().union(*(_fields_of(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(_fields_of(v) for v in template))
    if isinstance(template, str) and "{" not in template:
        return {template}
    return set()


def _at(document: Any, path: list[Any]) -> Any:
    for step in path:
        if isinstance(step, int):
            document = document[step] if isinstance(document, list) and \
                len(document) > step else None
        else:
            document = document.get(step) if isinstance(document, Mapping) else None
    return document


def diff(vendor: Vendor, current: Mapping[str, Any], changes: Mapping[str, Any]
         ) -> list[dict[str, Any]]:
    """Each field that would change, from what to what. An object changes only the keys
    given; an e-mail address in another letter case is the same address."""
    changed = []
    for name, new in changes.items():
        old = _at(current, vendor.lookups.current.get(name, [name]))
        if isinstance(new, Mapping) and isinstance(old, Mapping):
            old = {k: old.get(k) for k in new}
        same = old == new or (name == "email" and isinstance(old, str) and
                              isinstance(new, str) and old.casefold() == new.casefold())
        if not same:
            changed.append({"field": name, "from": old, "to": new})
    return changed


def apply(vendor: Vendor, key: str, value: Any, changes: Mapping[str, Any],
          current: Mapping[str, Any]) -> Outcome:
    """The destination's `update` of one record, as a sync would apply it. The matching
    key is sent as the vendor holds it: an address matched in another letter case is not
    a change the agent asked for."""
    obj = writable(vendor)
    held = current.get(key)
    record = {key: held if isinstance(held, str) and held.casefold() == value.casefold()
              else value, **changes}
    with vendor.writing:
        if vendor.lookups.find.get("email") == "listed":
            # The listing the lookups keep: not listed again for one write.
            listed = vendor.listed()
            listed.key, listed.dry_run, listed.operation = [key], False, obj.operations[MODE]
            try:
                return listed.apply(record)
            finally:
                listed.dry_run = True
        made = applier(vendor.http, obj, obj.operations[MODE], [key], dry_run=False)
        assert not isinstance(made, ListedObject)
        return made.apply(record)


__all__ = ["BadChanges", "LookupFailed", "apply", "check", "diff", "writable"]
