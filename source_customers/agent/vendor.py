"""One configured vendor, built once when the server starts: its requests (authenticator,
base_url, budget), its lookups, and its failures in the connector's own words.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.agent.lookups import (
    LookupFailed,
    LookupHttp,
    Lookups,
    NotFound,
    Step,
    load_lookups,
    run_steps,
)
from source_customers.destination.apply import ListedObject, applier
from source_customers.destination.pacing import Pacer
from source_customers.vendors import load_manifest

# The status in VendorHttp's words ("answered ... with HTTP 401", "(HTTP 401 to ...").
_STATUS = re.compile(r"\bHTTP (\d{3})\b")


@dataclass
class Answer:
    """A vendor's part of a tool's answer."""

    vendor: str
    status: str  # found, not_found, cannot_look_up, failed, timed_out
    records: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    waited_seconds: float = 0.0  # held by the vendor's rate-limit budget


class _TimedPacer:
    """The vendor's pacer (its manifest's budget), timing how long each thread was held by
    it: an answer says when a vendor's rate limit, not the vendor, made it slow."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.local = threading.local()

    @contextmanager
    def turn(self, request: Any) -> Iterator[None]:
        started = time.monotonic()
        with self.pacer.turn(request):
            self.local.waited = self.waited() + time.monotonic() - started
            yield

    def waited(self) -> float:
        return float(getattr(self.local, "waited", 0.0))

    def reset(self) -> None:
        self.local.waited = 0.0


def source_words(vendor: str) -> dict[int, str]:
    """The source manifest's own message for each status it fails on (its requester's
    response filters), so a lookup fails in the words a sync would."""
    manifest = ManifestReferenceResolver().preprocess_manifest(load_manifest(vendor))
    handler = (manifest["definitions"].get("requester") or {}).get("error_handler") or {}
    words: dict[int, str] = {}
    for rule in handler.get("response_filters") or []:
        message = rule.get("error_message")
        if rule.get("action") != "FAIL" or not message:
            continue
        for status in rule.get("http_codes") or []:
            words.setdefault(int(status), str(message))
    return words


