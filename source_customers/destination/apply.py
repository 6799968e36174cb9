"""How one record is applied to its object, for the two kinds of API the vendors have:

- `KeyedObject`: the vendor finds a customer by the matching key itself (Capillary's
  `PUT /v2/customers/lookup?identifierName=&identifierValue=`), and says when none has it;
- `ListedObject`: the vendor has no lookup (Malomo): the object is listed once per sync and
  matched here, by id or by e-mail address whatever its letter case.

Each `apply` ends in one `Outcome`: written (created, updated, deleted), unchanged, or
rejected with its reason. Nothing here retries a request: `VendorHttp.send` does, except a
create whose answer was lost, which is looked for before it is sent again, as often as any
request is tried; one that never gets an answer fails the sync (its row is not dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from source_customers.destination.objects import Endpoint, Operation, WritableObject, body
from source_customers.destination.screen import Holder, Refusal
from source_customers.destination.vendor_http import Answer, VendorHttp


@dataclass(frozen=True)
class Outcome:
    kind: str  # created, updated, deleted, unchanged, rejected
    reason: str = ""  # a rejection's cause in a few words, counted: "customer not found (8015)"
    message: str = ""  # the vendor's own words, if any
    field: str = ""  # the field at fault, if one is
    warnings: tuple[str, ...] = ()  # the vendor's: written, but a side activity failed
    notes: tuple[str, ...] = ()  # what the record asked for and was not applied, and why


def rejected(reason: str, message: str = "", field: str = "") -> Outcome:
    return Outcome("rejected", reason, message, field)


class Applier:
    def __init__(self, http: VendorHttp, obj: WritableObject, operation: Operation,
                 key: list[str], dry_run: bool) -> None:
        self.http, self.obj, self.operation, self.key = http, obj, operation, key
        self.dry_run = dry_run

    def key_of(self, record: Mapping[str, Any]) -> str | None:
        """The record's matching-key value as it orders records (one key, one worker)."""
        values = [record.get(k) for k in self.key]
        if not self.key or any(v is None or v == "" for v in values):
            return None
        return "\x1f".join(str(v).casefold() if k == "email" else str(v)
                           for k, v in zip(self.key, values, strict=True))

    def apply(self, record: Mapping[str, Any]) -> Outcome:
        raise NotImplementedError

    def _reason(self, answer: Answer) -> str:
        named = [f"{self.http.writes.answers.codes.get(c, 'error')} ({c})" for c in answer.codes]
        return ", ".join(named) or f"HTTP {answer.status}"


