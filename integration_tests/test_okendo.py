"""Okendo end to end: the installed CLI against the Okendo sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from integration_tests.cli import Output, assert_same_keys, run, spec_branch, sync
from integration_tests.sandbox import okendo
from integration_tests.sandbox.server import Server

STREAMS = ("customers", "customer_profiles", "customer_activities", "reviews",
           "loyalty_customers", "loyalty_earning_rules", "loyalty_redemption_rules")


@pytest.fixture
def api() -> okendo.Api:
    return okendo.Api(customers=16)


@pytest.fixture
def url(serve: Callable[[okendo.Api], Server], api: okendo.Api) -> str:
    return serve(api).url


def emails(api: okendo.Api) -> list[str]:
    """Every customer's address, two unknown ones, and duplicates in two spellings."""
    return okendo.mixed_emails(len(api.customers))


def expected(api: okendo.Api, addresses: list[str]) -> dict[str, list[Any]]:
    """Every stream's keys, from the sandbox's own data: what a full read must hold."""
    return okendo.expected_keys(api, addresses)


def keys(output: Output) -> dict[str, list[Any]]:
    return {stream: output.keys(stream, *key) for stream, key in okendo.KEYS.items()}


def assert_exactly(output: Output, wanted: dict[str, list[Any]]) -> None:
    got = keys(output)
    for stream in wanted:
        assert_same_keys(got[stream], wanted[stream])


def read_all(url: str, incremental: bool = False, state: list[dict[str, Any]] | None = None,
             streams: tuple[str, ...] = (), **config: Any) -> Output:
    return sync(okendo.config(url, **config), *streams, incremental=incremental, state=state)


def test_spec_covers_okendo_fields_without_config() -> None:
    branch = spec_branch("okendo")
    assert {"user_id", "api_key", "customer_emails", "base_url", "start_date",
            "num_workers"} <= set(branch["properties"])
    assert set(branch["required"]) == {"vendor", "user_id", "api_key"}
    assert branch["properties"]["review_statuses"]["items"]["enum"] == [
        "approved", "pending", "rejected"]
    assert branch["properties"]["api_key"]["airbyte_secret"] is True
    assert branch["properties"]["base_url"]["default"] == "https://api.okendo.io/enterprise"


def test_check_succeeds(url: str, api: okendo.Api) -> None:
    output = run("check", okendo.config(url, customer_emails=emails(api)))
    assert output.connection_status["status"] == "SUCCEEDED"


def test_check_with_wrong_api_key_fails_readably_showing_no_key_or_address(url: str) -> None:
    output = run("check", okendo.invalid_config(url))
    assert output.returncode == 0
    assert output.connection_status["status"] == "FAILED"
    assert "rejected the credentials" in output.connection_status["message"]
    assert "Traceback" not in output.stdout
    assert okendo.invalid_config(url)["api_key"] not in output.text
    assert not [e for e in okendo.config(url)["customer_emails"] if e in output.text]


def test_entry_that_is_not_an_email_fails_check_naming_it(url: str, api: okendo.Api) -> None:
    output = run("check", okendo.config(url, customer_emails=[*emails(api), "zoë at example"]))
    assert output.connection_status["status"] == "FAILED"
    # Named by its place, and quoted masked: an entry is personal data.
    assert "'customer_emails[20]'" in output.connection_status["message"]
    assert "(got 'zo***')" in output.connection_status["message"]
    assert "zoë at example" not in output.text
    assert api.requests == []  # refused before anything is sent


def test_discover_lists_streams_keys_and_cursor(url: str) -> None:
    (message,) = run("discover", okendo.config(url)).of_type("CATALOG")
    streams = {s["name"]: s for s in message["catalog"]["streams"]}
    assert streams["customers"]["source_defined_primary_key"] == [["customerId"]]
    assert streams["customer_profiles"]["source_defined_primary_key"] == [["customerId"],
                                                                          ["namespace"]]
    assert streams["customer_activities"]["source_defined_primary_key"] == [["activityId"]]
    assert streams["customer_activities"]["default_cursor_field"] == ["date"]
    assert "incremental" in streams["customer_activities"]["supported_sync_modes"]
    assert set(streams) == set(STREAMS)
    assert {name: streams[name]["source_defined_primary_key"] for name in STREAMS[3:]} == {
        "reviews": [["reviewId"]], "loyalty_customers": [["loyaltyCustomerId"]],
        "loyalty_earning_rules": [["type"]], "loyalty_redemption_rules": [["redemptionRuleId"]]}


