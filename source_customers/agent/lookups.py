"""What a vendor's lookups manifest declares (`manifests/<vendor>.lookups.yaml`), and the
requests it makes: each key's steps to find a customer, the steps to get her by id, and her
related records. Requests go through the destination's `VendorHttp` (the source manifest's
authenticator, base_url, headers and budget; retries and answers sorted as declared).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from source_customers.components.answers import value_at
from source_customers.destination.objects import Answers, Endpoint, Writes, fill, load_writes
from source_customers.destination.vendor_http import Answer, VendorHttp
from source_customers.vendors import MANIFEST_DIR, VENDORS, load_manifest

KEYS = ("email", "phone", "identifier")
MAX_PAGES = 50  # a customer's related records: more than this is not one customer's


class NotFound(Exception):
    """The vendor answered that it has no such customer."""


class LookupFailed(Exception):
    """The vendor's answer was not one a lookup can use; the message says why."""


@dataclass(frozen=True)
class Step:
    endpoint: Endpoint
    records: list[str] | None = None  # where the answer holds its records; None: none
    record_key: tuple[str, ...] = ()  # what each record of the answer holds, always
    take: Mapping[str, list[str]] = field(default_factory=dict)  # values for later steps
    add: Mapping[str, str] = field(default_factory=dict)  # fields added to each record
    remove: tuple[str, ...] = ()
    not_found_statuses: tuple[int, ...] = ()
    next_link: list[str] | None = None  # the next page's link in the body
    next_header: str = ""  # ... in a header
    next_param: str = ""  # the query parameter given the last record's id


@dataclass(frozen=True)
class Activity:
    name: str
    step: Step
    before: tuple[Step, ...] = ()
    newest_first: str = ""  # the field that orders records, newest first


@dataclass(frozen=True)
class Lookups:
    vendor: str  # as users write it
    key: str  # as config["vendor"] names it
    primary_key: list[str]
    find: Mapping[str, tuple[Step, ...] | str]  # key -> steps, or "listed"
    get: tuple[Step, ...]
    activity: tuple[Activity, ...]
    writes: Writes  # the answers' rules (the writes manifest's, where the vendor has one)
    identifier_names: tuple[str, ...] = ()
    phone_digits: bool = False
    listing_seconds: float = 300.0
    current: Mapping[str, list[Any]] = field(default_factory=dict)  # field -> path


def _step(spec: Mapping[str, Any]) -> Step:
    return Step(
        endpoint=Endpoint(method=spec["method"], path=spec["path"],
                          query=dict(spec.get("query") or {}), body=spec.get("body")),
        records=list(spec["records"]) if "records" in spec else None,
        record_key=tuple(spec.get("record_key") or ()),
        take={k: list(v) for k, v in (spec.get("take") or {}).items()},
        add=dict(spec.get("add") or {}), remove=tuple(spec.get("remove") or ()),
        not_found_statuses=tuple(spec.get("not_found_statuses") or ()),
        next_link=list(spec["next_link"]) if "next_link" in spec else None,
        next_header=str(spec.get("next_header") or ""),
        next_param=str(spec.get("next_param") or ""))


def _answers(raw: Mapping[str, Any]) -> Answers:
    values: dict[str, Any] = {
        "message_paths": [list(p) for p in raw.get("message_paths") or []],
        "reference_path": list(raw.get("reference_path") or []),
        "error_codes_path": list(raw.get("error_codes_path") or []),
        "warnings_path": list(raw.get("warnings_path") or []),
        "retry_statuses": frozenset(raw.get("retry_statuses") or ()),
        "retry_codes": frozenset(raw.get("retry_codes") or ()),
        "unprocessed_statuses": frozenset(raw.get("unprocessed_statuses") or ()),
        "fail_statuses": frozenset(raw.get("fail_statuses") or ()),
        "fail_codes": frozenset(raw.get("fail_codes") or ()),
        "not_found_codes": frozenset(raw.get("not_found_codes") or ()),
        "credentials": str(raw.get("credentials") or "the credentials"),
        "codes": {int(k): str(v) for k, v in (raw.get("codes") or {}).items()}}
    # The destination's rules grow with its writes: give Answers the ones it declares.
    declared = {f.name for f in dataclasses.fields(Answers)}
    return Answers(**{k: v for k, v in values.items() if k in declared})


