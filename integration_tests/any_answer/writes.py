"""Any answer, for writes (issue 22): write scripts for `destination-customers`, a fault
schedule over the sandbox's requests, and the oracle of the vendor's end state.

A `WriteScript` is what Hypothesis generates: the input lines (rows, each named by what its
matching key is: a customer the sandbox has, a new one, an invalid value, none; and STATE
messages between them), the faults the sandbox serves to its next requests in order, and
the destination's `num_workers`. `run` serves a fresh sandbox, runs the installed
`destination-customers write` on it, and `judge` holds the outcome to one invariant:

- the run succeeded, and the vendor's end state is exactly what the rows ask (computed from
  the sandbox's initial state and the rows, by key: nothing missing, nothing extra, no
  second customer for one e-mail address or mobile), the records rejected are exactly the
  ones that had to be, and every STATE is echoed in order with its epoch's counts; or
- it failed with one readable ERROR trace (no Python traceback anywhere), every echoed STATE
  is right, and every record before the last echoed STATE is applied (a record after it is
  either applied or not, never half, never twice).

The sandboxes are seeded, so a script's rows resolve to the same values in every run: a
`WriteScript(...)` repr pastes into a regression test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from integration_tests.sandbox import capillary, malomo, start
from integration_tests.sandbox.server import Response, Server, VendorApi

EXECUTABLE = shutil.which("destination-customers", path=str(Path(sys.executable).parent)) \
    or "destination-customers"
RUN_TIMEOUT = 180.0
STALL = 0.3  # seconds a "timeout" fault keeps the destination waiting (then answers late)

# Faults that any request may meet. "429:N" answers 429 with `Retry-After: N` (seconds),
# "429:date" with an HTTP-date two seconds ahead; "timeout" stalls STALL seconds and then
# answers (the destination's read timeout is longer): a slow answer, applied.
COMMON_FAULTS = ("429:0", "429:1", "429:2", "429:date", "500", "502", "503", "504", "html",
                 "reset", "applied-lost", "applied-503", "timeout")
VENDOR_FAULTS = {"malomo": COMMON_FAULTS, "capillary": (*COMMON_FAULTS, "521", "461")}
RETRIES = 7  # vendor_http.MAX_TRIES: a burst this long on one request ends the sync

NAMES = ("Ana", "Zoë", "Kai", "Søren", "李", "O'Brien")
PHONES = ("555-100-2000", "555-300-4000")


# --- what is generated --------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One RECORD. `stream` is "upserts" or "deletes" (Malomo's soft_delete by id).
    `key`: "existing" (the `which`-th customer the sandbox has), "new" (the `which`-th
    address or mobile no customer has), "invalid" (a value the vendor refuses), "none" (no
    matching key at all). `case` writes an e-mail address in another letter case.
    `fields`: the row's other columns."""

    key: str
    which: int = 0
    fields: tuple[tuple[str, str], ...] = ()
    stream: str = "upserts"
    case: str = "same"  # "same", "upper", "title"


@dataclass(frozen=True)
class State:
    n: int


@dataclass(frozen=True)
class WriteScript:
    vendor: str
    mode: str  # of the "upserts" stream: Capillary's update or append_dedup; Malomo's append_dedup
    lines: tuple[Row | State, ...]
    faults: tuple[str, ...] = ()  # for the sandbox's next requests, in order; "" passes one
    workers: int = 1


def _fields(vendor: str) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    if vendor == "malomo":
        column = st.one_of(st.tuples(st.just("first_name"), st.sampled_from(NAMES)),
                           st.tuples(st.just("last_name"), st.sampled_from(NAMES)),
                           st.tuples(st.just("phone_number"), st.sampled_from(PHONES)))
    else:
        column = st.one_of(st.tuples(st.just("firstName"), st.sampled_from(NAMES)),
                           st.tuples(st.just("lastName"), st.sampled_from(NAMES)),
                           st.tuples(st.just("loyaltyType"),
                                     st.sampled_from(("loyalty", "non_loyalty"))),
                           # "program:tier": an enrolment (ENROLMENT), the default program
                           # being one loyalty customers of the seed are already in
                           st.tuples(st.just("enrol"), st.sampled_from(("1483:3", "2207:1",
                                                                        "2207:2"))))
    return st.lists(column, max_size=2, unique_by=lambda c: c[0]).map(tuple)


