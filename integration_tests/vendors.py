"""Each vendor as the cross-vendor tests (faults, interruptions, hostile answers) see it.

A `Case` builds a sandbox big enough that a read makes a few hundred requests, a config
reading all of it, and the records every stream must hold, by primary key, taken from the
sandbox's own data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integration_tests.cli import Output
from integration_tests.sandbox import capillary, loke, malomo, okendo
from integration_tests.sandbox.server import VendorApi

Keys = dict[str, list[Any]]


@dataclass(frozen=True)
class Case:
    vendor: str
    api: Callable[[], VendorApi]
    config: Callable[[VendorApi, str], dict[str, Any]]  # (api, url) -> config
    keys: dict[str, tuple[str, ...]]  # stream -> primary key fields
    expected: Callable[[VendorApi, dict[str, Any]], Keys]  # (api, config) -> stream -> keys
    small: Callable[[], VendorApi]  # still paging, every stream non-empty, a few dozen requests
    incremental: tuple[str, ...] = ()  # streams read incrementally

    def got(self, output: Output) -> Keys:
        """Each stream's primary keys in `output`, in order, duplicates kept."""
        return {stream: output.keys(stream, *key) for stream, key in self.keys.items()}


def _loke_expected(api: Any, config: dict[str, Any]) -> Keys:
    return {
        "customers": [c["id"] for c in api.customers],
        "customer_memberships": [(cid, m["id"]) for cid, lists in api.memberships.items()
                                 for m in lists],
    }


def _okendo_config(api: Any, url: str) -> dict[str, Any]:
    return okendo.config(url, customer_emails=okendo.mixed_emails(len(api.customers)))


def _okendo_expected(api: Any, config: dict[str, Any]) -> Keys:
    return okendo.expected_keys(api, config["customer_emails"])


def _malomo_expected(api: Any, config: dict[str, Any]) -> Keys:
    return {"customers": [c["id"] for c in api.customers],
            "customer_events": [e for _, e in api.all_events()]}


def _capillary_config(api: Any, url: str) -> dict[str, Any]:
    known = [str(api.identifier(c, "mobile")) for c in api.customers]
    return capillary.config(url, identifiers=[*known, *capillary.unknown_mobiles(6)])


def _capillary_expected(api: Any, config: dict[str, Any]) -> Keys:
    return {"customers": api.expected_ids("mobile", config["identifiers"])}


CASES: dict[str, Case] = {
    "loke": Case(
        "loke", lambda: loke.Api(customers=150, page_size=50),
        lambda api, url: loke.config(url),
        {"customers": ("id",), "customer_memberships": ("customerId", "id")},
        _loke_expected, lambda: loke.Api(customers=40, page_size=15),
        incremental=("customers",)),
    "okendo": Case(
        # Pages of at most 4: activities and profiles follow nextUrl often.
        "okendo", lambda: okendo.Api(customers=16, page_cap=4), _okendo_config,
        okendo.KEYS, _okendo_expected, lambda: okendo.Api(customers=6, reviews=20, page_cap=4),
        incremental=("customer_activities",)),
    "malomo": Case(
        "malomo", lambda: malomo.Api(customers=120, page_size=25, event_page_size=2),
        lambda api, url: malomo.config(url),
        {"customers": ("id",), "customer_events": ("id",)},
        _malomo_expected,
        lambda: malomo.Api(customers=40, page_size=15, event_page_size=2),
        incremental=("customers", "customer_events")),
    "capillary": Case(
        "capillary", lambda: capillary.Api(customers=150), _capillary_config,
        {"customers": ("id",)}, _capillary_expected, lambda: capillary.Api(customers=30)),
}