def _writes_for(vendor: str, raw: Mapping[str, Any]) -> Writes:
    """The rules `VendorHttp` sorts answers by: the writes manifest's, so that one vendor's
    reads and writes agree; for a vendor without one, the lookups manifest's `answers`."""
    if (MANIFEST_DIR / f"{vendor}.writes.yaml").is_file():
        return load_writes(vendor)
    source = load_manifest(vendor)["spec"]["connection_specification"]["properties"]
    return Writes(vendor=raw["vendor"], key=vendor, config_keys=list(source),
                  check=Endpoint("GET", "/"), answers=_answers(raw.get("answers") or {}),
                  objects={}, defaults={k: v["default"] for k, v in source.items()
                                        if isinstance(v, Mapping) and "default" in v})


@cache
def load_lookups(vendor: str) -> Lookups:
    raw = yaml.safe_load((MANIFEST_DIR / f"{vendor}.lookups.yaml").read_text(encoding="utf-8"))
    customers = raw["customers"]
    find: dict[str, tuple[Step, ...] | str] = {}
    for key, steps in (customers.get("find") or {}).items():
        assert key in KEYS, f"{vendor}.lookups.yaml: unknown key {key}"
        find[key] = steps if isinstance(steps, str) else tuple(_step(s) for s in steps)
    return Lookups(
        vendor=raw["vendor"], key=vendor, primary_key=list(customers["primary_key"]),
        find=find, get=tuple(_step(s) for s in customers.get("get") or ()),
        activity=tuple(Activity(name=a["name"], step=_step(a),
                                before=tuple(_step(s) for s in a.get("before") or ()),
                                newest_first=str(a.get("newest_first") or ""))
                       for a in raw.get("activity") or ()),
        writes=_writes_for(vendor, raw),
        identifier_names=tuple(customers.get("identifier_names") or ()),
        phone_digits=bool(customers.get("phone_digits")),
        listing_seconds=float(customers.get("listing_seconds") or 300),
        current={k: list(v) for k, v in (raw.get("current") or {}).items()})


class LookupHttp(VendorHttp):
    """VendorHttp that also keeps each thread's last answer: LOKE pages by a header, which
    `Answer` does not carry, and the source's error words quote the body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def read_answer(self, response: requests.Response) -> Answer:
        self._local.response = response
        answer = super().read_answer(response)
        self._local.body = answer.body
        return answer

    def headers_of_answer(self) -> Mapping[str, str]:
        response = getattr(self._local, "response", None)
        return response.headers if response is not None else {}

    def last_answer(self) -> tuple[str, Any]:
        """The URL and parsed body of this thread's last answer, for an error's words."""
        response = getattr(self._local, "response", None)
        return (response.url if response is not None else ""), getattr(self._local, "body", None)


def lookup_vendors() -> tuple[str, ...]:
    return tuple(v for v in VENDORS if (MANIFEST_DIR / f"{v}.lookups.yaml").is_file())


def run_steps(http: VendorHttp, steps: tuple[Step, ...], values: Mapping[str, Any],
              limit: int | None = None) -> list[dict[str, Any]]:
    """The records the last step answers, each earlier step taking values for the next.
    Raises NotFound when a step's answer says the customer is not there."""
    known = {**http.config, **values}
    records: list[dict[str, Any]] = []
    for step in steps:
        records = []
        for answer in _pages(http, step, known, limit):
            for name, path in step.take.items():  # present: _pages checked the shape
                known[name] = value_at(answer, path)
            records += _records(step, answer, known)
    return records


def _records(step: Step, answer: Any, known: Mapping[str, Any]) -> list[dict[str, Any]]:
    if step.records is None:
        return []
    found = value_at(answer, step.records) if step.records else answer
    items = found if isinstance(found, list) else [found]
    shaped = []
    for item in items:
        record = {k: v for k, v in item.items() if k not in step.remove}
        record.update({k: fill(v, known) for k, v in step.add.items()})
        shaped.append(record)
    return shaped