def _row(vendor: str) -> st.SearchStrategy[Row]:
    upsert = st.builds(Row, key=st.sampled_from(("existing", "existing", "new", "new",
                                                 "invalid", "none")),
                       which=st.integers(0, 3), fields=_fields(vendor))
    if vendor == "capillary":
        return upsert
    upsert = st.builds(Row, key=st.sampled_from(("existing", "existing", "new", "new",
                                                 "invalid", "none")),
                       which=st.integers(0, 3), fields=_fields(vendor),
                       case=st.sampled_from(("same", "same", "upper", "title")))
    delete = st.builds(Row, key=st.sampled_from(("existing", "existing", "new", "none")),
                       which=st.integers(0, 3), stream=st.just("deletes"))
    return st.one_of(upsert, upsert, delete)


@st.composite
def _lines(draw: st.DrawFn, vendor: str) -> tuple[Row | State, ...]:
    rows = draw(st.lists(_row(vendor), min_size=1, max_size=8))
    cuts = draw(st.lists(st.integers(0, len(rows)), max_size=3))
    lines: list[Row | State] = []
    n = 0
    for at, row in enumerate([*rows, None]):
        for _ in range(cuts.count(at)):
            n += 1
            lines.append(State(n))
        if row is not None:
            lines.append(row)
    return tuple(lines)


@st.composite
def _faults(draw: st.DrawFn, vendor: str) -> tuple[str, ...]:
    """A short schedule: up to three faults with a few requests passing between them, and
    now and then a burst of 429s as long as the retries (the sync must then give up)."""
    schedule: list[str] = []
    for gap, kind in draw(st.lists(st.tuples(st.integers(0, 5),
                                             st.sampled_from(VENDOR_FAULTS[vendor])),
                                   max_size=3)):
        schedule += [""] * gap + [kind]
    if draw(st.sampled_from((False, False, False, False, True))):
        at = draw(st.integers(0, len(schedule)))
        schedule[at:at] = ["429:1"] * RETRIES
    while schedule and schedule[-1] == "":
        schedule.pop()
    return tuple(schedule)


def write_scripts(vendor: str) -> st.SearchStrategy[WriteScript]:
    modes = ("append_dedup",) if vendor == "malomo" else ("update", "append_dedup")
    return st.builds(WriteScript, vendor=st.just(vendor), mode=st.sampled_from(modes),
                     lines=_lines(vendor), faults=_faults(vendor),
                     workers=st.sampled_from((1, 1, 3)))


# --- the sandboxes, with faults of their own ------------------------------------------------

def _retry_after(api: VendorApi, kind: str, parent: Any) -> Response:
    if not kind.startswith("429:"):
        return parent(kind)  # type: ignore[no-any-return]
    response = parent("429")
    form = kind.partition(":")[2]
    response.headers["Retry-After"] = (formatdate(time.time() + 2, usegmt=True)
                                       if form == "date" else form)
    return response  # type: ignore[no-any-return]


class MalomoApi(malomo.Api):
    def fault_response(self, kind: str) -> Response:
        return _retry_after(self, kind, super().fault_response)


class CapillaryApi(capillary.Api):
    def fault_response(self, kind: str) -> Response:
        return _retry_after(self, kind, super().fault_response)


def new_api(vendor: str) -> VendorApi:
    if vendor == "malomo":
        return MalomoApi(customers=10, page_size=4)
    return CapillaryApi(customers=12)


# --- rows as data ---------------------------------------------------------------------------

def _email_case(address: str, case: str) -> str:
    local, _, domain = address.partition("@")
    if case == "upper":
        return address.upper()
    if case == "title":
        return local.capitalize() + "@" + domain.upper()
    return address


@dataclass
class World:
    """The sandbox as it was before the run, and each row resolved to its data."""

    vendor: str
    initial: list[dict[str, Any]]
    data: list[tuple[int, Row, dict[str, Any]]] = field(default_factory=list)  # (line, row, data)
    programs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # Capillary's


def _enrolment(value: str) -> list[dict[str, Any]]:
    """A row's `enrol` column ("program:tier") as Capillary's loyaltyProgramEnrollments, its
    tier expiring at a time in UTC (sent converted to Capillary's form)."""
    program, _, tier = value.partition(":")
    return [{"programId": int(program), "tierNumber": int(tier),
             "tierExpiryDate": "2027-12-31T18:30:00Z"}]


def _programs(api: VendorApi, customer: dict[str, Any]) -> list[tuple[int, int]]:
    return sorted((p["programId"], p["slabSNo"])
                  for p in api.programs(customer))  # type: ignore[attr-defined]


