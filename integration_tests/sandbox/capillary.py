"""Capillary's CRM API v2 as Capillary documents it (assumptions: docs/capillary.md).

Customers are reached one at a time: `GET /v2/customers/lookup/customerDetails` by `source`,
`identifierName`, `identifierValue`, `accountId` (needed for every source but INSTORE) and
`embed`; there is no list endpoint. Auth is either Basic with the md5 hex of the till's
password, or a token from `POST /v3/oauth/token/generate` sent as `X-CAP-API-OAUTH-TOKEN`,
which lives `ttlSeconds`. Errors live in the body, `{"errors": [{"status": false, "code",
"message"}], "warnings": []}`, with HTTP 200 as often as not: 8015 ("Customer not found for the
given identifiers") comes with 200 and with 400 here in turn. 403 means API v2 is not enabled
for the till; 461 (search busy) and 521 (concurrent action on the customer) ask for a retry;
429 answers a key over its per-minute budget (no Retry-After: it is undocumented).
`PUT /v2/customers/lookup` updates the customer an identifier finds (docs/capillary.md,
"Writing back") and `POST /v2/customers` adds one (the same section).

Writes answer with request-level and item-level codes, as the docs describe: HTTP 200
("success") or HTTP 201 ("one or more requests have failed"; `write_error_statuses` cycles
through other statuses for tests that want them) and one item,
`{"createdId", "entity", "success", "warnings": [], "errors": [{"status": false, "code",
"message"}]}` (`createdId` and `entity`: the customer's id, null when the item failed).
Item codes: 8003 invalid source (or a multi-account source without accountId), 8013 invalid
identifier (a type Capillary does not list, an empty value, a mobile that is not 8-15 digits,
an email that is not local@domain.tld), 8015 customer not found, and 8012, a sandbox code
(the docs give none), for an identifier another customer holds on the same source account:
identifiers are unique per source account, and the add "cannot update an existing one".
A body that is not a JSON object is a request-level 400 `{"errors": [{... "code": 400}]}`.
- `POST /v2/customers` (body `profiles[{firstName, lastName, source?, accountId?,
  identifiers[{type, value}], fields, commChannels}]`, `extendedFields`,
  `loyaltyInfo{loyaltyType}`; `source`/`accountId` also taken from the query string,
  INSTORE by default) adds a customer the lookup then finds; its id is `createdId`.
- `PUT /v2/customers/lookup?source=&identifierName=&identifierValue=&accountId=` updates the
  customer found (8015 as an item error when none); `profiles[].identifiers` are added to
  the profile of the query's source.
- `loyaltyProgramEnrollments` (either write) `[{programId, tierNumber, loyaltyPoints,
  tierExpiryDate, pointsExpiryDate}]` enrols the customer in each program of `PROGRAMS` it is
  not in yet, dates only as `YYYY-MM-DDTHH:MM:SS+HH:MM`; one it is in is left unchanged and
  nothing says so ("you cannot update details if the customer is already enrolled"). The
  enrolments are `loyaltyProgramDetails` of a lookup with `embed=mlp`; every loyalty customer
  of the seed is in the default program.
- `commChannels` of the documented types; `mobilePush` on a source that does not support it
  is not added, and the answer warns; an e-mail channel given as `verified: false` is added
  with the warning 8069 "Customer email is not verified". Warnings mean the change was made.
- A lookup checks a mobile's and an e-mail's form first: 8013 for one that is malformed.
- Adding an identifier (either way) that another customer holds under another source or
  account MERGES the two customers, as documented: the customer written to survives, the
  other's profiles move to it and it disappears (for an add, the new profile joins the
  existing customer, whose id is answered, with a warning). Each merge is recorded in
  `merges` ({"survivor", "victim" (None for an add), "identifier", "via"}), so tests can
  assert a destination never causes one.
Bookkeeping for tests: `added` (new customer ids), `updates` (ids of customers updated, one
per successful PUT), `merges`, `item_errors` ((method, code) of every failed item), `warned`
((customer id, code) of every warning answered).

Codes other than those above are undocumented; where an error needs one, the sandbox uses
8003 and says so in the message.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from integration_tests.sandbox import seed
from integration_tests.sandbox.server import Request, Response, VendorApi

USERNAME = "store.sandbox.server"
PASSWORD = "Sändbox-till-pass-7f3a"  # non-ASCII on purpose: the md5 is of its UTF-8 bytes
NO_V2_USERNAME = "store.sandbox.legacy"
NO_V2_PASSWORD = "legacy-till-pass-51c9"
CLIENT_KEY = "CapSandboxClientKey0000001"
CLIENT_SECRET = "capSandboxClientSecretQ9vX2mL7pR4tZ8wY1kE6"
ACCOUNT_ID = "100458"  # the sandbox's one MARTJACK account
IDENTIFIER_NAMES = ("mobile", "email", "externalId", "cardnumber", "wechat", "martjackId", "fbId")
SOURCES = ("INSTORE", "ECOMMERCE", "MARTJACK", "WECHAT", "ALL")
NOT_FOUND = {"status": False, "code": 8015,
             "message": "Customer not found for the given identifiers"}
# What writes may add (the update page's list); a lookup takes only IDENTIFIER_NAMES.
WRITABLE_IDENTIFIERS = ("mobile", "email", "externalId", "wechat", "martjackId", "fbId",
                        "tmall_uname", "cuid", "ali_uname", "jd_uname", "vip_uname", "line")
WRITE_SOURCES = tuple(s for s in SOURCES if s != "ALL")
INVALID_SOURCE, ALREADY_HELD, INVALID_IDENTIFIER, NOT_FOUND_CODE = 8003, 8012, 8013, 8015
# Loyalty programs: id -> (title, tiers from the lowest). Every loyalty customer of the seed
# is enrolled in the default program.
PROGRAMS = {1483: ("Default Program", ("Silver", "Gold", "Platinum")),
            2207: ("Beauty Club", ("Member", "Insider", "VIB"))}
DEFAULT_PROGRAM = 1483
CHANNEL_TYPES = ("mobile", "email", "wechat", "ios", "android", "line", "mobilePush")
# mobilePush is supported for sources mobile_app, Instore, Martjack, Ecommerce and Website.
PUSH_SOURCES = ("INSTORE", "MARTJACK", "ECOMMERCE")
# Sandbox codes (the docs give none): an invalid enrolment, channel, or a date not in the form.
INVALID_ENROLMENT, INVALID_CHANNEL, UNVERIFIED_EMAIL, PUSH_UNSUPPORTED = 8081, 8076, 8069, 8075
CAPILLARY_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
MOBILE = re.compile(r"^[0-9]{8,15}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IST = timezone(timedelta(hours=5, minutes=30))


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def basic_header(username: str, password: str) -> str:
    """The header Capillary expects: the md5 of the password, never the password itself."""
    return base64.b64encode(f"{username}:{md5(password)}".encode()).decode()


def unknown_mobiles(count: int) -> list[str]:
    """Well-formed mobile numbers that no sandbox customer has (their prefix is never seeded)."""
    return [f"9100000{n:05d}" for n in range(count)]


def config(url: str, **extra: Any) -> dict[str, Any]:
    """A connector config for this sandbox: 25 known mobiles, 3 unknown, one listed twice."""
    # Seeding is sequential: the first customers are the same in every sandbox size.
    r = seed.rng("capillary")
    known = [Api.identifier(Api._customer(r, n), "mobile") for n in range(25)]
    missing = unknown_mobiles(3)
    return {
        "vendor": "capillary",
        "base_url": url,
        "credentials": {"auth_type": "basic", "username": USERNAME, "password": PASSWORD},
        "identifier_name": "mobile",
        "identifiers": [*known[:3], *missing[:2], known[0], *known[3:], missing[2]],
        **extra,
    }


def invalid_config(url: str) -> dict[str, Any]:
    return config(url, credentials={"auth_type": "basic", "username": USERNAME,
                                    "password": "not-the-password"})


def oauth() -> dict[str, str]:
    return {"auth_type": "oauth", "client_key": CLIENT_KEY, "client_secret": CLIENT_SECRET}


def error(status: int, code: int, message: str) -> Response:
    return Response(status, {"errors": [{"status": False, "code": code, "message": message}],
                             "warnings": []})


class Api(VendorApi):
    name = "capillary"

    def __init__(self, customers: int = 200, token_ttl: int = 3600,
                 not_found_statuses: tuple[int, ...] = (200, 400),
                 token_error_status: int = 401, per_window: int = 0,
                 rate_window: float = 60.0,
                 write_error_statuses: tuple[int, ...] = (201,)) -> None:
        super().__init__()
        self.token_ttl = token_ttl
        self.not_found_statuses = not_found_statuses
        self.token_error_status = token_error_status
        self.per_window = per_window  # requests per key per rate_window; 0: unlimited
        self.rate_window = rate_window
        self.tills = {USERNAME: (md5(PASSWORD), True), NO_V2_USERNAME: (md5(NO_V2_PASSWORD), False)}
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.issued_tokens = 0
        self.misses = 0
        self._windows: dict[str, list[float]] = defaultdict(list)
        r = seed.rng("capillary")
        self.customers: list[dict[str, Any]] = [self._customer(r, n) for n in range(customers)]
        # (identifier name, value) -> the customers holding it, in order; built on first use
        # and dropped when an update adds identifiers. A 2,000-identifier bench looks up
        # 2,000 times: without it, each lookup scans every customer.
        self._holders: dict[tuple[str, str], list[dict[str, Any]]] | None = None
        # What writes did, for tests that assert the vendor's end state.
        self.write_error_statuses = write_error_statuses
        self.added: list[int] = []  # ids of customers POST /v2/customers created
        self.updates: list[int] = []  # id of the customer each successful PUT updated
        self.merges: list[dict[str, Any]] = []
        self.item_errors: list[tuple[str, int]] = []  # (method, code) of each failed item
        self.warned: list[tuple[int, int]] = []  # (customer id, code) of each warning answered
        # customer id -> the programs it is enrolled in (loyaltyProgramDetails): every loyalty
        # customer of the seed is in the default program, at a tier of its id.
        self._enrolments: dict[int, list[dict[str, Any]]] = {
            c["id"]: [self._enrolment(DEFAULT_PROGRAM, c["id"] % 3 + 1, c["id"] % 5000, None, None)]
            if c["loyaltyInfo"]["loyaltyType"] == "loyalty" else [] for c in self.customers}
        self._failed_items = 0
        self._next_id = max((c["id"] for c in self.customers), default=565000000) + 7
        self._next_user = 800000
        self.route("POST", "/v3/oauth/token/generate", self.generate_token)
        self.route("GET", "/v2/customers/lookup/customerDetails", self.lookup)
        self.route("PUT", "/v2/customers/lookup", self.update)
        self.route("POST", "/v2/customers", self.add)

    # --- data ---------------------------------------------------------------------------
    @staticmethod
    def _customer(r: Any, n: int) -> dict[str, Any]:
        given, family = seed.person(r)
        created = seed.moment(r)
        stamp = created.strftime("%Y-%m-%dT%H:%M:%S+05:30")
        mobile = f"91{r.choice('6789')}{r.randrange(10**8, 10**9)}"
        identifiers = [{"type": "mobile", "value": mobile}]
        if r.random() < 0.85:
            identifiers.append({"type": "email", "value": seed.email(r, given, family, n)})
        if r.random() < 0.6:  # leading zeros: an identifier that must stay a string
            identifiers.append({"type": "externalId", "value": f"00{r.randrange(10**6, 10**7)}"})
        instore = {
            "firstName": given, "lastName": family, "source": "INSTORE", "accountId": "",
            "userId": 500000 + n, "autoUpdateTime": stamp,
            "identifiers": identifiers,
            "commChannels": [{"type": i["type"], "value": i["value"], "primary": True,
                              "verified": r.random() < 0.7, "meta": {"residence": False}}
                             for i in identifiers if i["type"] in ("mobile", "email")],
            "fields": {"city": r.choice(["Bengaluru", "Zürich", "São Paulo", "東京"])},
        }
        customer: dict[str, Any] = {
            "id": 565000000 + n * 7,
            "profiles": [instore],
            "loyaltyInfo": {
                "loyaltyType": r.choice(["loyalty", "non_loyalty"]),
                "lifetimePurchases": round(r.uniform(0, 90000), 2),
                "attributionV2": {
                    "createDate": stamp,
                    "createdBy": {"code": USERNAME, "id": 75154317, "name": USERNAME,
                                  "type": "TILL"},
                    "createdFromSource": "instore",
                },
            },
            "extendedFields": seed.maybe(r, {
                "gender": r.choice(["Female", "Male"]),
                "dob_date": f"{r.randrange(1950, 2006)}-0{r.randrange(1, 10)}-1{r.randrange(9)}",
            }),
            "associatedWith": seed.maybe(r, "store.bengaluru.1", 0.3),
            "warnings": seed.maybe(r, [{"status": False, "code": 8069,
                                        "message": "Customer email is not verified"}], 0.2) or [],
        }
        if r.random() < 0.3:
            card = f"{r.randrange(10**11, 10**12)}"
            customer["cardDetails"] = [{"cardNumber": card, "cardId": 9000 + n,
                                        "seriesName": "Gold", "issuedDate": stamp}]
        if r.random() < 0.25:
            customer["profiles"].append({
                "firstName": given, "lastName": family, "source": "MARTJACK",
                "accountId": ACCOUNT_ID, "userId": 700000 + n, "autoUpdateTime": stamp,
                "identifiers": [{"type": "martjackId", "value": f"MJ-{n:05d}"}, identifiers[0]],
            })
        return {k: v for k, v in customer.items() if v is not None}

    @staticmethod
    def identifier(customer: dict[str, Any], name: str) -> str | None:
        """The customer's value of identifier `name`, on any profile, or None."""
        if name == "cardnumber":
            cards = customer.get("cardDetails") or [{}]
            return cards[0].get("cardNumber")
        for profile in customer["profiles"]:
            for item in profile["identifiers"]:
                if item["type"] == name:
                    return str(item["value"])
        return None

    def _candidates(self, name: str, value: str) -> list[dict[str, Any]]:
        """The customers holding identifier `name` = `value` on any profile (or card)."""
        with self.lock:
            if self._holders is None:
                holders: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
                for customer in self.customers:
                    card = self.identifier(customer, "cardnumber")
                    found = {("cardnumber", card)} if card is not None else set()
                    found |= {(item["type"], item["value"]) for profile in customer["profiles"]
                              for item in profile["identifiers"] if isinstance(item["value"], str)}
                    for key in found:
                        holders[key].append(customer)
                self._holders = dict(holders)
            return self._holders.get((name, value), [])

    def find(self, name: str, value: str, source: str = "INSTORE",
             account_id: str = "") -> dict[str, Any] | None:
        """The customer a lookup finds, as the API resolves it (source and account matter)."""
        for customer in self._candidates(name, value):
            if name == "cardnumber":
                if self.identifier(customer, name) == value and source in ("INSTORE", "ALL"):
                    return customer
                continue
            for profile in customer["profiles"]:
                on_source = source == "ALL" or (
                    profile["source"] == source
                    and (source == "INSTORE" or profile["accountId"] == account_id))
                if on_source and {"type": name, "value": value} in profile["identifiers"]:
                    return customer
        return None

    def expected_ids(self, name: str, values: list[str], source: str = "INSTORE",
                     account_id: str = "") -> list[int]:
        found = (self.find(name, v, source, account_id) for v in dict.fromkeys(values))
        return [c["id"] for c in found if c]

    # --- auth ---------------------------------------------------------------------------
    def generate_token(self, request: Request) -> Response:
        body = request.json() if request.body else {}
        if not isinstance(body, dict) or not body.get("key") or not body.get("secret"):
            return Response(400, {"data": None, "errors": [
                {"code": 8003, "message": "key and secret are required (sandbox code)"}]})
        if (body["key"], body["secret"]) != (CLIENT_KEY, CLIENT_SECRET):
            return Response(self.token_error_status, {"data": None, "errors": [
                {"code": 401, "message": "Invalid client key or secret"}]})
        token = "eyJraWQiOiJzYW5kYm94In0." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + self.token_ttl
            self.issued_tokens += 1
        return Response(200, {"data": {"accessToken": token, "ttlSeconds": self.token_ttl},
                              "errors": None})

    def _caller(self, request: Request) -> tuple[str | None, bool]:
        """Who is calling (a till or a token), and whether API v2 is enabled for them."""
        token = request.headers.get("x-cap-api-oauth-token")
        if token:
            expires = self.tokens.get(token, 0.0)
            # One second of grace for clock skew and latency; a client that never renews
            # still fails after it.
            return (token, True) if expires + 1 >= time.time() else (None, False)
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme != "Basic":
            return None, False
        try:
            username, _, digest = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None, False
        known, v2 = self.tills.get(username, ("", False))
        return (username, v2) if known and digest == known else (None, False)

    def authenticate(self, request: Request) -> Response | None:
        if request.path == "/v3/oauth/token/generate":
            return None
        caller, v2 = self._caller(request)
        if caller is None:
            return error(401, 401, "Invalid credentials or token")
        if not v2:
            return error(403, 403, "API v2 access is not enabled for this till")
        return None

    def rate_limit(self, request: Request) -> Response | None:
        if not self.per_window or request.path == "/v3/oauth/token/generate":
            return None
        key = self._caller(request)[0] or ""
        now = time.time()
        with self.lock:
            window = [t for t in self._windows[key] if t > now - self.rate_window]
            window.append(now)
            self._windows[key] = window
            over = len(window) > self.per_window
        return error(429, 429, "Rate limit exceeded for this key") if over else None

    def fault_response(self, kind: str) -> Response:
        if kind == "461":
            return error(461, 461, "Search is busy, please retry")
        if kind == "521":
            return error(521, 521,
                         "Multiple actions are running for the same customer, try later")
        if kind == "200-error":
            return error(200, 8003, "Request could not be processed (sandbox code)")
        return super().fault_response(kind)

    # --- endpoints ----------------------------------------------------------------------
    def _lookup_query(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        q = request.query
        source, name, value = q.get("source", ""), q.get("identifierName", ""), q.get(
            "identifierValue")
        if source not in SOURCES:
            return None, error(400, 8003, f"Invalid source '{source}' (sandbox code)")
        if name not in IDENTIFIER_NAMES or not value:
            return None, error(400, 8003, "Invalid identifierName or value (sandbox code)")
        # A cluster checks a mobile's and an e-mail's form before it looks (a check's lookup
        # of mobile "0" meets this).
        if (name == "mobile" and not MOBILE.match(value)) or (
                name == "email" and not EMAIL.match(value)):
            return None, error(400, INVALID_IDENTIFIER, f"Invalid {name}")
        # Without accountId a source other than INSTORE finds no one: 8015, as documented.
        found = self.find(name, value, source, q.get("accountId", ""))
        if found is None:
            with self.lock:
                status = self.not_found_statuses[self.misses % len(self.not_found_statuses)]
                self.misses += 1
            return None, Response(status, {"errors": [NOT_FOUND], "warnings": []})
        return found, None

    def lookup(self, request: Request) -> Response:
        found, failed = self._lookup_query(request)
        if failed or found is None:
            return failed or Response(500)
        customer = copy.deepcopy(found)
        embed = {e.strip().lower() for e in request.query.get("embed", "").split(",") if e}
        if "mlp" in embed or "points" in embed:
            customer["loyaltyProgramDetails"] = copy.deepcopy(self.programs(found))
        if "segments" in embed:
            customer["segments"] = {"RFM": {"segmentName": "RFM", "partition": "Champions"}}
        return Response(200, customer)

    def programs(self, customer: dict[str, Any]) -> list[dict[str, Any]]:
        """The programs `customer` is enrolled in, as `embed=mlp` shows them."""
        with self.lock:
            return self._enrolments.setdefault(customer["id"], [])

    @staticmethod
    def _enrolment(program: int, tier: int, points: int, tier_expiry: str | None,
                   points_expiry: str | None) -> dict[str, Any]:
        title, tiers = PROGRAMS[program]
        return {"programId": program, "programTitle": title, "currentSlab": tiers[tier - 1],
                "slabSNo": tier, "loyaltyPoints": float(points), "lifetimePoints": float(points),
                "redeemed": 0.0, "expired": 0.0, "tierExpiryDate": tier_expiry,
                "pointsExpiryDate": points_expiry}

    @staticmethod
    def _enrolment_problem(items: Any) -> str:
        """Why `loyaltyProgramEnrollments` cannot be applied (an item error), or ""."""
        if not isinstance(items, list):
            return "loyaltyProgramEnrollments must be a list (sandbox code)"
        for item in items:
            if not isinstance(item, dict) or item.get("programId") not in PROGRAMS:
                return "Invalid programId (sandbox code)"
            tiers = PROGRAMS[item["programId"]][1]
            tier = item.get("tierNumber", 1)
            if not isinstance(tier, int) or not 1 <= tier <= len(tiers):
                return f"Invalid tierNumber {tier!r} for program {item['programId']} (sandbox code)"
            points = item.get("loyaltyPoints", 0)
            if not isinstance(points, int) or isinstance(points, bool) or points < 0:
                return "Invalid loyaltyPoints (sandbox code)"
            for name in ("tierExpiryDate", "pointsExpiryDate"):
                if name in item and not (isinstance(item[name], str)
                                         and CAPILLARY_DATE_TIME.match(item[name])):
                    return (f"Invalid {name}: the supported format is "
                            "YYYY-MM-DDTHH:MM:SS+/-(time-zone) (sandbox code)")
        return ""

    def _enrol(self, customer: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """Enrols `customer` in each program it is not in yet; one it is in is left as it is,
        silently ("you cannot update details if the customer is already enrolled")."""
        held = self.programs(customer)
        for item in items:
            if any(p["programId"] == item["programId"] for p in held):
                continue
            held.append(self._enrolment(item["programId"], item.get("tierNumber", 1),
                                        item.get("loyaltyPoints", 0),
                                        item.get("tierExpiryDate"), item.get("pointsExpiryDate")))
            customer["loyaltyInfo"]["loyaltyType"] = "loyalty"

    @staticmethod
    def _channel_problem(channels: list[dict[str, Any]]) -> str:
        for channel in channels:
            if channel.get("type") not in CHANNEL_TYPES or not isinstance(
                    channel.get("value"), str):
                return f"Invalid communication channel {channel.get('type')!r} (sandbox code)"
        return ""

    @staticmethod
    def _channels(channels: list[dict[str, Any]], source: str
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The channels a profile of `source` takes, and the warnings of those it does not
        (and of e-mail addresses given as unverified)."""
        kept, warnings = [], []
        for channel in channels:
            if channel["type"] == "mobilePush" and source not in PUSH_SOURCES:
                warnings.append({"status": False, "code": PUSH_UNSUPPORTED,
                                 "message": f"mobilePush is not supported for source {source}; "
                                            "the channel was not added (sandbox code)"})
                continue
            if channel["type"] == "email" and channel.get("verified") is False:
                warnings.append({"status": False, "code": UNVERIFIED_EMAIL,
                                 "message": "Customer email is not verified"})
            kept.append(channel)
        return kept, warnings

    # --- writes -------------------------------------------------------------------------
    def _item(self, method: str, customer_id: int | None, code: int = 0, message: str = "",
              warnings: list[dict[str, Any]] | None = None) -> Response:
        """A write's answer: one item, HTTP 200 when it succeeded, else 201 (by default)."""
        errors = [{"status": False, "code": code, "message": message}] if code else []
        body = {"createdId": customer_id, "entity": customer_id, "success": not errors,
                "warnings": warnings or [], "errors": errors}
        if not errors:
            with self.lock:
                self.warned += [(customer_id or 0, w["code"]) for w in warnings or []]
            return Response(200, body)
        with self.lock:
            self.item_errors.append((method, code))
            status = self.write_error_statuses[self._failed_items
                                               % len(self.write_error_statuses)]
            self._failed_items += 1
        return Response(status, body)

    @staticmethod
    def _identifier_problem(item: Any) -> str:
        """Why an identifier to add is invalid (8013), or ""."""
        if not isinstance(item, dict) or item.get("type") not in WRITABLE_IDENTIFIERS:
            kind = item.get("type") if isinstance(item, dict) else item
            return f"Invalid identifier type {kind!r}"
        value = item.get("value")
        if not isinstance(value, str) or not value.strip():
            return f"Invalid {item['type']}: empty or not a string"
        if item["type"] == "mobile" and not MOBILE.match(value):
            return "Invalid mobile number"
        if item["type"] == "email" and not EMAIL.match(value):
            return "Invalid email id"
        return ""

    def _held(self, item: dict[str, str], source: str, account_id: str,
              besides: dict[str, Any] | None = None) -> tuple[dict[str, Any] | None, bool]:
        """Another customer holding the identifier, and whether on this very source account."""
        elsewhere = None
        for customer in self._candidates(item["type"], item["value"]):
            if customer is besides:
                continue
            for profile in customer["profiles"]:
                if {"type": item["type"], "value": item["value"]} not in profile["identifiers"]:
                    continue
                if profile["source"] == source and (
                        source == "INSTORE" or profile["accountId"] == account_id):
                    return customer, True
                elsewhere = elsewhere or customer
        return elsewhere, False

    @staticmethod
    def _join(customer: dict[str, Any], profile: dict[str, Any]) -> None:
        """Adds `profile` to `customer`; into its profile of the same source account if any."""
        same = next((p for p in customer["profiles"] if p["source"] == profile["source"]
                     and p["accountId"] == profile["accountId"]), None)
        if same is None:
            customer["profiles"].append(profile)
        else:
            same["identifiers"] += [i for i in profile["identifiers"]
                                    if i not in same["identifiers"]]

    def _merge(self, survivor: dict[str, Any], victim: dict[str, Any]) -> None:
        """Folds `victim` into `survivor` (its profiles and cards); `victim` is gone."""
        for profile in victim["profiles"]:
            self._join(survivor, profile)
        held = self.programs(survivor)
        held += [p for p in self.programs(victim)
                 if all(p["programId"] != h["programId"] for h in held)]
        self._enrolments.pop(victim["id"], None)
        if "cardDetails" in victim and "cardDetails" not in survivor:
            survivor["cardDetails"] = victim["cardDetails"]
        self.customers.remove(victim)
        self._holders = None

    def _write_source(self, request: Request, body: dict[str, Any]) -> tuple[str, str, str]:
        """(source, accountId, why invalid or "") of a write."""
        profiles = body.get("profiles") if isinstance(body.get("profiles"), list) else []
        first = profiles[0] if profiles and isinstance(profiles[0], dict) else {}
        source = request.query.get("source") or first.get("source") or "INSTORE"
        account_id = request.query.get("accountId") or first.get("accountId") or ""
        if source not in WRITE_SOURCES:
            return source, account_id, f"Invalid source '{source}'"
        if source != "INSTORE" and not account_id:
            return source, account_id, f"accountId is required for source {source}"
        return source, "" if source == "INSTORE" else str(account_id), ""

    @staticmethod
    def _body(request: Request) -> dict[str, Any] | None:
        try:
            body = request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @staticmethod
    def _profiles(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        profiles = body.get("profiles") or []
        if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
            return None
        return profiles

    def add(self, request: Request) -> Response:
        """`POST /v2/customers`: a new customer; never updates an existing one."""
        body = self._body(request)
        profiles = None if body is None else self._profiles(body)
        if body is None or profiles is None:
            return error(400, 400, "Input is invalid. Please check request parameters or "
                                   "input json")
        source, account_id, bad_source = self._write_source(request, body)
        if bad_source:
            return self._item("POST", None, INVALID_SOURCE, bad_source)
        identifiers = [i for p in profiles for i in (p.get("identifiers") or [])]
        if not identifiers:
            return self._item("POST", None, INVALID_IDENTIFIER, "No identifiers given")
        for item in identifiers:
            problem = self._identifier_problem(item)
            if problem:
                return self._item("POST", None, INVALID_IDENTIFIER, problem)
        enrolments = body.get("loyaltyProgramEnrollments")
        problem = "" if enrolments is None else self._enrolment_problem(enrolments)
        if problem:
            return self._item("POST", None, INVALID_ENROLMENT, problem)
        all_channels = [c for change in profiles for c in change.get("commChannels") or []
                        if isinstance(c, dict)]
        problem = self._channel_problem(
            all_channels + [c for c in body.get("commChannels") or [] if isinstance(c, dict)])
        if problem:
            return self._item("POST", None, INVALID_CHANNEL, problem)
        warnings: list[dict[str, Any]] = []
        with self.lock:
            merge_into = None
            for item in identifiers:
                holder, same_account = self._held(item, source, account_id)
                if same_account and holder is not None:
                    return self._item("POST", None, ALREADY_HELD,
                                      f"Customer already exists with {item['type']} "
                                      f"{item['value']} (sandbox code)")
                merge_into = merge_into or (holder and (holder, item))
            stamp = datetime.now(IST).strftime("%Y-%m-%dT%H:%M:%S+05:30")
            new_profiles = []
            for change in profiles:
                self._next_user += 1
                items = [{"type": i["type"], "value": i["value"]}
                         for i in change.get("identifiers") or []]
                channels, warned = self._channels(
                    [c for c in change.get("commChannels") or body.get("commChannels") or []
                     if isinstance(c, dict)], source)
                warnings += warned
                new_profiles.append({
                    "firstName": change.get("firstName", ""),
                    "lastName": change.get("lastName", ""),
                    "source": source, "accountId": account_id, "userId": self._next_user,
                    "autoUpdateTime": stamp, "identifiers": items,
                    "commChannels": [{"primary": True, "verified": False, "meta": {}, **c}
                                     for c in channels],
                    "fields": dict(change.get("fields") or {}),
                })
            loyalty = body.get("loyaltyInfo")
            loyalty = loyalty if isinstance(loyalty, dict) else {}
            customer: dict[str, Any] = {
                "id": self._next_id,
                "profiles": new_profiles,
                "loyaltyInfo": {
                    "loyaltyType": loyalty.get("loyaltyType") or body.get("loyaltyType")
                    or "non_loyalty",
                    "lifetimePurchases": 0.0,
                    "attributionV2": {
                        "createDate": stamp,
                        "createdBy": {"code": USERNAME, "id": 75154317, "name": USERNAME,
                                      "type": "TILL"},
                        "createdFromSource": source.lower(),
                    },
                },
                "extendedFields": dict(body.get("extendedFields") or {}),
                "warnings": [],
            }
            if merge_into:
                holder, item = merge_into
                for profile in new_profiles:  # the new profile joins the existing customer
                    self._join(holder, profile)
                self._holders = None
                self.merges.append({"survivor": holder["id"], "victim": None,
                                    "identifier": dict(item), "via": "POST /v2/customers"})
                self._enrol(holder, enrolments or [])
                return self._item("POST", holder["id"], warnings=[*warnings, {
                    "status": False, "code": ALREADY_HELD,
                    "message": "Customer merged with an existing customer holding "
                               f"{item['type']} under another source (sandbox code)"}])
            self._next_id += 7
            self.customers.append(customer)
            self._holders = None
            self.added.append(customer["id"])
            self._enrol(customer, enrolments or [])
        return self._item("POST", customer["id"], warnings=warnings)

    def update(self, request: Request) -> Response:
        """`PUT /v2/customers/lookup`: profile, channels, identifiers, extended fields, loyalty
        type of the customer the query's identifier finds."""
        body = self._body(request)
        profiles = None if body is None else self._profiles(body)
        if body is None or profiles is None:
            return error(400, 400, "Input is invalid. Please check request parameters or "
                                   "input json")
        q = request.query
        source, name, value = q.get("source", ""), q.get("identifierName", ""), q.get(
            "identifierValue")
        if source not in WRITE_SOURCES:
            return self._item("PUT", None, INVALID_SOURCE, f"Invalid source '{source}'")
        if name not in IDENTIFIER_NAMES or not value:
            return self._item("PUT", None, INVALID_IDENTIFIER,
                              "Invalid identifierName or identifierValue")
        account_id = q.get("accountId", "") if source != "INSTORE" else ""
        found = self.find(name, value, source, account_id)
        if found is None:
            return self._item("PUT", None, NOT_FOUND_CODE, str(NOT_FOUND["message"]))
        additions = [i for p in profiles for i in (p.get("identifiers") or [])]
        for item in additions:
            problem = self._identifier_problem(item)
            if problem:
                return self._item("PUT", found["id"], INVALID_IDENTIFIER, problem)
        enrolments = body.get("loyaltyProgramEnrollments")
        problem = "" if enrolments is None else self._enrolment_problem(enrolments)
        if problem:
            return self._item("PUT", found["id"], INVALID_ENROLMENT, problem)
        channels = [c for c in body.get("commChannels") or [] if isinstance(c, dict)]
        channels += [c for change in profiles for c in change.get("commChannels") or []
                     if isinstance(c, dict)]
        problem = self._channel_problem(channels)
        if problem:
            return self._item("PUT", found["id"], INVALID_CHANNEL, problem)
        with self.lock:
            victims: list[tuple[dict[str, Any], dict[str, str]]] = []
            for item in additions:
                holder, same_account = self._held(item, source, account_id, besides=found)
                if holder is not None and same_account:
                    return self._item("PUT", found["id"], ALREADY_HELD,
                                      f"{item['type']} {item['value']} belongs to another "
                                      "customer (sandbox code)")
                if holder is not None and all(holder is not v for v, _ in victims):
                    victims.append((holder, item))
            if body.get("loyaltyType") in ("loyalty", "non_loyalty"):
                found["loyaltyInfo"]["loyaltyType"] = body["loyaltyType"]
            found.setdefault("extendedFields", {}).update(body.get("extendedFields") or {})
            profile = next((p for p in found["profiles"] if p["source"] == source
                            and (source == "INSTORE" or p["accountId"] == account_id)),
                           found["profiles"][0])
            for change in profiles:
                for key in ("firstName", "lastName"):
                    if key in change:
                        profile[key] = change[key]
                profile.setdefault("fields", {}).update(change.get("fields") or {})
                for item in change.get("identifiers") or []:
                    item = {"type": item["type"], "value": item["value"]}
                    if item not in profile["identifiers"]:
                        profile["identifiers"].append(item)
                        self._holders = None
            channels, warnings = self._channels(channels, source)
            self._enrol(found, enrolments or [])
            for channel in channels:
                kept = [c for c in profile.get("commChannels", [])
                        if c["type"] != channel.get("type")]
                profile["commChannels"] = [*kept, channel]
            for victim, item in victims:
                self._merge(found, victim)
                self.merges.append({"survivor": found["id"], "victim": victim["id"],
                                    "identifier": dict(item), "via": "PUT /v2/customers/lookup"})
            profile["autoUpdateTime"] = datetime.now(IST).strftime("%Y-%m-%dT%H:%M:%S+05:30")
            self.updates.append(found["id"])
        return self._item("PUT", found["id"], warnings=warnings)


# What the shared runner and standard tests serve: small, still with hits and misses.
SMALL: dict[str, Any] = {"customers": 40}
SECRETS = (PASSWORD, md5(PASSWORD), basic_header(USERNAME, PASSWORD), NO_V2_PASSWORD,
           md5(NO_V2_PASSWORD), basic_header(NO_V2_USERNAME, NO_V2_PASSWORD), CLIENT_SECRET)