def test_read_of_known_unknown_and_duplicate_addresses_under_429s_is_exact(
        url: str, api: okendo.Api) -> None:
    api.set_rate_limit(200, burst=10)  # Okendo's token bucket, scaled up to keep this quick
    api.set_faults(every=25, kinds=("429",))  # and a 429 every 25 requests on any machine
    addresses = emails(api)
    output = read_all(url, customer_emails=addresses)
    assert len(api.faulted) >= 2
    assert_exactly(output, expected(api, addresses))
    # Records as Okendo sent them, plus the ID and the address they were looked up by.
    by_id = {r["customerId"]: r for r in output.records("customers")}
    for cid, details in api.customers.items():
        assert by_id[cid] == {**details, "customerId": cid}
    # Each distinct address was looked up once for all three streams. A lookup answered 429
    # is re-sent: the injected ones, and the bucket's own when the connector's budget (100
    # a second, in any second) bunches more requests than the bucket's burst of 10.
    lookups = [r for r in api.requests if r.path.endswith("/customer_lookup")]
    distinct = len(api.customers) + len(okendo.UNKNOWN_EMAILS)
    assert len({r.body.lower() for r in lookups}) == distinct
    assert distinct <= len(lookups) <= distinct + len(api.faulted) + api.throttled
    # Each unknown address: skipped, counted, and named only masked.
    logs = "\n".join(output.logs())
    assert "n***@example.com (HTTP 404); skipped it" in logs
    assert f"{len(addresses)} configured e-mail addresses, 2 of them duplicates" in logs
    assert "2 with no Okendo customer (skipped)" in logs
    assert not [e for e in okendo.UNKNOWN_EMAILS if e in output.text]
    assert okendo.API_KEY not in output.text
    assert all(r.headers.get("okendo-api-version") == okendo.API_VERSION for r in api.requests)


def test_next_url_pages_resolve_under_enterprise_where_a_naive_join_finds_nothing(
        serve: Callable[[okendo.Api], Server]) -> None:
    api = okendo.Api(customers=16, page_cap=2)  # every list of more than 2 items is paged
    url = serve(api).url
    addresses = emails(api)
    output = read_all(url, streams=("customer_profiles", "customer_activities"),
                      customer_emails=addresses)
    assert_exactly(output, {k: v for k, v in expected(api, addresses).items()
                            if k in ("customer_profiles", "customer_activities")})
    followed = [r for r in api.requests if "lastEvaluated=" in r.raw_query]
    assert len(followed) > 20
    # Nothing outside the base path was asked for; the sandbox serves nothing there.
    assert all(r.path.startswith("/enterprise/") for r in api.requests)
    # What a plain URL join of base_url and nextUrl asks for: a 404 (which the connector
    # treats as "customer gone"), i.e. every later page silently lost.
    sample = followed[0]
    next_url = sample.path.removeprefix("/enterprise") + "?" + sample.raw_query
    naive = requests.get(urljoin(url + "/enterprise", next_url), timeout=10,
                         auth=(okendo.USER_ID, okendo.API_KEY),
                         headers={"okendo-api-version": okendo.API_VERSION})
    assert naive.status_code == 404
    # And the sandbox holds lastEvaluated to the bytes it sent: passed as a query parameter
    # again (so encoded twice), it is refused.
    cursor = sample.raw_query.split("lastEvaluated=")[1].split("&")[0]
    refused = requests.get(url + sample.path, params={"lastEvaluated": cursor, "limit": 100},
                           timeout=10, auth=(okendo.USER_ID, okendo.API_KEY),
                           headers={"okendo-api-version": okendo.API_VERSION})
    assert "%257B" in str(refused.url)
    assert refused.status_code == 400


def test_incremental_activities_second_sync_reads_only_what_is_new(
        url: str, api: okendo.Api) -> None:
    addresses = emails(api)
    first = read_all(url, incremental=True, streams=("customer_activities",),
                     customer_emails=addresses)
    assert_exactly(first, {"customer_activities": expected(api, addresses)["customer_activities"]})
    ids = api.ids_for(addresses)
    # The newest activity of each customer is the saved cursor: it may come again.
    boundary = [api.activities[c][0]["activityId"] for c in ids if api.activities[c]]
    added = api.add_activities(ids[::3])
    second = read_all(url, incremental=True, state=first.final_state(),
                      streams=("customer_activities",), customer_emails=addresses)
    got = second.keys("customer_activities", "activityId")
    assert set(added) <= set(got) <= set(added) | set(boundary)
    assert len(got) == len(set(got))


