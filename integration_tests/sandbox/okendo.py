"""Okendo's Enterprise API as Okendo documents it (assumptions: docs/okendo.md).

Served under the `/enterprise` base path and nowhere else (a path without it is a 404);
Basic auth (user ID : API key); the `okendo-api-version` header required; no list of
customers: `POST /customer_lookup` turns an e-mail address into a customer ID (404 with
`{"error": {"description"}}` for an unknown address), then `GET /customers/{id}`,
`/profiles` and `/activities`. Lists are paged by `limit` (1-100, default 25) and a
`nextUrl` that is relative to the base path and carries `lastEvaluated`, URL-encoded JSON
that must come back exactly as it was sent (else 400). A token bucket answers a burst with
429 and Retry-After; tests switch it on, off, or tune it.

Reviews and loyalty, as documented: `GET /reviews` pages by
`limit` and an opaque `lastEvaluated` in `nextUrl`, ordered by `orderBy` (default
`date desc`), one moderation `status` at a time (default `approved`); the cursor stands for
a position, so a review arriving mid-read shifts the later pages of `date desc` by one.
`GET /loyalty/customers?email=` (404 for an address that is not a loyalty customer),
`/loyalty/earning_rules` and `/loyalty/redemption_rules`. A store without a product answers
its endpoints with 403.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from integration_tests.sandbox import seed
from integration_tests.sandbox.server import Request, Response, VendorApi

BASE_PATH = "/enterprise"
USER_ID = "okendo-sandbox-user-3c1f"
API_KEY = "0kSandboxApiKey7d2e9a41b5c60f8aa"  # 32 characters, as Okendo's are
API_VERSION = "2025-02-01"
DEFAULT_CUSTOMERS = 24
# Addresses no sandbox customer has: a lookup answers 404.
UNKNOWN_EMAILS = ("nobody.here@example.com", "zoë.ghost@example.org")
NAMESPACES = ("okendo", "reviews", "quiz", "loyalty", "shopify", "préférences")
DEFAULT_REVIEWS = 60
REVIEW_STATUSES = ("approved", "pending", "rejected")
ORDER_BY = re.compile(r"(date|rating) (asc|desc)")
PRODUCTS = (("shopify-7001", "Merino Crew — Oat"), ("shopify-7002", "Linen Shirt 🌿"),
            ("shopify-7003", "Sac à dos urbain"), ("shopify-7004", "防水ジャケット"))
EARNING_RULES = (
    {"type": "fixed-amount", "amount": 100, "waitTimeDays": 0},
    {"type": "points-per", "amount": 5, "capPerOrder": 500},
    {"type": "points-per-spend", "amount": 1, "earnEachAmountOncePer": 1, "waitTimeDays": 14},
    {"type": "submit-review", "amountForReview": 50, "amountForImage": 25, "amountForVideo": 75,
     "amountForSocialLogin": 10},
)
REDEMPTION_TYPES = ("fixed-value", "percentage-coupon", "variable-value", "free-shipping",
                    "free-product")
ACTIVITY_TITLES = ("Left a review", "Answered a question", "Uploaded a photo 📷",
                   "Earned 100 points", "Redeemed a reward", "Took the skin quiz",
                   "Posted a Q&A answer", "Abonnement bestätigt")


def email_of(n: int) -> str:
    """Customer n's address: the same whatever the store's size, so configs need no Api."""
    r = seed.rng(f"okendo-email-{n}")
    given, family = seed.person(r)
    return seed.email(r, given, family, n)


def mixed_emails(known: int = DEFAULT_CUSTOMERS) -> list[str]:
    """Known addresses, unknown ones, and duplicates (exact and in another letter case)."""
    emails = [email_of(n) for n in range(known)]
    duplicates = [emails[0], emails[min(1, known - 1)].upper()] if emails else []
    return [*emails[:known // 2], UNKNOWN_EMAILS[0], *duplicates, *emails[known // 2:],
            UNKNOWN_EMAILS[1]]


def config(url: str, **extra: Any) -> dict[str, Any]:
    """A connector config for this sandbox (the API root includes `/enterprise`)."""
    return {
        "vendor": "okendo",
        "base_url": url + BASE_PATH,
        "user_id": USER_ID,
        "api_key": API_KEY,
        "customer_emails": mixed_emails(),
        # The sandbox has no rate limit unless a test sets one; the connector's own budget
        # (Okendo's 2 a second by default) would only slow the tests down.
        "requests_per_second": 100,
        **extra,
    }


def invalid_config(url: str) -> dict[str, Any]:
    return config(url, api_key="not-the-api-key-00000000000000000")


def encode_uri_component(text: str) -> str:
    """As JavaScript's encodeURIComponent (Okendo runs on Node): `{"` -> `%7B%22`."""
    return quote(text, safe="-_.!~*'()")