class Vendor:
    def __init__(self, key: str, config: Mapping[str, Any]) -> None:
        self.lookups: Lookups = load_lookups(key)
        self.key, self.name = key, self.lookups.vendor
        # A person is waiting: 3 tries, and an unreachable host fails at once.
        self.http = LookupHttp(self.lookups.writes, config, checking=True)
        self.budget = _TimedPacer(self.http.pacer) if self.http.pacer is not None else None
        if self.budget is not None:
            self.http.pacer = self.budget  # type: ignore[assignment]  # the same turn()
        self.words = source_words(key)
        self._listed: ListedObject | None = None
        self._listed_at = 0.0
        self._listing = threading.Lock()
        self.writing = threading.Lock()  # one write at a time per vendor

    # --- what the tools call ------------------------------------------------------------
    def find(self, key: str, value: Any) -> Answer:
        steps = self.lookups.find.get(key)
        if steps is None:
            return self._cannot(key)
        if key == "phone" and self.lookups.phone_digits:
            value = re.sub(r"\D", "", str(value))
        name = {"email": "email", "phone": "mobile"}.get(key, "")
        values: dict[str, Any] = {key: value, "$name": name, "$value": value}
        if isinstance(value, Mapping):  # an identifier {name, value}
            if value.get("name") not in self.lookups.identifier_names:
                return self._cannot(f"identifier '{value.get('name')}'")
            values = {"$name": value["name"], "$value": value["value"]}
        return self.run(lambda: self._listed_find(key, value) if steps == "listed"
                         else run_steps(self.http, _steps(steps), values))

    def get(self, ident: str) -> Answer:
        if not self.lookups.get:
            return Answer(self.key, "cannot_look_up", message=(
                f"{self.name} has no lookup by its own id: find the customer with "
                "find_customer by e-mail, phone or identifier."))
        return self.run(lambda: run_steps(self.http, self.lookups.get, {"id": ident}))

    def activity(self, ident: str, limit: int) -> Answer:
        if not self.lookups.activity:
            return Answer(self.key, "cannot_look_up", message=(
                f"{self.name} keeps no related records apart from the customer: its "
                "customer record (find_customer) holds them."))

        def read() -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = []
            missing = 0
            for activity in self.lookups.activity:
                try:
                    found = run_steps(self.http, (*activity.before, activity.step),
                                      {"id": ident}, limit)
                except NotFound:
                    if activity.before:
                        raise  # the customer herself is not there
                    missing += 1
                    found = []
                if activity.newest_first:
                    found.sort(key=lambda r: str(r.get(activity.newest_first) or ""),
                               reverse=True)
                records += [{"kind": activity.name, "record": r} for r in found[:limit]]
            if missing == len(self.lookups.activity):
                raise NotFound()  # every kind answered "no such customer"
            return records

        # A customer with no related records is found, with none.
        return self.run(read, empty="found")

    def current(self, key: str, value: Any) -> dict[str, Any] | None:
        """The customer as the vendor holds her, by a matching key; None if none has it.
        Raises LookupFailed (or the vendor's failure) when the vendor cannot say."""
        if self.lookups.find.get("email") == "listed":
            found = self.listed().index().find(key, value)
            if len(found) > 1:
                raise LookupFailed(f"{len(found)} customers have this {key}")
            if not found:
                return None
            # The listing may be minutes old: the customer as she is now.
            try:
                return run_steps(self.http, self.lookups.get, {"id": found[0]["id"]})[0]
            except NotFound:
                return None
        steps = self.lookups.find.get("identifier")
        assert isinstance(steps, tuple), f"{self.key}: an identifier lookup"
        try:
            records = run_steps(self.http, steps, {"$name": key, "$value": value})
        except NotFound:
            return None
        return records[0] if records else None

    def listed(self) -> ListedObject:
        """The destination's listing of a vendor without a lookup (Malomo), kept for
        `listing_seconds`: an agent asking many questions lists it once."""
        with self._listing:
            stale = time.monotonic() - self._listed_at > self.lookups.listing_seconds
            if self._listed is None or stale:
                obj = self.lookups.writes.objects["customers"]
                made = applier(self.http, obj, obj.operations["update"], ["email"],
                               dry_run=True)
                assert isinstance(made, ListedObject)
                self._listed, self._listed_at = made, time.monotonic()
            return self._listed

    # --- machinery ----------------------------------------------------------------------
    def _listed_find(self, key: str, value: Any) -> list[dict[str, Any]]:
        return [dict(c) for c in self.listed().index().find(key, value)]

    def _cannot(self, key: str) -> Answer:
        can = [k for k in self.lookups.find]
        if self.lookups.identifier_names:
            can = [k for k in can if k != "identifier"] + [
                "identifier (" + ", ".join(self.lookups.identifier_names) + ")"]
        return Answer(self.key, "cannot_look_up", message=(
            f"{self.name} cannot look a customer up by {key}; it can by: {', '.join(can)}."))

    def run(self, lookup: Any, empty: str = "not_found") -> Answer:
        """The lookup's answer: its records, or the status `empty` when it found none, or
        how it failed."""
        if self.budget is not None:
            self.budget.reset()
        try:
            records = lookup()
            status = "found" if records else empty
            answer = Answer(self.key, status, records)
        except NotFound:
            answer = Answer(self.key, "not_found")
        except LookupFailed as error:
            answer = Answer(self.key, "failed", message=f"{self.name}: {error}")
        except AirbyteTracedException as error:
            answer = Answer(self.key, "failed", message=self._words(error.message or ""))
        except RuntimeError as error:  # the destination's listing of a failed page
            answer = Answer(self.key, "failed", message=f"{self.name}: {error}")
        if self.budget is not None:
            answer.waited_seconds = round(self.budget.waited(), 2)
        return answer

    def _words(self, message: str) -> str:
        """The source's message for the status that failed, filled in as a sync fills it
        (from the config and the answer's body), or VendorHttp's own."""
        found = _STATUS.search(message)
        template = self.words.get(int(found.group(1))) if found else None
        if template is None:
            return message
        url, body = self.http.last_answer()
        try:
            text = InterpolatedString.create(template, parameters={}).eval(
                dict(self.http.config), response=body if isinstance(body, Mapping) else {},
                request_url=url)
        except Exception:  # a template this context cannot fill: VendorHttp's words
            return message
        return " ".join(str(text).split())


def _steps(steps: tuple[Step, ...] | str) -> tuple[Step, ...]:
    assert isinstance(steps, tuple)
    return steps
