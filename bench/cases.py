"""The bench's cases: a vendor sandbox at scale, a config for it, and the keys it must yield."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from integration_tests.sandbox import capillary, loke, malomo, okendo
from integration_tests.sandbox.server import VendorApi

Key = Hashable  # a record's primary key: one value, or a tuple of values

# Each stream's primary key (the contract's), read the same way from both tools' records.
PRIMARY_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "loke": {"customers": ("id",), "customer_memberships": ("customerId", "id")},
    "malomo": {"customers": ("id",), "customer_events": ("id",)},
    "okendo": {"customers": ("customerId",), "customer_profiles": ("customerId", "namespace"),
               "customer_activities": ("activityId",), "reviews": ("reviewId",)},
    "capillary": {"customers": ("id",)},
}


def key_of(vendor: str, stream: str, record: dict[str, Any]) -> Key:
    fields = PRIMARY_KEYS[vendor][stream]
    if len(fields) == 1:
        return record.get(fields[0])
    return tuple(record.get(f) for f in fields)


@dataclass
class Setup:
    """A seeded sandbox, ready to serve."""

    api: VendorApi
    config: Callable[[str], dict[str, Any]]  # the server's URL -> a connector config
    expected: dict[str, Sequence[Key]]  # stream -> the primary keys the sandbox holds
    warm_up: Callable[[str], None] | None = None  # an untimed request before the runs


@dataclass(frozen=True)
class Case:
    name: str
    vendor: str
    streams: tuple[str, ...]
    latency_ms: float  # added to every request, unless --latency says otherwise
    about: str
    setup: Callable[[float], Setup]  # scale -> a sandbox that size
    # Runs of each tool: a few seconds' runs on a shared machine vary by a tenth, so those
    # are run three times and their medians compared.
    rounds: int = 1
    # Other tools read the case too: "dlt" is dlt's rest_api source (bench/dlt_rest_api.py).
    peers: tuple[str, ...] = ()
    # "read": the tools read the streams; "startup": `spec` and `check` are timed against
    # Python importing requests and yaml (no records); "write": `destination-customers write`
    # (bench/writes.py seeds, feeds and checks it; `setup` is not used).
    kind: str = "read"
    # Run only when named in --cases (a long case), and then by the connector alone.
    on_request: bool = False


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


def _loke_sorts_once(url: str) -> None:
    # The LOKE sandbox sorts its customers on the first listing and keeps the order: that
    # one-off cost must land on neither tool.
    requests.get(f"{url}/organizations/{loke.ORGANIZATION}/customers",
                 params={"sort": "updated"}, timeout=60,
                 headers={"Authorization": f"Bearer {loke.ACCESS_TOKEN}"}).raise_for_status()


def loke_customers(count: int) -> Callable[[float], Setup]:
    def setup(scale: float) -> Setup:
        api = loke.Api(customers=scaled(count, scale), with_memberships=0)
        return Setup(api, loke.config, {"customers": [c["id"] for c in api.customers]},
                     _loke_sorts_once)
    return setup


def loke_memberships(scale: float) -> Setup:
    # Every customer has memberships (0 to 15 lists, pages of 10): the issue's "memberships
    # for 5,000 of them" is an organization of 5,000 customers, all of whom are read.
    api = loke.Api(customers=scaled(5000, scale))
    keys = [(cid, m["id"]) for cid, lists in api.memberships.items() for m in lists]
    return Setup(api, loke.config, {"customer_memberships": keys}, _loke_sorts_once)


def malomo_customers_and_events(count: int) -> Callable[[float], Setup]:
    def setup(scale: float) -> Setup:
        api = malomo.Api(customers=scaled(count, scale))
        return Setup(api, malomo.config, {
            "customers": [c["id"] for c in api.customers],
            "customer_events": [e["id"] for events in api.events.values() for e in events],
        })
    return setup


def okendo_by_email(scale: float) -> Setup:
    # The sandbox's rate limit is off (Api's default): Okendo's real ~2 requests a second
    # would make this a measurement of waiting. The connector still paces itself by its
    # `requests_per_second` budget, as the sandbox's config sets it (100, the spec's most).
    # Known, unknown and duplicate addresses.
    count = scaled(2000, scale)
    api = okendo.Api(customers=count)
    emails = okendo.mixed_emails(count)
    ids = api.ids_for(emails)
    return Setup(api, lambda url: okendo.config(url, customer_emails=emails), {
        "customers": ids,
        "customer_profiles": [(c, p["namespace"]) for c in ids for p in api.profiles[c]],
        "customer_activities": [a["activityId"] for c in ids for a in api.activities[c]],
    })


def okendo_reviews(scale: float) -> Setup:
    # Okendo's documented limit, both ways: the sandbox's token bucket answers 429 past 2
    # requests a second (a burst of 5), and the connector paces itself at its default 2.
    api = okendo.Api(customers=0, reviews=scaled(20_000, scale), rate_per_second=2, burst=5)
    return Setup(api, lambda url: okendo.config(url, customer_emails=[], requests_per_second=2),
                 {"reviews": [r for s in okendo.REVIEW_STATUSES for r in api.reviews_of(s)]})


def written_by_writes(scale: float) -> Setup:
    raise NotImplementedError("write cases are set up by bench/writes.py")


def capillary_by_mobile(scale: float) -> Setup:
    api = capillary.Api(customers=scaled(2000, scale))
    mobiles = [str(api.identifier(c, "mobile")) for c in api.customers]
    return Setup(api, lambda url: capillary.config(url, identifiers=mobiles),
                 {"customers": api.expected_ids("mobile", mobiles)})


CASES: tuple[Case, ...] = (
    Case("startup", "loke", (), 0,
         "start-up: `source-customers spec`, and `check` against LOKE's sandbox, each as a "
         "multiple of `python -c \"import requests, yaml\"`, run in turn",
         loke_customers(1_000), rounds=10, kind="startup"),
    Case("loke-customers-10k", "loke", ("customers",), 0,
         "LOKE customers, 10,000 in pages of 1,000: the peak-RSS reference for 100k",
         loke_customers(10_000), rounds=3),
    Case("loke-customers-100k", "loke", ("customers",), 0,
         "LOKE customers, 100,000 in pages of 1,000: a paged stream's throughput",
         loke_customers(100_000), rounds=3, peers=("dlt",)),
    # Real APIs answer a page in tens of milliseconds: there, the chain of requests, each
    # sent once the answer before it is read, bounds a paged stream (README, 2026-12-04).
    Case("loke-customers-50k-20ms", "loke", ("customers",), 20,
         "LOKE customers, 50,000 in pages of 1,000, 20 ms a page: a paged stream over a "
         "network, where the next page's request overlaps this page's records",
         loke_customers(50_000), rounds=3, peers=("dlt",)),
    Case("loke-customers-50k-50ms", "loke", ("customers",), 50,
         "LOKE customers, 50,000 in pages of 1,000, 50 ms a page",
         loke_customers(50_000), rounds=3, peers=("dlt",)),
    Case("loke-memberships-5k", "loke", ("customer_memberships",), 20,
         "LOKE memberships of 5,000 customers, all with memberships: a child stream, "
         "one request (or two) per customer",
         loke_memberships, peers=("dlt",)),
    Case("malomo-20k", "malomo", ("customers", "customer_events"), 0,
         "Malomo, 20,000 customers (pages of 100) and their events (one request or two each)",
         malomo_customers_and_events(20_000)),
    Case("malomo-200k", "malomo", ("customers", "customer_events"), 0,
         "Malomo, 200,000 customers and their events, the connector alone: its peak RSS "
         "against malomo-20k's (about 30 minutes; run only when named in --cases)",
         malomo_customers_and_events(200_000), on_request=True),
    Case("okendo-2k", "okendo", ("customers", "customer_profiles", "customer_activities"), 20,
         "Okendo, 2,000 e-mails (plus 2 unknown, 2 duplicates) looked up; their customers, "
         "profiles and activities; sandbox rate limit off, connector paced by its "
         "requests_per_second (100)",
         okendo_by_email),
    Case("okendo-reviews-20k", "okendo", ("reviews",), 0,
         "Okendo, a store of 20,000 reviews (all three statuses, pages of 100) at Okendo's "
         "documented 2 requests a second: the time a real store's reviews take",
         okendo_reviews),
    Case("capillary-2k", "capillary", ("customers",), 20,
         "Capillary, 2,000 mobiles, one lookup each",
         capillary_by_mobile),
    # Writes (bench/writes.py): each checked by the vendor's end state.
    Case("malomo-write-10k", "malomo", ("customers",), 20,
         "Malomo append_dedup by e-mail, 10,000 rows (70% existing customers changed, 30% "
         "new), 20 ms a request: destination-customers (10 workers) against a plain loop "
         "with as many threads (list once, then PUT or POST per row), alternating",
         written_by_writes, rounds=2, kind="write"),
    Case("malomo-write-workers", "malomo", ("customers",), 20,
         "Malomo append_dedup, 2,000 rows at 20 ms, both tools at 1, 4, 10, 16 and 20 "
         "workers: the default num_workers chosen from these",
         written_by_writes, kind="write"),
    Case("malomo-write-mem-10k", "malomo", ("customers",), 0,
         "Malomo append_dedup, 10,000 rows going round 1,000 customers (every tenth round a "
         "change), the destination alone: the peak-RSS reference",
         written_by_writes, kind="write"),
    Case("malomo-write-mem-100k", "malomo", ("customers",), 0,
         "Malomo append_dedup, 100,000 rows streamed from a file: peak RSS against 10k's",
         written_by_writes, kind="write"),
    Case("malomo-write-mem-1m", "malomo", ("customers",), 0,
         "Malomo append_dedup, 1,000,000 rows streamed from a file: peak RSS against 10k's "
         "(run only when named in --cases)",
         written_by_writes, kind="write", on_request=True),
    Case("capillary-write-paced", "capillary", ("customers",), 20,
         "Capillary update by mobile, 300 rows with requests_per_minute 200 (the sandbox "
         "answers 429 past 200 in 60 s): requests in any 60 s within the budget",
         written_by_writes, kind="write"),
)