class KeyedObject(Applier):
    """An object the vendor looks up by the matching key (Capillary's customers). A record
    first passes the object's screen (destination/screen.py): its date-times in the vendor's
    form, its identifiers to add held by no other customer, its enrolments new."""

    def apply(self, record: Mapping[str, Any]) -> Outcome:
        name = self.key[0] if self.key else ""
        value = record.get(name) if name else None
        if value is None or value == "":
            return rejected("no matching key", f"the record has no '{name}'", name)
        op = self.operation
        assert op.update is not None, f"{op.mode}: an update endpoint"
        screened = self._screened(record, name, value)
        if isinstance(screened, Outcome):
            return screened
        record, customer, notes = screened
        values = self.http.values(record, name, value)
        changes = body(op.update.body, record, values)
        if self.dry_run or not changes:
            if customer is _UNKNOWN:
                customer = self._customer(values)
            if isinstance(customer, Answer):  # neither found nor not found: refused
                return rejected(self._reason(customer), customer.message)
            if customer is not None:
                return Outcome("unchanged" if not changes else "updated", notes=notes)
            if not op.create:
                return rejected("customer not found", f"no customer has this {name}", name)
            # A row of the key alone still adds its customer (the key is the add's body).
            return Outcome("created") if self.dry_run else self._create(record, values)
        if customer is None:  # looked up already: no one has the key
            return self._create(record, values)
        answer = self.http.send(op.update, values, record)
        if answer.ok:
            return Outcome("updated", warnings=tuple(answer.warnings), notes=notes)
        if op.create and set(answer.codes) & self.http.writes.answers.not_found_codes:
            return self._create(record, values)
        return rejected(self._reason(answer), answer.message)

    def _screened(self, record: Mapping[str, Any], name: str, value: Any
                  ) -> tuple[Mapping[str, Any], Any, tuple[str, ...]] | Outcome:
        """The record as the object's screen lets it be sent, the customer if it had to be
        looked up for that (else _UNKNOWN), and notes of what was left out; or a rejection."""
        screen = self.obj.screen
        if screen is None:
            return record, _UNKNOWN, ()
        dated = screen.dates(record)
        if isinstance(dated, Refusal):
            return rejected(dated.reason, dated.message, dated.field)
        if not screen.needs_customer(dated):
            return dated, _UNKNOWN, ()
        customer = self._customer(self.http.values(dated, name, value))
        if isinstance(customer, Answer):
            return rejected(self._reason(customer), customer.message)
        if customer is None and not self.operation.create:
            return rejected("customer not found", f"no customer has this {name}", name)
        against = screen.against(dated, customer, self._holder)
        if isinstance(against, Refusal):
            return rejected(against.reason, against.message, against.field)
        kept, notes = against
        return kept, customer, tuple(notes)

    def _customer(self, values: Mapping[str, Any]) -> Mapping[str, Any] | Answer | None:
        """The customer the key finds, as the vendor holds it; None when no one has the key;
        the answer itself when it says neither (8013: the key is invalid)."""
        assert self.operation.find is not None, f"{self.operation.mode}: a find endpoint"
        answer = self.http.send(self.operation.find, values)
        if answer.ok:
            return answer.body if isinstance(answer.body, Mapping) else {}
        if set(answer.codes) & self.http.writes.answers.not_found_codes:
            return None
        return answer

    def _exists(self, values: Mapping[str, Any]) -> bool | None:
        """Whether a customer has the key; None if the answer says neither."""
        customer = self._customer(values)
        return None if isinstance(customer, Answer) else customer is not None

    def _holder(self, kind: str, value: str) -> Holder:
        """Who holds identifier `kind` = `value` on any source (None: no one), and the vendor's
        words when it refuses the lookup (8013)."""
        find = self.obj.identifier_find
        assert find is not None, "screen.identifiers.find"
        answer = self.http.send(find, {**self.http.config, "type": kind, "value": value})
        if answer.ok:
            found = answer.body.get("id") if isinstance(answer.body, Mapping) else None
            return (None, "the lookup found a customer without an id") if found is None \
                else (str(found), "")
        if set(answer.codes) & self.http.writes.answers.not_found_codes:
            return None, ""
        return None, answer.message or self._reason(answer)

    def _create(self, record: Mapping[str, Any], values: Mapping[str, Any]) -> Outcome:
        assert self.operation.create is not None
        create = self.operation.create
        for attempt in range(self.http.tries):
            self.http.pause(attempt)
            answer = self.http.send(create, values, record, idempotent=False)
            if not answer.lost:
                return Outcome("created", warnings=tuple(answer.warnings)) if answer.ok \
                    else rejected(self._reason(answer), answer.message)
            # The add may have been applied: look before adding again.
            if self._exists(values):
                return Outcome("created")
        raise self.http.gave_up(create)


_UNKNOWN = object()  # the customer, not looked up


class _Index:
    """Every customer of a listed object, by id and by each case-folded field."""

    def __init__(self, cursor: str, folded: list[str]) -> None:
        self.cursor, self.folded = cursor, folded
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_field: dict[str, dict[str, list[str]]] = {f: {} for f in folded}

    def add(self, item: Mapping[str, Any]) -> None:
        ident = str(item.get(self.cursor))
        self.remove(ident)
        self.by_id[ident] = dict(item)
        for name in self.folded:
            value = item.get(name)
            if isinstance(value, str) and value:
                self.by_field[name].setdefault(value.casefold(), []).append(ident)

    def remove(self, ident: str) -> None:
        old = self.by_id.pop(ident, None)
        for name in self.folded:
            value = (old or {}).get(name)
            if isinstance(value, str) and value:
                held = self.by_field[name].get(value.casefold(), [])
                if ident in held:
                    held.remove(ident)

    def find(self, name: str, value: Any) -> list[dict[str, Any]]:
        if name == self.cursor:
            found = self.by_id.get(str(value))
            return [found] if found else []
        ids = self.by_field.get(name, {}).get(str(value).casefold(), [])
        return [self.by_id[i] for i in ids]