class Api(VendorApi):
    name = "okendo"

    def __init__(self, customers: int = DEFAULT_CUSTOMERS, page_cap: int | None = None,
                 rate_per_second: float | None = None, burst: int = 5,
                 reviews: int = DEFAULT_REVIEWS, loyalty: bool = True,
                 reviews_product: bool = True) -> None:
        super().__init__()
        self.loyalty = loyalty  # False: a store without Okendo Loyalty (403)
        self.reviews_product = reviews_product  # False: an account without reviews (403)
        self.page_cap = page_cap  # the most items a page holds, whatever `limit` asks for
        self.issued_cursors: dict[str, int] = {}  # lastEvaluated as sent -> next offset
        self._cursor_query: dict[str, str] = {}  # a reviews cursor -> the query it pages
        self.throttled = 0  # 429s answered
        self.set_rate_limit(rate_per_second, burst)
        self.customers: dict[str, dict[str, Any]] = {}  # customerId -> details
        self.profiles: dict[str, list[dict[str, Any]]] = {}
        self.activities: dict[str, list[dict[str, Any]]] = {}
        # Lower-cased address -> customerId: a 2,000-address bench looks up 2,000 times.
        self._by_email: dict[str, str] = {}
        for n in range(customers):
            self._add_customer(n)
        self.reviews: list[dict[str, Any]] = [self._review(n) for n in range(reviews)]
        # (status, n): after the n-th request for that status, a new review arrives.
        self.review_arrives_after: tuple[str, int] | None = None
        self.arrived: list[str] = []  # reviewIds that arrived mid-read
        self._review_requests: dict[str, int] = {}
        # Two customers in three are in the loyalty programme.
        self.loyalty_customers: dict[str, dict[str, Any]] = {
            str(self.customers[cid]["email"]).casefold(): self._loyalty_customer(n)
            for n, cid in enumerate(self.customers) if n % 3 != 2}
        self.earning_rules = [dict(rule) for rule in EARNING_RULES]
        self.redemption_rules = [self._redemption_rule(n) for n in range(len(REDEMPTION_TYPES))]
        self.route("POST", BASE_PATH + "/customer_lookup", self.customer_lookup)
        self.route("GET", BASE_PATH + "/reviews", self.list_reviews)
        self.route("GET", BASE_PATH + "/loyalty/customers", self.get_loyalty_customer)
        self.route("GET", BASE_PATH + "/loyalty/earning_rules", self.list_earning_rules)
        self.route("GET", BASE_PATH + "/loyalty/redemption_rules", self.list_redemption_rules)
        cid = "(?P<cid>[^/]+)"
        self.route("GET", f"{BASE_PATH}/customers/{cid}", self.get_customer)
        self.route("GET", f"{BASE_PATH}/customers/{cid}/profiles", self.list_profiles)
        self.route("GET", f"{BASE_PATH}/customers/{cid}/activities", self.list_activities)

    # --- data ---------------------------------------------------------------------------
    def _add_customer(self, n: int) -> None:
        r = seed.rng(f"okendo-customer-{n}")
        given, family = seed.person(seed.rng(f"okendo-email-{n}"))
        customer_id = seed.uuid4(r)
        first = seed.moment(r)
        details = {
            "email": email_of(n),
            "givenName": given,
            "familyName": family,
            "avatarUrl": seed.maybe(r, f"https://cdn.okendo.io/avatars/{customer_id}.jpg", 0.5),
            "dateFirstActive": seed.iso(first, millis=True),
            "dateLastActive": seed.maybe(r, seed.iso(seed.moment(r, first, 200), millis=True)),
            "location": seed.maybe(r, {"country": r.choice(["Australia", "Deutschland", "日本",
                                                          "United States", "Ísland"]),
                                       "zoneCode": seed.maybe(r, r.choice(["VIC", "NSW", "BY",
                                                                           "CA", "13"]))}, 0.7),
        }
        self.customers[customer_id] = {k: v for k, v in details.items() if v is not None}
        self._by_email.setdefault(str(details["email"]).casefold(), customer_id)
        self.profiles[customer_id] = [
            {"namespace": ns, "properties": self._properties(r)}
            for ns in sorted(r.sample(NAMESPACES, r.choice((0, 1, 2, 3, 6))))
        ]
        self.activities[customer_id] = sorted(
            (self._activity(r, seed.moment(r) + timedelta(milliseconds=r.randrange(1000)))
             for _ in range(r.choice((0, 1, 4, 9, 30)))),
            key=lambda a: (a["date"], a["activityId"]), reverse=True)

    def _review(self, n: int, when: datetime | None = None,
                status: str | None = None) -> dict[str, Any]:
        r = seed.rng(f"okendo-review-{n}")
        given, family = seed.person(r)
        product_id, product_name = r.choice(PRODUCTS)
        created = when or seed.moment(r)
        # Several reviews share a second: the order must not depend on the date alone.
        created = created.replace(microsecond=0) if n % 7 == 0 else created
        review: dict[str, Any] = {
            "subscriberId": "3f1c9a2e-0b7d-4c1e-9a55-6d2f1b8e4c01",
            "reviewId": seed.uuid4(r),
            "productId": product_id,
            "productName": product_name,
            "variantId": seed.maybe(r, f"{product_id}-v{r.randrange(1, 4)}", 0.5),
            "title": seed.maybe(r, r.choice(["Great quality!", "Trop petit", "Perfekt 👌", ""])),
            "body": r.choice(["Great quality! Great price! Would buy again!",
                              "Runs small, order a size up.", "質感がとても良い。", "Meh."]),
            "rating": r.randint(1, 5),
            "status": status or r.choices(REVIEW_STATUSES, (6, 3, 1))[0],
            "dateCreated": seed.iso(created, millis=True),
            "containsProfanity": r.random() < 0.05,
            "isIncentivized": r.random() < 0.2,
            "isRecommended": seed.maybe(r, r.random() < 0.8),
            "helpfulCount": r.randrange(0, 40),
            "unhelpfulCount": r.randrange(0, 5),
            "sentiment": r.choice(["positive", "negative", "neutral", "mixed"]),
            "tags": r.sample(["sizing", "quality", "shipping", "colour"], r.randrange(0, 3)),
            "attributesWithRating": seed.maybe(r, [{
                "minLabel": "Too Small", "midLabel": "Just Right", "maxLabel": "Too Big",
                "title": "Sizing", "type": "centered-range", "value": r.randint(-2, 2)}], 0.5),
            "productAttributes": seed.maybe(r, [{"title": "Pros", "type": "drop-down",
                                                 "value": r.choice(["Warm", "Soft"])}], 0.4),
            "media": [{"streamId": seed.ulid(r), "type": r.choice(["image", "video"]),
                       "fullSizeUrl": f"https://cdn.okendo.io/media/{n}/full.jpg",
                       "largeUrl": f"https://cdn.okendo.io/media/{n}/large.jpg",
                       "thumbnailUrl": f"https://cdn.okendo.io/media/{n}/thumb.jpg",
                       "isHidden": r.random() < 0.1} for _ in range(r.choice((0, 0, 1, 2)))],
            "order": seed.maybe(r, {"orderId": str(r.randrange(10**9)),
                                    "orderNumber": f"#OKR{r.randrange(10**4):04d}"}, 0.6),
            "reply": seed.maybe(r, {"body": "<p><b>Thanks</b> for your review</p>",
                                    "rawBody": "*Thanks* for your review",
                                    "dateCreated": seed.iso(created + timedelta(days=1),
                                                            millis=True),
                                    "isPrivate": r.random() < 0.3}, 0.3),
            "reviewer": {
                "displayName": f"{given} {family[:1]}.", "name": f"{given} {family}",
                "email": seed.maybe(r, seed.email(r, given, family, 10_000 + n), 0.7),
                "isVerified": r.random() < 0.7, "verifiedStatus": "Verified Buyer",
                "location": seed.maybe(r, {"country": {"code": "au", "name": "Australia"},
                                           "zoneCode": "NSW"}, 0.5),
            },
            "reward": seed.maybe(r, {"description": "$10 off your next order over $40"}, 0.2),
        }
        return {k: v for k, v in review.items() if v is not None}

    def _loyalty_customer(self, n: int) -> dict[str, Any]:
        r = seed.rng(f"okendo-loyalty-{n}")
        customer = {"loyaltyCustomerId": seed.uuid4(r),
                    "status": r.choice(["pending", "enrolled", "enrolled", "blocked"]),
                    "points": {"balance": r.randrange(0, 5000)},
                    "vipTierName": seed.maybe(r, r.choice(["Bronze", "Silver", "Or"]), 0.6),
                    "minimumVipTierName": seed.maybe(r, "Bronze", 0.3)}
        return {k: v for k, v in customer.items() if v is not None}

    @staticmethod
    def _redemption_rule(n: int) -> dict[str, Any]:
        r = seed.rng(f"okendo-redemption-{n}")
        return {"redemptionRuleId": seed.uuid4(r), "type": REDEMPTION_TYPES[n],
                "reward": {"points": 100 * (n + 1), "value": 5 * (n + 1),
                           "awardedAs": r.choice(["coupon", "store-credit"])},
                "appliesToCollections": r.sample(["all", "winter", "sale"], r.randrange(0, 3)),
                "expiresAfterDays": seed.maybe(r, 90),
                "minimumPurchase": seed.maybe(r, 40),
                "purchaseType": r.choice(["single", "subscription", "both"]),
                "recurringCycleLimit": seed.maybe(r, 3, 0.3)}

    def reviews_of(self, status: str) -> list[str]:
        """The reviewIds of one status, as a complete read must return them."""
        with self.lock:
            return [rv["reviewId"] for rv in self.reviews if rv["status"] == status]

    @staticmethod
    def _properties(r: Any) -> list[dict[str, Any]]:
        """One property of each type, values as strings; a few that do not parse as typed."""
        candidates = [
            ("acceptsMarketing", "boolean", r.choice(["true", "false", "TRUE", "yes"])),
            ("reviewCount", "number", r.choice(["3", "12.5", "-1", "1e3", "n/a"])),
            ("skinType", "string", r.choice(["oily", "dry", "sensibel 🌿"])),
            ("favouriteColours", "string-list",
             r.choice(['["red","blue"]', '["grün"]', "[]", "red, blue"])),
            ("lastOrderDate", "date", seed.iso(seed.moment(r), millis=True)),
            ("birthday", "date-components",
             r.choice(['{"month":5,"day":17}', '{"year":1990,"month":1,"day":2}', "17/05"])),
            ("location", "location",
             r.choice(['{"country":"Australia","zoneCode":"VIC","city":"Melbourne"}',
                       '{"country":"日本"}', "somewhere"])),
            ("avatar", "image", "https://cdn.okendo.io/images/" + seed.ulid(r) + ".png"),
        ]
        chosen = r.sample(candidates, r.randrange(1, len(candidates) + 1))
        return [{"name": name, "value": value, "valueType": kind,
                 "date": seed.iso(seed.moment(r), millis=True)} for name, kind, value in chosen]

    @staticmethod
    def _activity(r: Any, when: datetime) -> dict[str, Any]:
        activity = {"activityId": seed.uuid4(r), "namespace": r.choice(NAMESPACES[:4]),
                    "date": seed.iso(when, millis=True),
                    "title": seed.maybe(r, r.choice(ACTIVITY_TITLES), 0.9)}
        return {k: v for k, v in activity.items() if v is not None}

    def customer_id_of(self, email: str) -> str | None:
        return self._by_email.get(email.casefold())

    def ids_for(self, emails: list[str]) -> list[str]:
        """The customers a config's addresses reach: each once, unknown addresses dropped."""
        found = (self.customer_id_of(e) for e in emails)
        return list(dict.fromkeys(cid for cid in found if cid))

    # --- changes a test makes between syncs ---------------------------------------------
    def add_activities(self, customer_ids: list[str], when: datetime | None = None) -> list[str]:
        """One new activity for each customer, dated `when` (default now); returns their ids."""
        r = seed.rng(f"okendo-new-{len(self.requests)}")
        stamp = when or datetime.now(timezone.utc) - timedelta(seconds=1)
        added = []
        with self.lock:
            for cid in customer_ids:
                activity = self._activity(r, stamp)
                self.activities[cid].insert(0, activity)
                added.append(activity["activityId"])
        return added

    # --- rate limit: a token bucket ------------------------------------------------------
    def set_rate_limit(self, per_second: float | None, burst: int = 5) -> None:
        """`per_second` None switches the limit off."""
        with self.lock:
            self.rate_per_second = per_second
            self.burst = burst
            self._tokens = float(burst)
            self._refilled = time.monotonic()

    def rate_limit(self, request: Request) -> Response | None:
        with self.lock:
            if not self.rate_per_second:
                return None
            now = time.monotonic()
            refill = (now - self._refilled) * self.rate_per_second
            self._tokens = min(self.burst, self._tokens + refill)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            self.throttled += 1
            wait = max(1, math.ceil((1 - self._tokens) / self.rate_per_second))
        return Response(429, {"error": {"description": "Too many requests"}},
                        {"Retry-After": str(wait)})

    # --- auth ---------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, key = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = key = ""
        if scheme != "Basic" or (user, key) != (USER_ID, API_KEY):
            return Response(401)
        if not request.headers.get("okendo-api-version"):
            return _error(400, "The okendo-api-version header is required.")
        return None

    # --- paging -------------------------------------------------------------------------
    def _page(self, request: Request, cid: str, kind: str, items: list[dict[str, Any]],
              key: str) -> Response:
        try:
            limit = int(request.query.get("limit", "25"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(400, "limit must be an integer between 1 and 100.")
        offset = 0
        raw = _raw_param(request.raw_query, "lastEvaluated")
        if raw is not None:
            with self.lock:
                offset = self.issued_cursors.get(raw, -1)
            if offset < 0:
                return _error(400, "lastEvaluated is not a cursor this API issued.")
        size = min(limit, self.page_cap or limit)
        page = items[offset:offset + size]
        body: dict[str, Any] = {kind: page}
        if offset + size < len(items):
            last = page[-1]
            cursor = json.dumps({"customerId": cid, "sortKey": f"{kind}#{last[key]}"},
                                separators=(",", ":"), ensure_ascii=False)
            encoded = encode_uri_component(cursor)
            with self.lock:
                self.issued_cursors[encoded] = offset + size
            params = f"lastEvaluated={encoded}&limit={limit}"
            if "namespace" in request.query:
                params += "&namespace=" + encode_uri_component(request.query["namespace"])
            body["nextUrl"] = f"/customers/{cid}/{kind}?{params}"  # relative to /enterprise
        return Response(200, body)

    # --- endpoints ----------------------------------------------------------------------
    def customer_lookup(self, request: Request) -> Response:
        try:
            email = request.json().get("email")
        except (ValueError, AttributeError):
            email = None
        if not isinstance(email, str) or "@" not in email:
            return _error(400, "email must be an e-mail address.")
        cid = self.customer_id_of(email)
        if cid is None:
            return _error(404, "No customer was found with the provided email address.")
        return Response(200, {"customerId": cid})

    def get_customer(self, request: Request, cid: str) -> Response:
        customer = self.customers.get(cid)
        return Response(200, customer) if customer else _error(404, "Customer not found.")

    def list_profiles(self, request: Request, cid: str) -> Response:
        if cid not in self.customers:
            return _error(404, "Customer not found.")
        profiles = self.profiles[cid]
        if "namespace" in request.query:
            profiles = [p for p in profiles if p["namespace"] == request.query["namespace"]]
        return self._page(request, cid, "profiles", profiles, "namespace")

    def list_activities(self, request: Request, cid: str) -> Response:
        if cid not in self.customers:
            return _error(404, "Customer not found.")
        with self.lock:
            activities = list(self.activities[cid])
        if "namespace" in request.query:
            activities = [a for a in activities if a["namespace"] == request.query["namespace"]]
        return self._page(request, cid, "activities", activities, "activityId")

    def list_reviews(self, request: Request) -> Response:
        if not self.reviews_product:
            return _error(403, "This account does not have access to reviews.")
        try:
            limit = int(request.query.get("limit", "25"))
        except ValueError:
            limit = 0
        order_by = request.query.get("orderBy", "date desc")
        status = request.query.get("status", "approved")
        if not 1 <= limit <= 100:
            return _error(400, "limit must be an integer between 1 and 100.")
        if not ORDER_BY.fullmatch(order_by):
            return _error(400, "orderBy must be '(date|rating) (asc|desc)'.")
        if status not in REVIEW_STATUSES:
            return _error(400, "status must be one of approved, pending, rejected.")
        query = f"reviews|{status}|{order_by}"
        offset = 0
        raw = _raw_param(request.raw_query, "lastEvaluated")
        if raw is not None:
            with self.lock:
                issued = self.issued_cursors.get(raw)
            if issued is None or self._cursor_query.get(raw) != query:
                return _error(400, "lastEvaluated is not a cursor this API issued for this query.")
            offset = issued
        field, direction = order_by.split()
        sort_key = "rating" if field == "rating" else "dateCreated"
        with self.lock:
            matching = sorted((rv for rv in self.reviews if rv["status"] == status),
                              key=lambda rv: (rv[sort_key], rv["dateCreated"], rv["reviewId"]),
                              reverse=direction == "desc")
        size = min(limit, self.page_cap or limit)
        page = matching[offset:offset + size]
        body: dict[str, Any] = {"reviews": page}
        if offset + size < len(matching):
            last = page[-1]
            cursor = json.dumps({"reviewId": last["reviewId"], "status": status,
                                 "dateCreated": last["dateCreated"]}, separators=(",", ":"))
            encoded = encode_uri_component(cursor)
            with self.lock:
                self.issued_cursors[encoded] = offset + size
                self._cursor_query[encoded] = query
            body["nextUrl"] = (f"/reviews?lastEvaluated={encoded}&limit={limit}"
                               f"&orderBy={encode_uri_component(order_by)}&status={status}")
        self._maybe_a_review_arrives(status)
        return Response(200, body)

    def _maybe_a_review_arrives(self, status: str) -> None:
        with self.lock:
            served = self._review_requests[status] = self._review_requests.get(status, 0) + 1
            if self.review_arrives_after != (status, served):
                return
            review = self._review(len(self.reviews) + 1000, datetime.now(timezone.utc), status)
            self.reviews.append(review)
            self.arrived.append(review["reviewId"])

    def get_loyalty_customer(self, request: Request) -> Response:
        if not self.loyalty:
            return _error(403, "This store does not have Okendo Loyalty.")
        email, loyalty_id = request.query.get("email"), request.query.get("loyaltyCustomerId")
        if (email is None) == (loyalty_id is None):
            return _error(400, "Provide exactly one of email or loyaltyCustomerId.")
        with self.lock:
            if email is not None:
                found = self.loyalty_customers.get(email.casefold())
            else:
                found = next((c for c in self.loyalty_customers.values()
                              if c["loyaltyCustomerId"] == loyalty_id), None)
        if found is None:
            return _error(404, "No loyalty customer was found.")
        return Response(200, {"loyaltyCustomer": found})

    def list_earning_rules(self, request: Request) -> Response:
        if not self.loyalty:
            return _error(403, "This store does not have Okendo Loyalty.")
        return Response(200, {"rules": self.earning_rules})

    def list_redemption_rules(self, request: Request) -> Response:
        if not self.loyalty:
            return _error(403, "This store does not have Okendo Loyalty.")
        return Response(200, {"rules": self.redemption_rules})


def _error(status: int, description: str) -> Response:
    return Response(status, {"error": {"description": description}})


def _raw_param(raw_query: str, name: str) -> str | None:
    """A query parameter exactly as it came over the wire, not decoded."""
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


# Each stream's primary key (docs/okendo.md, "Streams").
KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customerId",),
    "customer_profiles": ("customerId", "namespace"),
    "customer_activities": ("activityId",),
    "reviews": ("reviewId",),
    "loyalty_customers": ("loyaltyCustomerId",),
    "loyalty_earning_rules": ("type",),
    "loyalty_redemption_rules": ("redemptionRuleId",),
}


def expected_keys(api: Api, emails: list[str],
                  statuses: tuple[str, ...] = REVIEW_STATUSES) -> dict[str, list[Any]]:
    """Each stream's primary keys that a complete read of `emails` holds."""
    ids = api.ids_for(emails)
    distinct = dict.fromkeys(e.casefold() for e in emails)
    loyal = [api.loyalty_customers[e] for e in distinct if e in api.loyalty_customers]
    return {
        "customers": ids,
        "customer_profiles": [(c, p["namespace"]) for c in ids for p in api.profiles[c]],
        "customer_activities": [a["activityId"] for c in ids for a in api.activities[c]],
        "reviews": [r for s in statuses for r in api.reviews_of(s)] if api.reviews_product
        else [],
        "loyalty_customers": [c["loyaltyCustomerId"] for c in loyal] if api.loyalty else [],
        "loyalty_earning_rules": [r["type"] for r in api.earning_rules] if api.loyalty else [],
        "loyalty_redemption_rules": [r["redemptionRuleId"] for r in api.redemption_rules]
        if api.loyalty else [],
    }


SECRETS = (API_KEY,)

# The standard and platform-runner tests: the default store is small already, and every
# known address of `config()` exists in it.
SMALL = {"customers": DEFAULT_CUSTOMERS}