def resolve(script: WriteScript, api: VendorApi) -> World:
    import copy

    customers = copy.deepcopy(api.customers)  # type: ignore[attr-defined]
    world = World(script.vendor, customers)
    if script.vendor == "capillary":
        world.programs = {c["id"]: _programs(api, c) for c in customers}
    for number, line in enumerate(script.lines):
        if isinstance(line, Row):
            data = {**dict(line.fields), "_row": number}
            if "enrol" in data:
                data["loyaltyProgramEnrollments"] = _enrolment(data.pop("enrol"))
            key = _key_value(script.vendor, customers, line)
            if key is not None:
                name = "id" if line.stream == "deletes" else (
                    "email" if script.vendor == "malomo" else "mobile")
                data[name] = key
            world.data.append((number, line, data))
    return world


def _key_value(vendor: str, customers: list[dict[str, Any]], row: Row) -> str | None:
    if row.key == "none":
        return None
    if vendor == "capillary":
        if row.key == "existing":
            return capillary.Api.identifier(customers[row.which % len(customers)], "mobile")
        if row.key == "new":
            return capillary.unknown_mobiles(4)[row.which]
        return ("not-a-number", "12345", "+91 98", "0")[row.which]
    if row.stream == "deletes":
        # Customers at odd places are deleted, those at even places upserted: one stream
        # never deletes what the other writes, so the end state does not depend on their order.
        if row.key == "existing":
            return str(customers[2 * row.which + 1]["id"])
        return f"00000000-0000-4000-8000-00000000000{row.which}"
    if row.key == "existing":
        with_email = [c for c in customers[::2] if c.get("email")]
        return _email_case(with_email[row.which % len(with_email)]["email"], row.case)
    if row.key == "new":
        return _email_case(f"new.{row.which}@example.org", row.case)
    return ("not-an-address", "two@@example.com", "space in@example.com", "x@y")[row.which]


# --- the run --------------------------------------------------------------------------------

@dataclass
class Run:
    code: int
    out: list[dict[str, Any]]
    stdout: str
    stderr: str
    rejected: list[dict[str, Any]]
    seconds: float


def _catalog(script: WriteScript) -> dict[str, Any]:
    key = ["email"] if script.vendor == "malomo" else ["mobile"]
    streams = [("upserts", script.mode, key)]
    if any(isinstance(line, Row) and line.stream == "deletes" for line in script.lines):
        streams.append(("deletes", "soft_delete", ["id"]))
    return {"streams": [{
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": mode,
        "destination_object_name": "customers", "primary_key": [[k] for k in key]}
        for name, mode, key in streams]}


def _messages(script: WriteScript, world: World) -> list[dict[str, Any]]:
    data = {number: (row, d) for number, row, d in world.data}
    messages = []
    for number, line in enumerate(script.lines):
        if isinstance(line, State):
            messages.append({"type": "STATE", "state": {"type": "GLOBAL", "global": {
                "shared_state": {"n": line.n}, "stream_states": []}}})
        else:
            row, record = data[number]
            messages.append({"type": "RECORD", "record": {
                "stream": row.stream, "data": record, "emitted_at": 1}})
    return messages


def run(script: WriteScript, server: Server, world: World) -> Run:
    config = (malomo.config(server.url) if script.vendor == "malomo"
              else capillary.config(server.url))
    with tempfile.TemporaryDirectory() as folder:
        stored = Path(folder) / "rejected"
        config = {**config, "num_workers": script.workers,
                  "object_storage_config": {"storage_type": "Local", "path": str(stored)}}
        paths = {}
        for name, content in (("config", config), ("catalog", _catalog(script))):
            paths[name] = Path(folder) / f"{name}.json"
            paths[name].write_text(json.dumps(content))
        started = time.monotonic()
        # A fixed hash seed: records are dealt to workers by hash, so that a script meets its
        # faults on the same requests each time it runs (shrinking needs that).
        done = subprocess.run(
            [EXECUTABLE, "write", "--config", str(paths["config"]), "--catalog",
             str(paths["catalog"])],
            input="".join(json.dumps(m) + "\n" for m in _messages(script, world)),
            capture_output=True, text=True, timeout=RUN_TIMEOUT,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        seconds = time.monotonic() - started
        rejected = [json.loads(line) for path in sorted(stored.rglob("*.jsonl"))
                    for line in path.read_text().splitlines()]
    out = []
    for line in done.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"type": "NOT JSON", "line": line})
    return Run(done.returncode, out, done.stdout, done.stderr, rejected, seconds)


