"""LOKE's customers API as LOKE documents it (assumptions: docs/loke.md).

Bare JSON arrays, pages of 1000 customers and 10 memberships, the next page in the
`X-Next-Page` header (an absolute URL or an absolute path: both forms are documented),
`sort=created|updated` (updated: most recently updated first), Bearer tokens pasted in or
issued by an OAuth2 client_credentials endpoint, and bare-status errors.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from integration_tests.sandbox import seed
from integration_tests.sandbox.server import Request, Response, VendorApi

ORGANIZATION = "01ORGSANDBOXLOKE0000000000"
ACCESS_TOKEN = "loke-sandbox-access-token-5f2c"
OTHER_ORG_TOKEN = "loke-sandbox-other-org-token-77a1"
CLIENT_ID = "loke-sandbox-client"
CLIENT_SECRET = "loke-sandbox-client-secret-9d3e"


def config(url: str, **extra: Any) -> dict[str, Any]:
    """A connector config for this sandbox."""
    return {
        "vendor": "loke",
        "base_url": url,
        "organization_id": ORGANIZATION,
        "credentials": {"auth_type": "access_token", "access_token": ACCESS_TOKEN},
        **extra,
    }


def client_credentials(url: str) -> dict[str, str]:
    return {"auth_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "token_url": url + "/token"}


class Api(VendorApi):
    name = "loke"

    def __init__(self, customers: int = 2500, with_memberships: int | None = None,
                 page_size: int = 1000, membership_page_size: int = 10,
                 next_page_form: str = "path", token_ttl: int = 3600) -> None:
        super().__init__()
        self.page_size = page_size
        self.membership_page_size = membership_page_size
        self.next_page_form = next_page_form  # "path", "url" or "alternate"
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[str, float]] = {
            ACCESS_TOKEN: (ORGANIZATION, float("inf")),
            OTHER_ORG_TOKEN: ("01ORGSOMEONEELSE0000000000", float("inf")),
        }
        self.issued_tokens = 0
        r = seed.rng("loke")
        self.customers: list[dict[str, Any]] = [self._customer(r, n) for n in range(customers)]
        with_memberships = customers if with_memberships is None else with_memberships
        lists = [{"id": seed.ulid(r), "name": name} for name in (
            "Loyal Customers", "VIP ✨", "Café regulars", "Newsletter", "Birthday club",
            "Lapsed 90 days", "Staff", "Große Bestellungen", "Early birds", "Weekend brunch",
            "Members 会员", "Win-back", "Top spenders", "App users", "Catering")]
        self.memberships: dict[str, list[dict[str, Any]]] = {
            c["id"]: r.sample(lists, r.choice((0, 1, 3, 10, 11, 15)))
            for c in self.customers[:with_memberships]
        }
        self._by_id = {c["id"]: c for c in self.customers}
        self._sorted: dict[str, list[dict[str, Any]]] = {}  # by sort order; reset on change
        base = "/organizations/(?P<org>[^/]+)/customers"
        self.route("POST", "/token", self.token)
        self.route("GET", base, self.list_customers)
        self.route("GET", base + "/(?P<cid>[^/]+)", self.get_customer)
        self.route("GET", base + "/(?P<cid>[^/]+)/memberships", self.list_memberships)

    @staticmethod
    def _customer(r: Any, n: int) -> dict[str, Any]:
        given, family = seed.person(r)
        created = seed.moment(r)
        updated = seed.moment(r, created, 60)
        record = {
            "id": seed.ulid(r),
            "createdAt": seed.iso(created),
            "updatedAt": seed.iso(updated),
            "dob": seed.maybe(r, f"{r.randrange(1950, 2006)}-{r.randrange(1, 13):02d}-"
                                 f"{r.randrange(1, 29):02d}", 0.6),
            "email": seed.maybe(r, seed.email(r, given, family, n), 0.9),
            "firstName": given,
            "lastName": family,
            "gender": seed.maybe(r, r.choice(["MALE", "FEMALE", "OTHER"]), 0.5),
            "hasAgreedToMarketing": seed.maybe(r, r.random() < 0.5, 0.9),
            "phoneNumber": seed.maybe(r, f"+614{r.randrange(10**7, 10**8)}", 0.7),
            "statistics": seed.maybe(r, {
                "lastPointsEarnedAt": seed.iso(seed.moment(r), millis=True),
                "lastPointsRedeemedAt": seed.maybe(r, seed.iso(seed.moment(r), millis=True)),
                "lastSpentAt": seed.iso(seed.moment(r), millis=True),
                "pointsBalance": r.randrange(0, 10000),
                "totalPointsEarned": r.randrange(0, 20000),
                "totalPointsRedeemed": r.randrange(0, 9000),
                "totalSpend": r.randrange(0, 500000),
            }, 0.85),
        }
        return {k: v for k, v in record.items() if v is not None}

    # --- changes a test makes between syncs ---------------------------------------------
    def touch(self, count: int, when: datetime | None = None) -> list[str]:
        """Updates `count` customers now (their updatedAt moves); returns their ids."""
        stamp = seed.iso(when or datetime.now(timezone.utc))
        with self.lock:
            changed = self.customers[7::97][:count]
            for customer in changed:
                customer["updatedAt"] = stamp
                customer["firstName"] = customer["firstName"] + "·"
            self._sorted.clear()
        return [c["id"] for c in changed]

    # --- auth ---------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if request.headers.get("content-type", "").startswith("application/json"):
            form = request.json()
        if request.headers.get("authorization", "").startswith("Basic "):
            pair = base64.b64decode(request.headers["authorization"][6:]).decode()
            form["client_id"], _, form["client_secret"] = pair.partition(":")
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return Response(401, {"error": "invalid_client"})
        token = "loke-issued-" + secrets.token_hex(12)
        with self.lock:
            self.tokens[token] = (ORGANIZATION, time.time() + self.token_ttl)
            self.issued_tokens += 1
        return Response(200, {"access_token": token, "token_type": "Bearer",
                              "expires_in": self.token_ttl})

    def authenticate(self, request: Request) -> Response | None:
        if request.path == "/token":
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        org, expires = self.tokens.get(token, ("", 0.0)) if scheme == "Bearer" else ("", 0.0)
        # One second of grace for the clock skew and latency between issuer and client, as
        # OAuth providers allow; a client that never renews still fails after it.
        if not org or expires + 1 < time.time():
            return Response(401)
        wanted = request.path.split("/")[2]
        if wanted == ORGANIZATION and org != ORGANIZATION:
            return Response(403)
        return None

    # --- paging -------------------------------------------------------------------------
    def _next_page(self, path: str, params: dict[str, str], offset: int) -> dict[str, str]:
        cursor = base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()
        link = f"{path}?{urlencode({**params, 'after': cursor})}"
        form = self.next_page_form
        if form == "alternate":
            form = "url" if offset // max(self.page_size, 1) % 2 else "path"
        return {"X-Next-Page": self.public_url + link if form == "url" else link}

    @staticmethod
    def _offset(request: Request) -> int:
        after = request.query.get("after")
        return json.loads(base64.urlsafe_b64decode(after))["o"] if after else 0

    def _page(self, request: Request, items: list[dict[str, Any]], size: int,
              keep: tuple[str, ...]) -> Response:
        offset = self._offset(request)
        page = items[offset:offset + size]
        headers = {}
        if offset + size < len(items):
            params = {k: request.query[k] for k in keep if k in request.query}
            headers = self._next_page(request.path, params, offset + size)
        return Response(200, page, headers)

    # --- endpoints ----------------------------------------------------------------------
    def list_customers(self, request: Request, org: str) -> Response:
        if org != ORGANIZATION:
            return Response(404)
        order = "updated" if request.query.get("sort") == "updated" else "created"
        with self.lock:
            # Sorted once per order, not per page: a 100k-customer bench pages 100 times.
            if order not in self._sorted:
                field = "updatedAt" if order == "updated" else "createdAt"
                self._sorted[order] = sorted(self.customers, key=lambda c: (c[field], c["id"]),
                                             reverse=order == "updated")
            items = self._sorted[order]
        for key in ("email", "phoneNumber"):
            if key in request.query:
                items = [c for c in items if c.get(key) == request.query[key]]
        return self._page(request, items, self.page_size, ("sort", "email", "phoneNumber"))

    def get_customer(self, request: Request, org: str, cid: str) -> Response:
        found = self._by_id.get(cid)
        return Response(200, found) if org == ORGANIZATION and found else Response(404)

    def list_memberships(self, request: Request, org: str, cid: str) -> Response:
        if org != ORGANIZATION or cid not in self._by_id:
            return Response(404)
        lists = self.memberships.get(cid, [])
        return self._page(request, lists, self.membership_page_size, ())


SECRETS = (ACCESS_TOKEN, OTHER_ORG_TOKEN, CLIENT_SECRET)

# A small organization for the standard tests: every stream non-empty, few requests.
SMALL = {"customers": 60, "page_size": 25}


def invalid_config(url: str) -> dict[str, Any]:
    return config(url, credentials={"auth_type": "access_token", "access_token": "not-a-token"})