class ListedObject(Applier):
    """An object the vendor cannot look up (Malomo's customers): listed once, then matched
    here. A record identical to the customer as listed sends nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listing = self.obj.listing or {}
        self.cursor = str(listing.get("cursor", "id"))
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def _list(self) -> Iterator[dict[str, Any]]:
        listing = self.obj.listing or {}
        after: str | None = None
        while True:
            query = {listing["next_param"]: after} if after else {}
            page = self.http.send(Endpoint("GET", listing["path"], query), self.http.config)
            if not page.ok or not isinstance(page.body, list):
                raise self.http.unreadable_listing(listing["path"], page)
            items = [dict(i) for i in page.body if isinstance(i, Mapping)]
            if not items:
                return
            yield from items
            last = items[-1].get(self.cursor)
            if last is None or str(last) == after:
                return
            after = str(last)

    def index(self) -> _Index:
        with self._lock:
            if self._index is None:
                listing = self.obj.listing or {}
                index = _Index(self.cursor, list(listing.get("casefold") or []))
                for item in self._list():
                    index.add(item)
                self._index = index
            return self._index

    def apply(self, record: Mapping[str, Any]) -> Outcome:
        op = self.operation
        if op.mode == "append":
            return self._create(record)
        name = self.key[0] if self.key else ""
        value = record.get(name) if name else None
        if value is None or value == "":
            return rejected("no matching key", f"the record has no '{name}'", name)
        found = self.index().find(name, value)
        if len(found) > 1:
            return rejected("ambiguous match",
                            f"{len(found)} customers have this {name}; none was changed", name)
        if op.mode == "soft_delete":
            return self._delete(found[0] if found else None)
        if not found:
            if op.create and name != self.cursor:
                return self._create(record)
            return rejected("customer not found", f"no customer has this {name}", name)
        return self._update(found[0], record)

    def _update(self, current: dict[str, Any], record: Mapping[str, Any]) -> Outcome:
        assert self.operation.update is not None
        values = self.http.values(record)
        values[self.cursor] = current[self.cursor]
        changes = body(self.operation.update.body, record, values) or {}
        folded = set((self.obj.listing or {}).get("casefold") or [])
        if all(_same(current.get(k), v, k in folded) for k, v in changes.items()):
            return Outcome("unchanged")
        if self.dry_run:
            return Outcome("updated")
        answer = self.http.send(self.operation.update, values, record)
        if not answer.ok:
            return rejected(self._reason(answer), answer.message)
        self.index().add(answer.body if isinstance(answer.body, Mapping) and
                         answer.body.get(self.cursor) else {**current, **changes})
        return Outcome("updated")

    def _delete(self, current: dict[str, Any] | None) -> Outcome:
        delete = self.operation.delete
        assert delete is not None
        if current is None:
            return Outcome("deleted", "already gone")
        if self.dry_run:
            return Outcome("deleted")
        answer = self.http.send(delete, {**self.http.config, self.cursor: current[self.cursor]})
        if answer.ok or answer.status in delete.gone_statuses:
            self.index().remove(str(current[self.cursor]))
            return Outcome("deleted", "" if answer.ok else "already gone")
        return rejected(self._reason(answer), answer.message)

    def _create(self, record: Mapping[str, Any]) -> Outcome:
        create = self.operation.create
        assert create is not None
        if self.dry_run:
            return Outcome("created")
        values = self.http.values(record)
        for attempt in range(self.http.tries):
            self.http.pause(attempt)
            answer = self.http.send(create, values, record, idempotent=False)
            if not answer.lost:
                if not answer.ok:
                    return rejected(self._reason(answer), answer.message)
                if isinstance(answer.body, Mapping) and answer.body.get(self.cursor):
                    self.index().add(answer.body)
                return Outcome("created")
            adopted = self._made_by_lost_create(record)
            if adopted is not None:
                self.index().add(adopted)
                return Outcome("created")
        raise self.http.gave_up(create)

    def _made_by_lost_create(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """A customer the create may have made: listed now, not before, with its e-mail."""
        known = set(self.index().by_id)
        email = str(record.get("email") or "").casefold()
        for item in self._list():
            if str(item.get(self.cursor)) not in known and \
                    str(item.get("email") or "").casefold() == email:
                return item
        return None


def _same(current: Any, wanted: Any, folded: bool = False) -> bool:
    """Whether the vendor already holds `wanted`; an e-mail address in another letter case
    is the same address (it matched), and is left as the vendor has it."""
    if folded and isinstance(current, str) and isinstance(wanted, str):
        return current.casefold() == wanted.casefold()
    return bool(current == wanted)


def applier(http: VendorHttp, obj: WritableObject, operation: Operation, key: list[str],
            dry_run: bool) -> Applier:
    kind = ListedObject if obj.listing else KeyedObject
    return kind(http, obj, operation, key, dry_run)