# --- the oracle -----------------------------------------------------------------------------

Fields = dict[str, Any] | None  # a customer's compared fields; None: no such customer


@dataclass
class Expected:
    """Per key, the customer's fields after each of its rows (index 0: before any)."""

    history: dict[tuple[str, str], list[Fields]]
    keys_of_row: dict[int, tuple[str, str]]  # line number -> key, for rows that have one
    rejected: set[int]  # line numbers of the rows that must be rejected


def _malomo_fields(customer: dict[str, Any]) -> dict[str, Any]:
    return {k: customer[k] for k in malomo.WRITABLE if k in customer}


def _capillary_fields(customer: dict[str, Any], programs: list[tuple[int, int]]
                      ) -> dict[str, Any]:
    profile = next((p for p in customer["profiles"] if p["source"] == "INSTORE"),
                   customer["profiles"][0])
    return {"firstName": profile.get("firstName", ""), "lastName": profile.get("lastName", ""),
            "loyaltyType": customer["loyaltyInfo"]["loyaltyType"],
            "identifiers": sorted((i["type"], i["value"]) for p in customer["profiles"]
                                  for i in p["identifiers"]),
            "programs": programs}


def expect(script: WriteScript, world: World) -> Expected:
    history: dict[tuple[str, str], list[Fields]] = {}
    keys_of_row: dict[int, tuple[str, str]] = {}
    rejected: set[int] = set()
    for number, row, data in world.data:
        if script.vendor == "malomo":
            key, after, refused = _malomo_row(world, history, row, data)
        else:
            key, after, refused = _capillary_row(script, world, history, row, data)
        if refused:
            rejected.add(number)
        if key is not None:
            keys_of_row[number] = key
            history[key].append(after)
    return Expected(history, keys_of_row, rejected)


def _malomo_row(world: World, history: dict[tuple[str, str], list[Fields]], row: Row,
                data: dict[str, Any]) -> tuple[tuple[str, str] | None, Fields, bool]:
    if row.stream == "deletes":
        ident = data.get("id")
        if ident is None:
            return None, None, True
        key = ("id", ident)
        if key not in history:
            found = [c for c in world.initial if c["id"] == ident]
            history[key] = [_malomo_fields(found[0]) | {"id": ident} if found else None]
        return key, None, False
    email = data.get("email")
    if email is None:
        return None, None, True
    if not malomo.EMAIL.match(email):
        return None, None, True
    key = ("email", email.casefold())
    if key not in history:
        found = [c for c in world.initial if str(c.get("email", "")).casefold() == key[1]]
        history[key] = [_malomo_fields(found[0]) | {"id": found[0]["id"]} if found else None]
    current = history[key][-1]
    changes = {k: v for k, v in data.items() if k in malomo.WRITABLE}
    # A row the customer already holds (its address in any letter case) changes nothing.
    if current is not None and all(
            str(current.get(k) or "").casefold() == str(v).casefold() if k == "email"
            else current.get(k) == v for k, v in changes.items()):
        return key, dict(current), False
    return key, {**(current or {}), **changes}, False


def _capillary_row(script: WriteScript, world: World,
                   history: dict[tuple[str, str], list[Fields]], row: Row,
                   data: dict[str, Any]) -> tuple[tuple[str, str] | None, Fields, bool]:
    mobile = data.get("mobile")
    if mobile is None:
        return None, None, True
    key = ("mobile", mobile)
    if key not in history:
        found = [c for c in world.initial
                 if ("mobile", mobile) in {(i["type"], i["value"]) for p in c["profiles"]
                                           for i in p["identifiers"]}]
        history[key] = [_capillary_fields(found[0], world.programs[found[0]["id"]])
                        | {"id": found[0]["id"]} if found else None]
    current = history[key][-1]
    if current is None:
        if script.mode == "update" or not capillary.MOBILE.match(mobile):
            return None, None, True  # 8015 (no such customer), or 8013 (invalid mobile)
        current = {"firstName": "", "lastName": "", "loyaltyType": "non_loyalty",
                   "identifiers": [("mobile", mobile)], "programs": []}
    after = {**current, **{k: v for k, v in data.items()
                           if k in ("firstName", "lastName", "loyaltyType")}}
    for item in data.get("loyaltyProgramEnrollments") or []:
        # A program the customer is in is left as it is; a new one makes it a loyalty customer.
        if all(program != item["programId"] for program, _ in current["programs"]):
            after["programs"] = sorted([*current["programs"],
                                        (item["programId"], item["tierNumber"])])
            after["loyaltyType"] = "loyalty"
    return key, after, False