def test_address_added_between_syncs_gets_its_whole_history(url: str, api: okendo.Api) -> None:
    everyone = emails(api)
    ids = api.ids_for(everyone)
    newcomer = next(c for c in ids if len(api.activities[c]) > 1)
    before = [e for e in everyone if api.customer_id_of(e) != newcomer]
    first = read_all(url, incremental=True, streams=("customer_activities",),
                     customer_emails=before)
    second = read_all(url, incremental=True, state=first.final_state(),
                      streams=("customer_activities",), customer_emails=everyone)
    history = [a["activityId"] for a in api.activities[newcomer]]
    assert set(history) <= set(second.keys("customer_activities", "activityId"))


def test_first_incremental_sync_honours_start_date(url: str, api: okendo.Api) -> None:
    start = "2024-06-01T00:00:00Z"
    addresses = emails(api)
    output = read_all(url, incremental=True, streams=("customer_activities",),
                      customer_emails=addresses, start_date=start)
    wanted = [a["activityId"] for c in api.ids_for(addresses) for a in api.activities[c]
              if a["date"] >= start]
    assert_same_keys(output.keys("customer_activities", "activityId"), wanted)


# What each value the sandbox can send must become, written out by hand; types not listed
# (string, date, image) keep their value as sent.
TYPED = {
    ("boolean", "true"): True, ("boolean", "false"): False, ("boolean", "TRUE"): True,
    ("boolean", "yes"): "yes",
    ("number", "3"): 3, ("number", "12.5"): 12.5, ("number", "-1"): -1,
    ("number", "1e3"): 1000.0, ("number", "n/a"): "n/a",
    ("string-list", '["red","blue"]'): ["red", "blue"], ("string-list", '["grün"]'): ["grün"],
    ("string-list", "[]"): [], ("string-list", "red, blue"): "red, blue",
    ("date-components", '{"month":5,"day":17}'): {"month": 5, "day": 17},
    ("date-components", '{"year":1990,"month":1,"day":2}'): {"year": 1990, "month": 1, "day": 2},
    ("date-components", "17/05"): "17/05",
    ("location", '{"country":"Australia","zoneCode":"VIC","city":"Melbourne"}'):
        {"country": "Australia", "zoneCode": "VIC", "city": "Melbourne"},
    ("location", '{"country":"日本"}'): {"country": "日本"},
    ("location", "somewhere"): "somewhere",
}


def test_profiles_keep_values_as_sent_and_add_typed_values(
        serve: Callable[[okendo.Api], Server]) -> None:
    api = okendo.Api(customers=60)  # enough profiles that every seeded value turns up
    url = serve(api).url
    output = read_all(url, streams=("customer_profiles",), customer_emails=emails(api))
    served = {(c, p["namespace"]): p for c, profiles in api.profiles.items() for p in profiles}
    seen = set()
    for record in output.records("customer_profiles"):
        sent = served[(record["customerId"], record["namespace"])]["properties"]
        assert [{k: v for k, v in p.items() if k != "typedValue"}
                for p in record["properties"]] == sent
        for prop in record["properties"]:
            key = (prop["valueType"], prop["value"])
            assert prop["typedValue"] == TYPED.get(key, prop["value"]), key
            seen.add(key)
    assert set(TYPED) <= seen, f"never served: {sorted(set(TYPED) - seen)}"


@pytest.mark.slow
def test_sync_paces_itself_within_the_documented_rate_limit(
        serve: Callable[[okendo.Api], Server]) -> None:
    # About 2 requests a second with a small burst, as Okendo documents; a small store keeps
    # this to about ten seconds. Four workers would burst past it without the budget.
    api = okendo.Api(customers=5, rate_per_second=2, burst=4)
    url = serve(api).url
    addresses = emails(api)
    output = read_all(url, customer_emails=addresses, requests_per_second=2)
    # Every stream's requests (lookups, customers, reviews, loyalty) drew from one budget.
    assert {r.path.split("/")[2] for r in api.requests} == {
        "customer_lookup", "customers", "reviews", "loyalty"}
    assert api.throttled == 0
    assert_exactly(output, expected(api, addresses))


@pytest.mark.slow
def test_sync_of_a_few_hundred_customers_finishes(serve: Callable[[okendo.Api], Server]) -> None:
    api = okendo.Api(customers=300, rate_per_second=400, burst=40)
    url = serve(api).url
    addresses = emails(api)
    output = read_all(url, customer_emails=addresses)
    assert_exactly(output, expected(api, addresses))


# --- reviews and loyalty -------------------------------------------------------------------

