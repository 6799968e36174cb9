"""The plain client the connector is measured against: `requests` and `json`, one request at a time.

    python -m bench.baseline CONFIG STREAM...

Reads the streams named, with the same connector config, the simplest correct way each vendor
documents (docs/<vendor>.md), and writes one JSON line per record, `{"stream", "data"}`,
carrying the same parent keys as the connector's records. No retries, no concurrency, no
state: any error ends it. It supports what the bench's configs use: LOKE access tokens,
Capillary Basic auth.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import requests

Config = dict[str, Any]
Emit = Callable[[str, dict[str, Any]], None]


def loke(session: requests.Session, config: Config, streams: set[str], emit: Emit) -> None:
    base = (config.get("base_url") or "https://api.loke.global").rstrip("/")
    session.headers["Authorization"] = "Bearer " + config["credentials"]["access_token"]
    customers_url = f"{base}/organizations/{config['organization_id']}/customers"

    def pages(url: str | None) -> Iterator[list[dict[str, Any]]]:
        # X-Next-Page: the next page as an absolute URL or an absolute path; absent at the end.
        while url:
            response = session.get(url)
            response.raise_for_status()
            yield response.json()
            link = response.headers.get("X-Next-Page")
            url = urljoin(base + "/", link) if link else None

    parents: list[str] = []
    for page in pages(customers_url + "?sort=updated"):
        for customer in page:
            if "customers" in streams:
                emit("customers", customer)
            if "customer_memberships" in streams:
                parents.append(customer["id"])
    for customer_id in parents:
        for page in pages(f"{customers_url}/{customer_id}/memberships"):
            for membership in page:
                emit("customer_memberships", {**membership, "customerId": customer_id})


def malomo(session: requests.Session, config: Config, streams: set[str], emit: Emit) -> None:
    base = (config.get("base_url") or "https://api.gomalomo.com").rstrip("/")
    session.headers["Authorization"] = "Bearer " + config["api_key"]
    session.headers["Accept"] = "application/vnd.malomo+json; version=2"

    def pages(url: str) -> Iterator[list[dict[str, Any]]]:
        # `next=<id of the page's last record>` asks for the records after it; [] ends.
        cursor = None
        while True:
            response = session.get(url, params={"next": cursor} if cursor else None)
            response.raise_for_status()
            page = response.json()
            if not page:
                return
            yield page
            cursor = page[-1]["id"]

    parents: list[str] = []
    for page in pages(base + "/customers"):
        for customer in page:
            if "customers" in streams:
                emit("customers", customer)
            if "customer_events" in streams:
                parents.append(customer["id"])
    for customer_id in parents:
        for page in pages(f"{base}/customers/{customer_id}/events"):
            for event in page:
                emit("customer_events", {**event, "customer_id": customer_id})


def okendo(session: requests.Session, config: Config, streams: set[str], emit: Emit) -> None:
    base = (config.get("base_url") or "https://api.okendo.io/enterprise").rstrip("/")
    session.auth = (config["user_id"], config["api_key"])
    session.headers["okendo-api-version"] = "2025-02-01"
    addresses: dict[str, str] = {}  # an address in any letter case is the same address
    for address in config["customer_emails"]:
        addresses.setdefault(address.casefold(), address)
    for address in addresses.values():
        response = session.post(base + "/customer_lookup", json={"email": address})
        if response.status_code == 404:  # no customer has this address: not an error
            continue
        response.raise_for_status()
        customer_id = response.json()["customerId"]
        if "customers" in streams:
            response = session.get(f"{base}/customers/{customer_id}")
            response.raise_for_status()
            emit("customers", {**response.json(), "customerId": customer_id, "email": address})
        for kind in ("profiles", "activities"):
            if "customer_" + kind not in streams:
                continue
            # `nextUrl` is relative to the base path, /enterprise included; absent at the end.
            url: str | None = f"{base}/customers/{customer_id}/{kind}?limit=100"
            while url:
                response = session.get(url)
                response.raise_for_status()
                body = response.json()
                for item in body[kind]:
                    emit("customer_" + kind, {**item, "customerId": customer_id})
                url = base + body["nextUrl"] if body.get("nextUrl") else None
    if "reviews" in streams:
        # One pass per status, oldest first; past ~2 requests a second Okendo answers 429
        # with Retry-After, which this loop waits out.
        for status in config.get("review_statuses") or ("approved", "pending", "rejected"):
            url = f"{base}/reviews?limit=100&orderBy=date%20asc&status={status}"
            while url:
                response = session.get(url)
                if response.status_code == 429:
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                body = response.json()
                for review in body["reviews"]:
                    emit("reviews", review)
                url = base + body["nextUrl"] if body.get("nextUrl") else None


def capillary(session: requests.Session, config: Config, streams: set[str], emit: Emit) -> None:
    credentials = config["credentials"]
    if credentials["auth_type"] != "basic":
        sys.exit("bench.baseline: only Capillary's basic auth is supported")
    digest = hashlib.md5(credentials["password"].encode()).hexdigest()
    pair = f"{credentials['username']}:{digest}".encode()
    session.headers["Authorization"] = "Basic " + b64encode(pair).decode()
    name = config["identifier_name"]
    params = {"source": config.get("source") or "INSTORE", "identifierName": name}
    if config.get("account_id"):
        params["accountId"] = config["account_id"]
    if config.get("embed"):
        params["embed"] = ",".join(config["embed"])
    url = config["base_url"].rstrip("/") + "/v2/customers/lookup/customerDetails"
    for value in dict.fromkeys(config["identifiers"]):  # a value listed twice: looked up once
        response = session.get(url, params={**params, "identifierValue": value})
        body = response.json()
        # Errors live in the body, with HTTP 200 as often as not; 8015 is "no such customer".
        errors = body.get("errors") or []
        if errors and all(e.get("code") == 8015 for e in errors):
            continue
        if errors:
            sys.exit(f"bench.baseline: Capillary answered {errors}")
        response.raise_for_status()
        body.pop("warnings", None)
        emit("customers", {**body, "identifierName": name, "identifierValue": value})


VENDORS: dict[str, Callable[[requests.Session, Config, set[str], Emit], None]] = {
    "loke": loke, "malomo": malomo, "okendo": okendo, "capillary": capillary}


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m bench.baseline CONFIG STREAM...")
    with open(argv[0], encoding="utf-8") as file:
        config = json.load(file)
    out = sys.stdout

    def emit(stream: str, record: dict[str, Any]) -> None:
        out.write(json.dumps({"stream": stream, "data": record}) + "\n")

    with requests.Session() as session:
        VENDORS[config["vendor"]](session, config, set(argv[1:]), emit)
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
