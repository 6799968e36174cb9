"""Malomo's customers API as Malomo documents it (assumptions: docs/malomo.md).

Bare JSON arrays in a stable order (the order records were created in); `next=<id>` returns
the records after that id and `prev=<id>` those before it (the reading docs/malomo.md assumes:
Malomo's events, orders and webhooks pages agree on it); an empty array ends. The docs give
no page size, so the server's is fixed per sandbox. `Authorization: Bearer sk_...`, the
version header `Accept: application/vnd.malomo+json; version=2`, and errors as
`{"code", "message", "request_id", "status"}` with a fresh request_id each time.

Writes (docs.gomalomo.com, "Customer"; docs/malomo.md):
- `POST /customers` {email, first_name, last_name, phone_number} -> 200 and the new customer
  (a fresh uuid4 `id`, `created_at` = `updated_at` = now), appended to `GET /customers` (which
  lists in creation order) and found by `GET /customers/:id`.
- `PUT /customers/:id` -> 200 and the customer: the fields given change, the fields absent
  stay; `null` removes a field (it is then left out, as unknown fields are for seeded
  customers). `updated_at` moves to now only when a value changed (the source reads
  incrementally by it).
- `DELETE /customers/:id` -> 204 with no body (the doc's tab is "204", empty); the customer
  and its events are gone, and its id is no longer a paging cursor (400 invalid_cursor).
- An unknown id -> 404 `{"code": "not_found", ...}`, the read endpoints' error.
Where the doc is silent, the sandbox chooses, and a destination must cope either way:
- Every field is optional (seeded customers lack any of them at times); a body that is not a
  JSON object, a field that is neither a string nor null, or an `email` that is not
  `local@domain.tld` -> 400 `{"code": "invalid_params", ...}`. Unknown fields are ignored.
- **Duplicates are accepted**: a second `POST` with the same e-mail creates a second customer
  (there is no upsert and no lookup by e-mail). So a create retried after a lost answer makes
  a second customer: the risk the "applied-lost" fault (server.py) lets tests show.
Bookkeeping for tests: `created`, `updated`, `deleted` (customer ids, in order) and `writes`
((method, id) of every write applied, in order).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from integration_tests.sandbox import seed
from integration_tests.sandbox.server import Request, Response, VendorApi

API_KEY = "sk_sandbox_malomo_3b9f71c2"
PUBLISHABLE_KEY = "pk_sandbox_malomo_0c4d2e8a"  # a real key of the wrong kind
ACCEPT = "application/vnd.malomo+json; version=2"

WRITABLE = ("email", "first_name", "last_name", "phone_number")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

EVENT_TYPES = (
    ("ShopifyOrderFulfilled", "Order #{n} fulfilled"),
    ("ShopifyOrderCreated", "Order #{n} placed"),
    ("ShipmentDelivered", "Order #{n} delivered 📦"),
    ("ShipmentInTransit", "Order #{n} on its way"),
    ("EmailOpened", "Opened “Your order is out for delivery”"),
)


def config(url: str, **extra: Any) -> dict[str, Any]:
    """A connector config for this sandbox."""
    return {"vendor": "malomo", "base_url": url, "api_key": API_KEY, **extra}


class Api(VendorApi):
    name = "malomo"

    def __init__(self, customers: int = 300, page_size: int = 100,
                 event_page_size: int | None = None, ignore_cursor: bool = False) -> None:
        super().__init__()
        self.errors: list[dict[str, Any]] = []  # every error body sent, for request_id checks
        self.page_size = page_size
        self.event_page_size = page_size if event_page_size is None else event_page_size
        # Stands in for an API that does not honour `next`: the first page, whatever is asked.
        self.ignore_cursor = ignore_cursor
        self._random = seed.rng("malomo")
        self._orders = 1000
        self.customers: list[dict[str, Any]] = [self._customer(n) for n in range(customers)]
        # Where each customer id sits in `customers`: lookups and cursors without a scan, as a
        # 20,000-customer bench makes 20,000 events requests and 200 list pages.
        self._position: dict[str, int] = {c["id"]: i for i, c in enumerate(self.customers)}
        # Events per customer id, in creation order; about a third of customers have none.
        self.events: dict[str, list[dict[str, Any]]] = {
            c["id"]: self._events(c) for c in self.customers}
        # What writes did, for tests that assert the vendor's end state: customer ids.
        self.created: list[str] = []
        self.updated: list[str] = []
        self.deleted: list[str] = []
        self.writes: list[tuple[str, str]] = []  # (method, customer id), in order
        self._write_random = seed.rng("malomo-writes")  # new ids, apart from the seeding
        self.route("GET", "/customers", self.list_customers)
        self.route("POST", "/customers", self.create_customer)
        self.route("GET", "/customers/(?P<cid>[^/]+)", self.get_customer)
        self.route("PUT", "/customers/(?P<cid>[^/]+)", self.update_customer)
        self.route("DELETE", "/customers/(?P<cid>[^/]+)", self.delete_customer)
        self.route("GET", "/customers/(?P<cid>[^/]+)/events", self.list_events)

    # --- data ---------------------------------------------------------------------------
    def _customer(self, n: int, when: datetime | None = None) -> dict[str, Any]:
        r = self._random
        given, family = seed.person(r)
        created = when or seed.moment(r)
        updated = when or seed.moment(r, created, 60)
        record = {
            "created_at": seed.iso(created),
            "email": seed.maybe(r, seed.email(r, given, family, n), 0.9),
            "first_name": seed.maybe(r, given, 0.95),
            "id": seed.uuid4(r),
            "last_name": seed.maybe(r, family, 0.9),
            "phone_number": seed.maybe(
                r, f"555-{r.randrange(100, 1000)}-{r.randrange(1000, 10000)}", 0.6),
            "updated_at": seed.iso(updated),
        }
        return {k: v for k, v in record.items() if v is not None}

    def _event(self, created: datetime) -> dict[str, Any]:
        r = self._random
        kind, label = r.choice(EVENT_TYPES)
        self._orders += 1
        order_id = str(r.randrange(10**12, 10**13))
        record = {
            "created_at": seed.iso(created),
            "id": seed.uuid4(r),
            "label": label.format(n=self._orders),
            "link_back_url": seed.maybe(
                r, f"https://goodest-boi.myshopify.com/admin/orders/{order_id}", 0.7),
            "properties": {"shopify_order": {"id": order_id}} if "Order" in kind else {},
            # Epoch seconds: when it happened, which may be before Malomo recorded it.
            "timestamp": int((created - timedelta(seconds=r.randrange(0, 600))).timestamp()),
            "type": kind,
            "updated_at": seed.iso(created),
        }
        return {k: v for k, v in record.items() if v is not None}

    def _events(self, customer: dict[str, Any]) -> list[dict[str, Any]]:
        r = self._random
        count = r.choice((0, 0, 1, 2, 3, 5))
        start = datetime.strptime(customer["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc)
        moments = sorted(seed.moment(r, start, 90) for _ in range(count))
        return [self._event(m) for m in moments]

    def all_events(self) -> list[tuple[str, str]]:
        """(customer_id, event id) of every event."""
        with self.lock:
            return [(cid, e["id"]) for cid, events in self.events.items() for e in events]

    # --- changes a test makes between syncs ---------------------------------------------
    def touch(self, count: int, when: datetime | None = None) -> list[str]:
        """Updates `count` customers now (their updated_at moves); returns their ids."""
        stamp = seed.iso(when or datetime.now(timezone.utc))
        with self.lock:
            changed = self.customers[5::41][:count]
            for customer in changed:
                customer["updated_at"] = stamp
                customer["first_name"] = customer.get("first_name", "") + "·"
        return [c["id"] for c in changed]

    def add_events(self, count: int, when: datetime | None = None) -> list[tuple[str, str]]:
        """Records `count` new events now, the first for a customer who had none yet;
        returns their (customer_id, id)."""
        moment = when or datetime.now(timezone.utc)
        with self.lock:
            without = [c["id"] for c in self.customers if not self.events[c["id"]]]
            with_some = [c["id"] for c in self.customers if self.events[c["id"]]]
            owners = (without[:1] + with_some[3::29])[:count]
            added = []
            for cid in owners:
                event = self._event(moment)
                self.events[cid].append(event)
                added.append((cid, event["id"]))
        return added

    def add_customer(self, events: int = 1, when: datetime | None = None) -> str:
        """A new customer, created now with `events` events; returns its id."""
        moment = when or datetime.now(timezone.utc)
        with self.lock:
            customer = self._customer(len(self.customers), moment)
            self._position[customer["id"]] = len(self.customers)
            self.customers.append(customer)
            self.events[customer["id"]] = [self._event(moment) for _ in range(events)]
        return str(customer["id"])

    def error(self, status: int, code: str, message: str) -> Response:
        """An error in Malomo's documented shape, with a request_id of its own."""
        body = {"code": code, "message": message,
                "request_id": "req_" + secrets.token_hex(8), "status": status}
        with self.lock:
            self.errors.append(body)
        return Response(status, body)

    # --- auth and version ---------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key:
            return self.error(401, "unauthorized", "Missing API key")
        if key != API_KEY:
            # A publishable key is a real key, but not one that may read customers.
            if key == PUBLISHABLE_KEY:
                return self.error(401, "unauthorized", "A secret key (sk_) is required")
            return self.error(401, "unauthorized", "Invalid API key")
        accept = request.headers.get("accept", "")
        if "application/vnd.malomo+json" not in accept:
            return self.error(406, "not_acceptable", f"Requests must accept {ACCEPT}")
        if "version=2" not in accept.replace(" ", ""):
            return self.error(406, "unsupported_version", "Unsupported API version; use version=2")
        return None

    def fault_response(self, kind: str) -> Response:
        if kind == "html":
            return super().fault_response(kind)
        messages = {"403": ("forbidden", "This API key may not read customers"),
                    "429": ("rate_limited", "Too many requests"),
                    "500": ("internal_error", "Something went wrong"),
                    "502": ("bad_gateway", "Bad gateway"),
                    "503": ("service_unavailable", "Service temporarily unavailable")}
        code, message = messages.get(kind, ("internal_error", "Something went wrong"))
        response = self.error(int(kind), code, message)
        if kind == "429" and self.faults.retry_after:
            response.headers["Retry-After"] = self.faults.retry_after
        return response

    # --- paging -------------------------------------------------------------------------
    def _page(self, request: Request, items: list[dict[str, Any]], size: int,
              positions: dict[str, int] | None = None) -> Response:
        """A page of `items`; `positions` (id -> index in `items`) spares a scan."""
        after, before = request.query.get("next"), request.query.get("prev")
        if self.ignore_cursor or (after is None and before is None):
            return Response(200, items[:size])
        cursor = after if after is not None else str(before)
        at = positions.get(cursor) if positions is not None else next(
            (i for i, item in enumerate(items) if item["id"] == cursor), None)
        if at is None:
            return self.error(400, "invalid_cursor", f"Unknown cursor {cursor!r}")
        if after is not None:
            return Response(200, items[at + 1:at + 1 + size])
        return Response(200, items[max(0, at - size):at])

    # --- endpoints ----------------------------------------------------------------------
    def _find(self, cid: str) -> dict[str, Any] | None:
        at = self._position.get(cid)
        return None if at is None else self.customers[at]

    def list_customers(self, request: Request) -> Response:
        with self.lock:
            return self._page(request, self.customers, self.page_size, self._position)

    def get_customer(self, request: Request, cid: str) -> Response:
        with self.lock:
            customer = self._find(cid)
        if customer is None:
            return self.error(404, "not_found", "Customer not found")
        return Response(200, customer)

    # --- writes -------------------------------------------------------------------------
    def _fields(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        """The writable fields of the request's body, or a 400 in Malomo's shape."""
        try:
            body = request.json()
        except ValueError:
            return {}, self.error(400, "invalid_params", "The request body is not valid JSON")
        if not isinstance(body, dict):
            return {}, self.error(400, "invalid_params", "The request body must be an object")
        fields = {k: body[k] for k in WRITABLE if k in body}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                return {}, self.error(400, "invalid_params", f"{name} must be a string")
        email = fields.get("email")
        if email is not None and not EMAIL.match(email):
            return {}, self.error(400, "invalid_params", "email is not a valid email address")
        return fields, None

    def create_customer(self, request: Request) -> Response:
        fields, invalid = self._fields(request)
        if invalid:
            return invalid
        stamp = seed.iso(datetime.now(timezone.utc))
        with self.lock:
            record = {"created_at": stamp, **fields, "id": seed.uuid4(self._write_random),
                      "updated_at": stamp}
            customer = {k: record[k] for k in sorted(record) if record[k] is not None}
            self._position[customer["id"]] = len(self.customers)
            self.customers.append(customer)
            self.events[customer["id"]] = []
            self.created.append(customer["id"])
            self.writes.append(("POST", customer["id"]))
            return Response(200, dict(customer))

    def update_customer(self, request: Request, cid: str) -> Response:
        with self.lock:
            customer = self._find(cid)
        if customer is None:
            return self.error(404, "not_found", "Customer not found")
        fields, invalid = self._fields(request)
        if invalid:
            return invalid
        with self.lock:
            changed = False
            for name, value in fields.items():
                if customer.get(name) != value:
                    changed = True
                    if value is None:
                        customer.pop(name, None)
                    else:
                        customer[name] = value
            if changed:
                customer["updated_at"] = seed.iso(datetime.now(timezone.utc))
            self.updated.append(cid)
            self.writes.append(("PUT", cid))
            return Response(200, dict(customer))

    def delete_customer(self, request: Request, cid: str) -> Response:
        with self.lock:
            at = self._position.get(cid)
            if at is None:
                return self.error(404, "not_found", "Customer not found")
            del self.customers[at]
            self.events.pop(cid, None)
            self._position = {c["id"]: i for i, c in enumerate(self.customers)}
            self.deleted.append(cid)
            self.writes.append(("DELETE", cid))
        return Response(204)

    def list_events(self, request: Request, cid: str) -> Response:
        with self.lock:
            if self._find(cid) is None:
                return self.error(404, "not_found", "Customer not found")
            items = list(self.events[cid])
        return self._page(request, items, self.event_page_size)


SECRETS = (API_KEY, PUBLISHABLE_KEY)

# A small account for the standard tests: every stream non-empty, few requests.
SMALL = {"customers": 40, "page_size": 15}


def invalid_config(url: str) -> dict[str, Any]:
    return config(url, api_key="sk_not_a_valid_key")