def _pages(http: VendorHttp, step: Step, known: Mapping[str, Any], limit: int | None
           ) -> list[Any]:
    """Each page's parsed answer, following the step's next-page rule."""
    endpoint = step.endpoint
    query = dict(endpoint.query)
    pages: list[Any] = []
    seen: set[str] = set()
    path = fill(endpoint.path, known)
    while len(pages) < MAX_PAGES:
        # Braces in a link or a value are data, not placeholders for VendorHttp to fill.
        sent = Endpoint(endpoint.method, path.replace("{", "%7B").replace("}", "%7D"),
                        query, endpoint.body)
        for attempt in range(http.tries):
            # As the source's answer checks: a 2xx that is not the documented shape (an
            # error object, a wrapped or cut body) is asked again, then fails naming it.
            http.pause(attempt)
            answer = http.send(sent, known)  # VendorHttp fills the query's and body's `{name}`s
            if answer.status in step.not_found_statuses or \
                    set(answer.codes) & http.writes.answers.not_found_codes:
                raise NotFound()
            if not answer.ok:
                reason = answer.message or "no explanation given"
                raise LookupFailed(f"{http.writes.vendor} answered {endpoint.method} "
                                   f"{endpoint.path} with HTTP {answer.status}: {reason}")
            problem = _shape_problem(step, answer.body)
            if problem is None:
                break
        else:
            raise LookupFailed(f"{http.writes.vendor} answered {endpoint.method} "
                               f"{endpoint.path} with {problem}, {http.tries} times")
        pages.append(answer.body)
        link = _next(http, step, answer.body)
        if not link or link in seen or (limit is not None and _count(step, pages) >= limit
                                        and not step.next_param):
            break
        seen.add(link)
        if step.next_param:
            query = {**query, step.next_param: link}
        else:
            # A link is sent as received (Okendo's lastEvaluated must come back exactly).
            path, query = link, {}
    return pages


def _shape_problem(step: Step, body: Any) -> str | None:
    """What is wrong with the shape of a 2xx answer, or None if it is as documented."""
    for path in step.take.values():
        if value_at(body, path) in (None, ""):
            return f"a body that is not the documented shape: no '{'.'.join(path)}'"
    if step.records is None:
        return None
    found = value_at(body, step.records) if step.records else body
    items = found if isinstance(found, list) else [found]
    for item in items:
        if not isinstance(item, Mapping) or any(item.get(k) in (None, "")
                                                for k in step.record_key):
            expected = "a JSON object" + "".join(f" with '{k}'" for k in step.record_key)
            return (f"a body that is not the documented shape: expected {expected} "
                    f"at '{'.'.join(step.records) or 'the top'}'")
    return None


def _count(step: Step, pages: list[Any]) -> int:
    total = 0
    for page in pages:
        found = value_at(page, step.records) if step.records else page
        total += len(found) if isinstance(found, list) else 1
    return total


def _next(http: VendorHttp, step: Step, page: Any) -> str:
    """The next page (a path under base_url, or the cursor value), or "" on the last page.
    A link to another host is refused: it would receive the vendor's credentials."""
    if step.next_param:
        items = value_at(page, step.records) if step.records else page
        last = items[-1] if isinstance(items, list) and items else None
        return str(last.get("id") or "") if isinstance(last, Mapping) else ""
    if step.next_link is not None:
        link = value_at(page, step.next_link)
    elif step.next_header:
        link = http.headers_of_answer().get(step.next_header) \
            if isinstance(http, LookupHttp) else None
    else:
        return ""
    if not isinstance(link, str) or not link:
        return ""
    if "://" in link:
        base = urlsplit(http.base_url)
        target = urlsplit(link)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc) or \
                not target.path.startswith(base.path):
            raise LookupFailed(f"{http.writes.vendor} sent a next-page link to another host; "
                               "not followed, as it would receive the credentials")
        link = target.path[len(base.path):] + (f"?{target.query}" if target.query else "")
    return link if link.startswith("/") else "/" + link
