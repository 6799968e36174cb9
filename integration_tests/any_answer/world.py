"""Each vendor's small world: a sandbox API that pages, a config, odd records, what to expect.

The datasets are the sandbox's own (small, paging on every stream); odd records are made
odd on their way out (the sandbox's indexes and sort orders stay intact). What a read must
hold comes from the sandbox's data, by primary key (`vendors.CASES[...].expected`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from integration_tests.any_answer.behaviours import Oddity, Scenario
from integration_tests.sandbox import capillary, loke, malomo, okendo
from integration_tests.sandbox.server import Request, VendorApi
from integration_tests.vendors import CASES

Keys = dict[str, list[Any]]


@dataclass(frozen=True)
class StreamInfo:
    pk_field: str | None  # the key field the server sends (None: the connector adds it)
    cursor_field: str | None
    millis: bool = False  # the cursor's format has milliseconds (Okendo)


# The streams whose records may be made odd, per vendor.
STREAMS: dict[str, dict[str, StreamInfo]] = {
    "loke": {"customers": StreamInfo("id", "updatedAt"),
             "customer_memberships": StreamInfo("id", None)},
    "malomo": {"customers": StreamInfo("id", "updated_at"),
               "customer_events": StreamInfo("id", "created_at")},
    "okendo": {"customer_profiles": StreamInfo("namespace", None),
               "customer_activities": StreamInfo("activityId", "date", millis=True)},
    "capillary": {"customers": StreamInfo("id", None)},
}
AUTHS: dict[str, tuple[str, ...]] = {
    "loke": ("access_token", "client_credentials"), "malomo": ("api_key",),
    "okendo": ("basic",), "capillary": ("basic", "oauth"),
}
# The error handlers' max_retries (a request is tried once more than this).
RETRIES = {"loke": 6, "malomo": 6, "okendo": 10, "capillary": 6}
TOKEN_PATHS = ("/token", "/v3/oauth/token/generate")
TOKEN_RETRIES = {"loke": 6, "capillary": 5}


def odd_streams(vendor: str) -> dict[str, tuple[bool, bool]]:
    return {s: (i.pk_field is not None, i.cursor_field is not None)
            for s, i in STREAMS[vendor].items()}


@dataclass
class World:
    vendor: str
    scenario: Scenario
    api: VendorApi
    config: dict[str, Any] = field(default_factory=dict)
    expected: Keys = field(default_factory=dict)
    # (stream, key) -> the oddity of that record, resolved from the scenario's indexes.
    odd: dict[tuple[str, Any], Oddity] = field(default_factory=dict)

    @property
    def keys(self) -> dict[str, tuple[str, ...]]:
        return CASES[self.vendor].keys

    @property
    def base_path(self) -> str:
        return okendo.BASE_PATH if self.vendor == "okendo" else ""

    def configure(self, url: str) -> None:
        """The config for the API served at `url`, the expected keys and the odd records."""
        vendor, auth = self.vendor, self.scenario.auth
        if vendor == "loke":
            self.config = loke.config(url, num_workers=1)
            if auth == "client_credentials":
                self.config["credentials"] = loke.client_credentials(url)
        elif vendor == "malomo":
            self.config = malomo.config(url, num_workers=1)
        elif vendor == "okendo":
            emails = [okendo.email_of(0), okendo.email_of(1),
                      okendo.UNKNOWN_EMAILS[0], okendo.email_of(2),
                      okendo.email_of(0).upper()]
            self.config = okendo.config(url, customer_emails=emails, num_workers=1)
        else:
            api: Any = self.api
            known = [str(api.identifier(c, "mobile")) for c in api.customers]
            self.config = capillary.config(
                url, identifiers=[*known[:2], *capillary.unknown_mobiles(1), *known[2:]],
                num_workers=1)
            if auth == "oauth":
                self.config["credentials"] = capillary.oauth()
        self.expected = CASES[vendor].expected(self.api, self.config)
        for oddity in self.scenario.oddities:
            keys = self.expected.get(oddity.stream) or []
            if keys:
                self.odd.setdefault((oddity.stream, keys[oddity.index % len(keys)]), oddity)

    # --- what a request is for -------------------------------------------------------------
    def stream_of(self, request: Request) -> tuple[str | None, str | None]:
        """(the stream whose records the answer holds, the customer id in the path)."""
        path = request.path.removeprefix(self.base_path)
        patterns = {
            "loke": ((r"/organizations/[^/]+/customers", "customers"),
                     (r"/organizations/[^/]+/customers/([^/]+)/memberships",
                      "customer_memberships")),
            "malomo": ((r"/customers", "customers"),
                       (r"/customers/([^/]+)/events", "customer_events")),
            "okendo": ((r"/customers/([^/]+)", "customers"),
                       (r"/customers/([^/]+)/profiles", "customer_profiles"),
                       (r"/customers/([^/]+)/activities", "customer_activities"),
                       (r"/reviews", "reviews"),
                       (r"/loyalty/customers", "loyalty_customers"),
                       (r"/loyalty/earning_rules", "loyalty_earning_rules"),
                       (r"/loyalty/redemption_rules", "loyalty_redemption_rules")),
            "capillary": ((r"/v2/customers/lookup/customerDetails", "customers"),),
        }[self.vendor]
        for pattern, stream in patterns:
            match = re.fullmatch(pattern, path)
            if match:
                return stream, (match.group(1) if match.groups() else None)
        return None, None

    def is_token_request(self, request: Request) -> bool:
        return request.path in TOKEN_PATHS

    def retries_for(self, request: Request) -> int:
        if self.is_token_request(request):
            return TOKEN_RETRIES.get(self.vendor, RETRIES[self.vendor])
        return RETRIES[self.vendor]

    @staticmethod
    def records_in(body: Any, stream: str) -> list[dict[str, Any]]:
        if isinstance(body, list):
            return [r for r in body if isinstance(r, dict)]
        if not isinstance(body, dict):
            return []
        for name in ("profiles", "activities"):
            if stream == f"customer_{name}":
                items = body.get(name)
                return [r for r in items if isinstance(r, dict)] if isinstance(items, list) \
                    else []
        return [body] if "errors" not in body and "error" not in body else []

    def key_of(self, stream: str, cid: str | None, record: dict[str, Any]) -> Any:
        if self.vendor == "loke" and stream == "customer_memberships":
            return (cid, record.get("id"))
        if self.vendor == "okendo":
            if stream == "customers":
                return cid
            if stream == "customer_profiles":
                return (cid, record.get("namespace"))
        return record.get(STREAMS[self.vendor][stream].pk_field or "id")

    def make_odd(self, request: Request, body: Any) -> Any:
        """The answer's body with the scenario's odd records made odd (in place)."""
        stream, cid = self.stream_of(request)
        if stream is None or not self.odd:
            return body
        info = STREAMS[self.vendor].get(stream)
        if info is None:
            return body
        for record in self.records_in(body, stream):
            oddity = self.odd.get((stream, self.key_of(stream, cid, record)))
            if oddity is not None:
                _apply(oddity.kind, record, info)
        return body

    # --- documented skips: a 404 there drops a partition's records, legitimately ---------
    def skipped_by_404(self, request: Request) -> Keys:
        """The records an injected 404 on this request may leave out (a documented skip)."""
        stream, cid = self.stream_of(request)
        api: Any = self.api
        if self.vendor == "okendo" and request.path.endswith("/customer_lookup"):
            try:
                email = str(request.json().get("email"))
            except (ValueError, AttributeError):
                return {}
            cid = api.customer_id_of(email)
            if cid is None:
                return {}
            return {"customers": [cid],
                    "customer_profiles": [(cid, p["namespace"]) for p in api.profiles[cid]],
                    "customer_activities": [a["activityId"] for a in api.activities[cid]]}
        if self.vendor == "okendo" and stream == "loyalty_customers":
            return {stream: self._loyalty_ids(request)}
        if self.vendor == "okendo" and stream and cid:
            everything = {"customers": [cid],
                          "customer_profiles": [(cid, p["namespace"]) for p in api.profiles.get(
                              cid, [])],
                          "customer_activities": [a["activityId"] for a in api.activities.get(
                              cid, [])]}
            return {stream: everything[stream]}
        if self.vendor == "loke" and stream == "customer_memberships" and cid:
            return {stream: [(cid, m["id"]) for m in api.memberships.get(cid, [])]}
        if self.vendor == "malomo" and stream == "customer_events" and cid:
            return {stream: [e["id"] for e in api.events.get(cid, [])]}
        return {}

    def skipped_by_403(self, request: Request) -> Keys:
        """What an injected 403 on a product's endpoint may leave out: Okendo documents it
        as "the store has no such product", which the connector takes for no records."""
        stream, _ = self.stream_of(request)
        api: Any = self.api
        if stream == "reviews":
            return {stream: api.reviews_of(request.query.get("status", "approved"))}
        if stream == "loyalty_customers":
            return {stream: self._loyalty_ids(request)}
        if stream == "loyalty_redemption_rules":
            return {stream: [r["redemptionRuleId"] for r in api.redemption_rules]}
        # The earning rules are also the loyalty customers' probe: no address is asked then.
        return {"loyalty_earning_rules": [r["type"] for r in api.earning_rules],
                "loyalty_customers": list(self.expected.get("loyalty_customers", []))}

    def _loyalty_ids(self, request: Request) -> list[Any]:
        found = self.api.loyalty_customers.get(  # type: ignore[attr-defined]
            str(request.query.get("email", "")).casefold())
        return [found["loyaltyCustomerId"]] if found else []

    # --- secrets ---------------------------------------------------------------------------
    def secrets(self) -> list[str]:
        """Values that must appear nowhere in the connector's output (read after the run:
        tokens the sandbox issued count)."""
        api: Any = self.api
        if self.vendor == "loke":
            values = [loke.ACCESS_TOKEN, loke.CLIENT_SECRET,
                      *(t for t in api.tokens if t.startswith("loke-issued-"))]
        elif self.vendor == "malomo":
            values = [malomo.API_KEY]
        elif self.vendor == "okendo":
            values = [okendo.API_KEY,
                      base64.b64encode(f"{okendo.USER_ID}:{okendo.API_KEY}".encode()).decode()]
        else:
            values = [v for v in capillary.SECRETS if v != capillary.NO_V2_PASSWORD]
            values += [str(t) for t in api.tokens]
        return [v for v in values if v]

    def personal(self) -> list[str]:
        """Values that may appear in records only (the looked-up addresses, identifiers)."""
        if self.vendor == "okendo":
            return list(self.config.get("customer_emails", []))
        if self.vendor == "capillary":
            return list(self.config.get("identifiers", []))
        return []


def _apply(kind: str, record: dict[str, Any], info: StreamInfo) -> None:
    if kind.startswith("pk_") and info.pk_field:
        if kind == "pk_absent":
            record.pop(info.pk_field, None)
        else:
            record[info.pk_field] = None if kind == "pk_null" else ""
        return
    name = info.cursor_field
    if not name:
        return
    now = datetime.now(timezone.utc)
    when = {"cursor_ancient": datetime(1900, 1, 1, tzinfo=timezone.utc),
            "cursor_future_hour": now + timedelta(hours=1),
            "cursor_future_years": now + timedelta(days=5 * 365)}.get(kind)
    if kind == "cursor_absent":
        record.pop(name, None)
    elif kind == "cursor_null":
        record[name] = None
    elif kind == "cursor_garbage":
        record[name] = "not a date"
    elif when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S")
        record[name] = stamp + (".000Z" if info.millis else "Z")


def new_world(vendor: str, scenario: Scenario) -> World:
    """A fresh, small API for `vendor`: every stream non-empty, paging, a few dozen requests."""
    api: VendorApi
    if vendor == "loke":
        api = loke.Api(customers=5, page_size=2, membership_page_size=3)
    elif vendor == "malomo":
        api = malomo.Api(customers=8, page_size=3, event_page_size=2)
    elif vendor == "okendo":
        api = okendo.Api(customers=3, page_cap=3, reviews=8)
    else:
        api = capillary.Api(customers=4)
    return World(vendor, scenario, api)