def _now(script: WriteScript, api: VendorApi) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every customer of the sandbox now, by each key a row may name."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for customer in api.customers:  # type: ignore[attr-defined]
        if script.vendor == "malomo":
            fields = _malomo_fields(customer) | {"id": customer["id"]}
            keys = [("id", customer["id"])]
            if customer.get("email"):
                keys.append(("email", customer["email"].casefold()))
        else:
            fields = _capillary_fields(customer, _programs(api, customer)) | {
                "id": customer["id"]}
            keys = list(dict.fromkeys(("mobile", v) for t, v in fields["identifiers"]
                                      if t == "mobile"))
        for key in keys:
            found.setdefault(key, []).append(fields)
    return found


def _same(now: dict[str, Any], wanted: Fields) -> bool:
    if wanted is None:
        return False
    ident = wanted.get("id")
    return all(now.get(k) == v for k, v in wanted.items() if k != "id") and \
        set(now) - {"id"} == set(wanted) - {"id"} and (ident is None or now["id"] == ident)


def judge(script: WriteScript, world: World, api: VendorApi, outcome: Run) -> list[str]:
    problems: list[str] = []
    expected = expect(script, world)
    succeeded = outcome.code == 0
    traces = [m for m in outcome.out if m.get("type") == "TRACE"]
    errors = [m["trace"].get("error", {}) for m in traces if m["trace"].get("type") == "ERROR"]
    for where, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if "Traceback (most recent call last)" in text:
            problems.append(f"a Python traceback on {where}")
    if any(m.get("type") == "NOT JSON" for m in outcome.out):
        problems.append("stdout has lines that are not Airbyte messages: "
                        + repr([m["line"] for m in outcome.out if m.get("type") == "NOT JSON"][:3]))
    if succeeded and errors:
        problems.append(f"exit 0 with an ERROR trace: {errors}")
    if not succeeded:
        if outcome.code != 1 or len(errors) != 1:
            problems.append(f"failed with exit code {outcome.code} and {len(errors)} ERROR "
                            "traces (one, and exit 1, expected)")
        for error in errors:
            message = str(error.get("message") or "")
            if not message or "Traceback" in message or len(message) > 1000:
                problems.append(f"an unreadable ERROR trace: {message[:300]!r}")

    # The echoed STATEs: in order, each once, with its epoch's counts.
    states = [line for line in script.lines if isinstance(line, State)]
    echoed = [m["state"] for m in outcome.out if m.get("type") == "STATE"]
    epochs: list[tuple[int, int]] = []  # (records, rejected) of each state's epoch
    records = refused = 0
    for number, line in enumerate(script.lines):
        if isinstance(line, State):
            epochs.append((records, refused))
            records = refused = 0
        else:
            records += 1
            refused += number in expected.rejected
    wanted_echo = [(s.n, float(r), float(j)) for s, (r, j) in zip(states, epochs, strict=True)]
    got_echo = []
    for state in echoed:
        stats = state.get("destinationStats") or {}
        got_echo.append(((state.get("global") or {}).get("shared_state", {}).get("n"),
                         stats.get("recordCount"), stats.get("rejectedRecordCount")))
    if succeeded and got_echo != wanted_echo:
        problems.append(f"echoed STATEs (n, records, rejected) {got_echo}, expected "
                        f"{wanted_echo}")
    if not succeeded and got_echo != wanted_echo[:len(got_echo)]:
        problems.append(f"echoed STATEs (n, records, rejected) {got_echo} are not a prefix of "
                        f"{wanted_echo}")
    # The rows before the last echoed STATE must be applied; the others may or may not be.
    if succeeded:
        cut = len(script.lines)
    else:
        last = len(got_echo)
        cut = 0
        for number, line in enumerate(script.lines):
            if isinstance(line, State) and line.n <= last:
                cut = number

    # Rejected records: exactly the ones that had to be (once the run is done), and never
    # one that did not have to be.
    stored = Counter(int(r.get("_row", -1)) for r in outcome.rejected)
    if any(n > 1 for n in stored.values()):
        problems.append(f"rows stored as rejected more than once: "
                        f"{sorted(k for k, n in stored.items() if n > 1)}")
    wrongly = sorted(set(stored) - expected.rejected)
    if wrongly:
        reasons = {int(r.get("_row", -1)): r.get("rejected_reason") for r in outcome.rejected}
        problems.append("rows rejected that should have been written: " + ", ".join(
            f"line {n} ({reasons[n]})" for n in wrongly))
    missing = sorted(n for n in expected.rejected - set(stored) if n < cut)
    if missing:
        problems.append(f"rows that had to be rejected and were not: lines {missing}")

    # The vendor's end state, key by key.
    now = _now(script, api)
    for key, history in expected.history.items():
        rows_of_key = [n for n, k in expected.keys_of_row.items() if k == key]
        applied_at_least = sum(1 for n in rows_of_key if n < cut)
        allowed = history[applied_at_least:] if not succeeded else history[-1:]
        holders = now.get(key, [])
        if len(holders) > 1:
            problems.append(f"{len(holders)} customers have {key[0]} {key[1]!r}: {holders}")
            continue
        current = holders[0] if holders else None
        if not any((current is None and a is None) or (current is not None and _same(current, a))
                   for a in allowed):
            problems.append(f"{key[0]} {key[1]!r} (rows at lines {rows_of_key}) is {current}; "
                            f"expected {' or '.join(map(str, allowed))}")
    # Nothing else changed: every customer no row names is as it was, and none was added.
    named = set(expected.history)
    before = {c["id"]: c for c in world.initial}
    seen_ids = {fields["id"] for holders in now.values() for fields in holders}
    for key, holders in now.items():
        if key in named:
            continue
        for fields in holders:
            ident = fields["id"]
            mine = [k for k in _keys_of(script, fields) if k in named]
            if mine:
                continue
            if ident not in before:
                problems.append(f"an extra customer no row asked for: {fields}")
            else:
                was = (_malomo_fields(before[ident]) if script.vendor == "malomo" else
                       _capillary_fields(before[ident], world.programs[ident])) | {"id": ident}
                if fields != was:
                    problems.append(f"customer {ident} changed, though no row names it: "
                                    f"{was} -> {fields}")
    for ident, customer in before.items():
        gone = ident not in seen_ids and not any(
            k in named for k in _keys_of(script, _malomo_fields(customer) | {"id": ident}
                                         if script.vendor == "malomo" else
                                         _capillary_fields(customer, world.programs[ident])
                                         | {"id": ident}))
        if gone:
            problems.append(f"customer {ident} is gone, though no row names it")
    merges = getattr(api, "merges", [])
    if merges:
        problems.append(f"Capillary merged customers: {merges}")
    return sorted(set(problems), key=problems.index)


