"""What a record must pass before it is sent, as an object's `screen` in its writes manifest
declares it (Capillary's customers, docs/capillary.md "Writing back"):

- date-times in the vendor's form: an ISO date-time with a zone is converted, one without a
  zone or that is none rejects the record, naming the field;
- identifiers to add, each looked up on every source first: one another customer holds
  rejects the record (the vendor would merge the two customers), one the customer already
  holds is left out;
- enrolments in programs the customer is already in are left out and said (the vendor does
  not update them), never counted as applied.

Only reads: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from source_customers.masking import mask

# A looked-up identifier: (the id of the customer holding it or None when no one does, and
# the vendor's refusal of the lookup in words, "" when there is none).
Holder = tuple[str | None, str]


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    field: str


@dataclass(frozen=True)
class Screen:
    date_times: tuple[str, ...]  # "list.field" or "field": where the date-times are
    customer_id: tuple[str, ...]  # paths into the customer as `find` answers it
    customer_identifiers: tuple[str, ...]
    customer_programs: tuple[str, ...]
    identifiers_field: str
    enrolments_field: str
    enrolment_key: str

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> Screen | None:
        if not spec:
            return None
        customer = spec.get("customer") or {}
        identifiers = spec.get("identifiers") or {}
        enrolments = spec.get("enrolments") or {}
        return cls(date_times=tuple(spec.get("date_times") or ()),
                   customer_id=tuple(customer.get("id") or ()),
                   customer_identifiers=tuple(customer.get("identifiers") or ()),
                   customer_programs=tuple(customer.get("programs") or ()),
                   identifiers_field=str(identifiers.get("field") or ""),
                   enrolments_field=str(enrolments.get("field") or ""),
                   enrolment_key=str(enrolments.get("key") or ""))

    def needs_customer(self, record: Mapping[str, Any]) -> bool:
        """Whether the record holds something only the customer as it is can decide."""
        return any(record.get(f) for f in (self.identifiers_field, self.enrolments_field) if f)

    # --- no request --------------------------------------------------------------------
    def dates(self, record: Mapping[str, Any]) -> dict[str, Any] | Refusal:
        """The record with its date-times in the vendor's form, or why it cannot be sent."""
        out = dict(record)
        for path in self.date_times:
            outer, _, inner = path.partition(".")
            if not inner:
                if out.get(outer) is None:
                    continue
                value = vendor_date_time(out[outer])
                if value is None:
                    return _bad_date(outer, out[outer])
                out[outer] = value
                continue
            items = out.get(outer)
            if not isinstance(items, list):
                continue
            converted = []
            for n, item in enumerate(items):
                if isinstance(item, Mapping) and item.get(inner) is not None:
                    value = vendor_date_time(item[inner])
                    if value is None:
                        return _bad_date(f"{outer}[{n}].{inner}", item[inner])
                    item = {**item, inner: value}
                converted.append(item)
            out[outer] = converted
        return out

    # --- with the customer as the vendor holds it --------------------------------------
    def against(self, record: Mapping[str, Any], customer: Mapping[str, Any] | None,
                holder: Callable[[str, str], Holder]) -> tuple[dict[str, Any], list[str]] | Refusal:
        """The record less what the customer already has, and notes of what was left out
        that the record asked for; or why it cannot be sent. `customer` is None for one to
        be added; `holder(type, value)` looks an identifier up on every source."""
        out = dict(record)
        notes: list[str] = []
        mine = str(_first(customer, self.customer_id)) if customer else None
        if self.identifiers_field and isinstance(out.get(self.identifiers_field), list):
            held = {(str(i.get("type")), str(i.get("value")))
                    for i in _all(customer, self.customer_identifiers) if isinstance(i, Mapping)}
            kept = []
            for n, item in enumerate(out[self.identifiers_field]):
                where = f"{self.identifiers_field}[{n}]"
                if not isinstance(item, Mapping) or not item.get("type") or not item.get("value"):
                    return Refusal("invalid identifier", "an identifier to add needs a type "
                                   "and a value", where)
                kind, value = str(item["type"]), str(item["value"])
                if (kind, value) in held:
                    continue  # already the customer's: not sent again
                found, refused = holder(kind, value)
                if refused:
                    return Refusal("identifier lookup refused",
                                   f"{kind} {mask(value)}: {refused}", where)
                if found is not None and found == mine:
                    continue
                if found is not None:
                    return Refusal("identifier held by another customer",
                                   f"{kind} {mask(value)} belongs to customer {found}; adding "
                                   "it would merge the two customers, so nothing was sent",
                                   where)
                kept.append({"type": kind, "value": value})
            out[self.identifiers_field] = kept
        if customer is not None and self.enrolments_field and \
                isinstance(out.get(self.enrolments_field), list):
            programs = {str(p) for p in _all(customer, self.customer_programs)}
            kept = []
            for item in out[self.enrolments_field]:
                program = item.get(self.enrolment_key) if isinstance(item, Mapping) else None
                if program is not None and str(program) in programs:
                    notes.append(f"already enrolled in program {program}, not updated")
                    continue
                kept.append(item)
            out[self.enrolments_field] = kept
        return out, notes


def vendor_date_time(value: Any) -> str | None:
    """`value` as Capillary writes a date-time (2021-02-18T20:31:15+05:30), or None when it is
    no date-time or has no zone: a time without a zone could be any of 24 instants."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None:
        return None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hours:02d}:{minutes:02d}"


def _bad_date(field: str, value: Any) -> Refusal:
    shown = repr(value) if not isinstance(value, str) or len(value) < 40 else repr(value[:40])
    return Refusal("invalid date-time", f"{field} is {shown}: a date-time with its time zone "
                   "is needed, e.g. 2027-01-31T23:59:59+05:30 or 2027-01-31T18:29:59Z", field)


def _all(document: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` ("*" stands for each item of a list)."""
    found = [document]
    for step in path:
        nxt: list[Any] = []
        for item in found:
            if step == "*" and isinstance(item, list):
                nxt.extend(item)
            elif isinstance(item, Mapping) and step in item:
                nxt.append(item[step])
        found = nxt
    flat: list[Any] = []
    for item in found:
        flat.extend(item if isinstance(item, list) else [item])
    return [item for item in flat if item is not None]


def _first(document: Any, path: tuple[str, ...]) -> Any:
    found = _all(document, path)
    return found[0] if found else None