def test_check_needs_no_address_and_sends_one_request(url: str, api: okendo.Api) -> None:
    config = {k: v for k, v in okendo.config(url).items() if k != "customer_emails"}
    output = run("check", config)
    assert output.connection_status["status"] == "SUCCEEDED"
    assert [r.path for r in api.requests] == ["/enterprise/reviews"]


def test_every_review_of_every_status_once_though_one_arrives_mid_read(
        serve: Callable[[okendo.Api], Server]) -> None:
    # Pages of 7, and a new approved review after the second approved page: with Okendo's
    # default `date desc` every later page would shift by one (a review read twice, the new
    # one never); oldest first, it is simply the last.
    api = okendo.Api(customers=4, reviews=90, page_cap=7)
    api.review_arrives_after = ("approved", 2)
    output = read_all(serve(api).url, streams=("reviews",))
    assert api.arrived
    assert_same_keys(output.keys("reviews", "reviewId"),
                     [r for s in okendo.REVIEW_STATUSES for r in api.reviews_of(s)])
    statuses = {r["reviewId"]: r["status"] for r in output.records("reviews")}
    assert {s: list(statuses.values()).count(s) for s in okendo.REVIEW_STATUSES} == {
        s: len(api.reviews_of(s)) for s in okendo.REVIEW_STATUSES}


def test_sandbox_shifts_date_desc_pages_when_a_review_arrives(
        serve: Callable[[okendo.Api], Server]) -> None:
    """The test above has teeth: read in Okendo's default order, the sandbox skips and repeats."""
    api = okendo.Api(customers=1, reviews=40, page_cap=7)
    api.review_arrives_after = ("approved", 1)
    url = serve(api).url + okendo.BASE_PATH
    auth = (okendo.USER_ID, okendo.API_KEY)
    headers = {"okendo-api-version": okendo.API_VERSION}
    seen: list[str] = []
    link: str | None = "/reviews?limit=7"
    while link:
        body = requests.get(url + link, auth=auth, headers=headers, timeout=10).json()
        seen += [r["reviewId"] for r in body["reviews"]]
        link = body.get("nextUrl")
    assert len(seen) != len(set(seen)) and api.arrived[0] not in seen


@pytest.mark.parametrize("query", ["limit=101", "limit=0", "orderBy=date%20sideways",
                                   "orderBy=rating", "status=spam"])
def test_sandbox_refuses_review_parameters_out_of_bounds(
        url: str, query: str) -> None:
    answer = requests.get(f"{url}{okendo.BASE_PATH}/reviews?{query}",
                          auth=(okendo.USER_ID, okendo.API_KEY),
                          headers={"okendo-api-version": okendo.API_VERSION}, timeout=10)
    assert answer.status_code == 400


def test_loyalty_streams_hold_each_address_standing_and_the_rules_exactly(
        url: str, api: okendo.Api) -> None:
    addresses = emails(api)
    output = read_all(url, customer_emails=addresses, streams=STREAMS[4:])
    assert_exactly(output, {k: v for k, v in expected(api, addresses).items()
                            if k in STREAMS[4:]})
    by_id = {r["loyaltyCustomerId"]: r for r in output.records("loyalty_customers")}
    for address, standing in api.loyalty_customers.items():
        if standing["loyaltyCustomerId"] in by_id:
            assert by_id[standing["loyaltyCustomerId"]] == {
                **standing, "email": by_id[standing["loyaltyCustomerId"]]["email"]}
            assert by_id[standing["loyaltyCustomerId"]]["email"].casefold() == address
    skipped = len({a.casefold() for a in addresses}) - len(by_id)
    assert skipped > 0
    assert len([line for line in output.logs()
                if "not an Okendo Loyalty customer (HTTP 404)" in line]) == skipped


@pytest.mark.parametrize(("store", "product"), [({"loyalty": False}, "Okendo Loyalty"),
                                              ({"reviews_product": False}, "Okendo Reviews")])
def test_store_without_a_product_syncs_everything_else_with_one_warning(
        serve: Callable[[okendo.Api], Server], store: dict[str, bool], product: str) -> None:
    api = okendo.Api(customers=6, **store)
    addresses = emails(api)
    output = read_all(serve(api).url, customer_emails=addresses)
    assert output.returncode == 0 and not output.errors
    wanted = expected(api, addresses)
    assert [s for s in STREAMS if not wanted[s]] == (
        ["reviews"] if product == "Okendo Reviews" else list(STREAMS[4:]))
    assert_exactly(output, wanted)
    assert len([line for line in output.logs("WARN") if f"no access to {product}" in line]) == 1
    # One refused request tells the store has no loyalty; no address is asked for.
    assert bool(api.loyalty) == any(r.path.endswith("/loyalty/customers") for r in api.requests)