def _keys_of(script: WriteScript, fields: dict[str, Any]) -> list[tuple[str, str]]:
    if script.vendor == "malomo":
        keys = [("id", fields["id"])]
        if fields.get("email"):
            keys.append(("email", fields["email"].casefold()))
        return keys
    return list(dict.fromkeys(("mobile", v) for t, v in fields["identifiers"] if t == "mobile"))


def report(script: WriteScript, world: World, api: VendorApi, outcome: Run,
           problems: list[str]) -> str:
    requests = [f"{r.method} {r.path}" + (f"?{r.raw_query}" if r.raw_query else "")
                for r in api.requests]
    lines = [
        "The write invariant does not hold:",
        *(f"  - {p}" for p in problems),
        "",
        f"script: {script!r}",
        f"rows: {[d for _, _, d in world.data]}",
        f"exit code {outcome.code} after {outcome.seconds:.1f} s; faults served: {api.faulted}",
        "requests, in order:",
        *(f"  {r}" for r in requests[:60]),
        "stdout (last 25 lines):",
        *(f"  {line[:400]}" for line in outcome.stdout.splitlines()[-25:]),
        "stderr (last 2000 characters):",
        outcome.stderr[-2000:],
    ]
    return "\n".join(lines)


def check(script: WriteScript) -> Run:
    """Runs one script against a fresh sandbox; raises AssertionError with a readable
    report when the invariant does not hold."""
    api = new_api(script.vendor)
    api.set_faults(scheduled=list(script.faults), stall=STALL)
    world = resolve(script, api)
    server = start(api)
    try:
        outcome = run(script, server, world)
    finally:
        api.set_faults()  # no fault left to meet in what is read next
        server.stop()
    problems = judge(script, world, api, outcome)
    if problems:
        raise AssertionError(report(script, world, api, outcome, problems))
    return outcome
