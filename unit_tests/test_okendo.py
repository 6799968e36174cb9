"""Okendo: one test per documented behaviour (docs/okendo.md)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urljoin

import pytest
from airbyte_cdk.models import Status, SyncMode

from conftest import check, ids, read, source, transcript
from source_customers.components.okendo import okendo_typed_value
from source_customers.masking import mask
from source_customers.vendors import config_problem

BASE = "https://api.okendo.io/enterprise"
LOOKUP = f"{BASE}/customer_lookup"
REVIEWS = f"{BASE}/reviews"
LOYALTY = f"{BASE}/loyalty"
FORBIDDEN = {"error": {"description": "This store does not have this product."}}
USER = "okendo-user-1"
KEY = "okendo-api-key-0123456789abcdef01"
ZOE, MATEO, GHOST = "zoe.muller@example.com", "mateo.garcia@example.com", "nobody@example.com"
DIRECTORY = {ZOE: "c-zoe", MATEO: "c-mateo"}


def config(*emails: str, **extra: Any) -> dict[str, Any]:
    # The 2 requests/s budget would make these tests wait in real time; the integration
    # tests hold the connector to Okendo's real limit.
    return {"vendor": "okendo", "user_id": USER, "api_key": KEY,
            "customer_emails": list(emails or (ZOE,)), "requests_per_second": 100, **extra}


def lookup(directory: dict[str, str] = DIRECTORY) -> dict[str, Any]:
    """Okendo's lookup: the customer ID for a known address, 404 otherwise."""
    def respond(request: Any, context: Any) -> dict[str, Any]:
        found = directory.get(request.json()["email"].lower())
        if found is None:
            context.status_code = 404
            return {"error": {"description": "No customer was found with that email address."}}
        return {"customerId": found}
    return {"json": respond}


def customer(cid: str) -> dict[str, Any]:
    # Okendo's customer object has no ID of its own: the connector adds it.
    return {"email": f"{cid}@example.com", "givenName": "Zoë", "familyName": "Müller",
            "dateFirstActive": "2022-01-18T02:21:20.380Z", "location": {"country": "Australia"}}


def serve_customers(requests_mock: Any, directory: dict[str, str] = DIRECTORY) -> None:
    requests_mock.post(LOOKUP, **lookup(directory))
    for cid in set(directory.values()):
        requests_mock.get(f"{BASE}/customers/{cid}", json=customer(cid))


def lookups(requests_mock: Any) -> list[str]:
    return [r.json()["email"] for r in requests_mock.request_history if r.url == LOOKUP]


def logs(output: Any, *levels: str) -> list[str]:
    return [m.log.message for m in output.logs if not levels or m.log.level.value in levels]


def activity(n: int, date: str) -> dict[str, Any]:
    return {"activityId": f"a{n}", "namespace": "reviews", "date": date, "title": "Left a review"}


def test_every_request_sends_basic_auth_and_the_api_version(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    requests_mock.get(f"{BASE}/customers/c-zoe/profiles", json={"profiles": []})
    requests_mock.get(f"{BASE}/customers/c-zoe/activities", json={"activities": []})
    read(config(), "customers", "customer_profiles", "customer_activities")
    basic = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    sent = requests_mock.request_history
    assert {r.url.split("?")[0].rsplit("/", 1)[-1] for r in sent} >= {
        "customer_lookup", "c-zoe", "profiles", "activities"}
    assert all(r.headers["Authorization"] == basic for r in sent)
    assert all(r.headers["okendo-api-version"] == "2025-02-01" for r in sent)


def test_customer_is_looked_up_by_email_then_read_and_carries_id_and_email(
        requests_mock: Any) -> None:
    serve_customers(requests_mock)
    output = read(config(ZOE), "customers")
    (record,) = [m.record.data for m in output.records]
    assert requests_mock.request_history[0].json() == {"email": ZOE}
    # The looked-up address arrives intact, although it is redacted from every log line.
    assert record == {**customer("c-zoe"), "customerId": "c-zoe", "email": ZOE}


def test_unknown_address_is_skipped_and_counted_in_the_log_masked(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    output = read(config(ZOE, GHOST, MATEO), "customers")
    assert sorted(ids(output, "customers", "customerId")) == ["c-mateo", "c-zoe"]
    assert not output.errors
    lines = logs(output)
    assert any("no customer with the e-mail address n***@example.com" in line for line in lines)
    assert any("3 configured e-mail addresses" in line and "1 with no Okendo customer" in line
               for line in lines)
    assert GHOST not in transcript(output)


def test_duplicate_addresses_are_looked_up_once_whatever_their_case(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    output = read(config(ZOE, ZOE.upper(), MATEO, ZOE), "customers")
    assert lookups(requests_mock) == [ZOE, MATEO]
    assert sorted(ids(output, "customers", "customerId")) == ["c-mateo", "c-zoe"]
    assert any("2 of them duplicates" in line for line in logs(output))


def test_two_addresses_of_one_customer_read_it_once(requests_mock: Any) -> None:
    serve_customers(requests_mock, {ZOE: "c-zoe", "zoe.alias@example.com": "c-zoe"})
    output = read(config(ZOE, "zoe.alias@example.com"), "customers")
    assert ids(output, "customers", "customerId") == ["c-zoe"]


@pytest.mark.parametrize("entry", ["not-an-email", "zoe@", "@example.com", "zoe muller@example.com",
                                   "zoe@example", "zoe@@example.com"])
def test_entry_that_is_not_an_email_fails_check_naming_it(tmp_path: Any, entry: str) -> None:
    output = check(config(ZOE, entry), tmp_path)
    status = output.connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert repr(entry) in status.message


def test_next_url_resolves_under_enterprise_with_last_evaluated_as_sent(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    link = ("/customers/c-zoe/profiles"
            "?lastEvaluated=%7B%22sortKey%22%3A%22profile%23quiz%22%7D&limit=100")
    naive = requests_mock.get(urljoin(BASE, link), json={"profiles": []})
    requests_mock.get(f"{BASE}/customers/c-zoe/profiles", [
        {"json": {"profiles": [{"namespace": "okendo", "properties": []}], "nextUrl": link}},
        {"json": {"profiles": [{"namespace": "quiz", "properties": []}]}},
    ])
    output = read(config(), "customer_profiles")
    assert ids(output, "customer_profiles", "customerId", "namespace") == [
        ("c-zoe", "okendo"), ("c-zoe", "quiz")]
    pages = [r.url for r in requests_mock.request_history if "/profiles" in r.url]
    assert pages == [f"{BASE}/customers/c-zoe/profiles?limit=100", BASE + link]
    # A plain URL join drops /enterprise: that request would have found nothing.
    assert urljoin(BASE, link).startswith("https://api.okendo.io/customers/")
    assert not naive.called


def test_limit_100_is_asked_once_and_the_next_url_is_followed_verbatim(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    link = "/customers/c-zoe/activities?lastEvaluated=%7B%22n%22%3A1%7D&limit=25"
    requests_mock.get(f"{BASE}/customers/c-zoe/activities", [
        {"json": {"activities": [activity(1, "2024-01-01T00:00:00.000Z")], "nextUrl": link}},
        {"json": {"activities": [activity(2, "2024-01-02T00:00:00.000Z")]}},
    ])
    output = read(config(), "customer_activities")
    assert ids(output, "customer_activities", "activityId") == ["a1", "a2"]
    pages = [r.url for r in requests_mock.request_history if "/activities" in r.url]
    assert pages == [f"{BASE}/customers/c-zoe/activities?limit=100", BASE + link]


def test_profile_properties_keep_value_and_gain_typed_value(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    properties = [
        {"name": "acceptsMarketing", "value": "true", "valueType": "boolean"},
        {"name": "reviewCount", "value": "12.5", "valueType": "number"},
        {"name": "colours", "value": '["red","grün"]', "valueType": "string-list"},
        {"name": "home", "value": '{"country":"Australia","zoneCode":"VIC"}',
         "valueType": "location"},
        {"name": "birthday", "value": '{"month":5,"day":17}', "valueType": "date-components"},
        {"name": "lastOrder", "value": "2022-01-18T02:21:20.380Z", "valueType": "date"},
        {"name": "age", "value": "about thirty", "valueType": "number"},
    ]
    requests_mock.get(f"{BASE}/customers/c-zoe/profiles",
                      json={"profiles": [{"namespace": "quiz", "properties": properties}]})
    (record,) = [m.record.data for m in read(config(), "customer_profiles").records]
    assert record["customerId"] == "c-zoe"
    assert [p["value"] for p in record["properties"]] == [p["value"] for p in properties]
    assert [p["typedValue"] for p in record["properties"]] == [
        True, 12.5, ["red", "grün"], {"country": "Australia", "zoneCode": "VIC"},
        {"month": 5, "day": 17}, "2022-01-18T02:21:20.380Z", "about thirty"]


@pytest.mark.parametrize(("value_type", "value", "typed"), [
    ("boolean", "FALSE", False),
    ("boolean", "yes", "yes"),
    ("number", "42", 42),
    ("number", "-1e3", -1000.0),
    ("number", "NaN", "NaN"),
    ("number", "1e999", "1e999"),
    ("number", "true", "true"),
    ("number", "", ""),
    ("string-list", "red, blue", "red, blue"),
    ("string-list", '{"a": 1}', '{"a": 1}'),
    ("location", "[1, 2]", "[1, 2]"),
    ("date-components", "17/05", "17/05"),
    ("string", "42", "42"),
    ("image", "https://cdn.okendo.io/a.png", "https://cdn.okendo.io/a.png"),
    ("a-type-added-later", "x", "x"),
    ("number", None, None),
    ("boolean", True, True),
])
def test_unparseable_values_stay_as_sent_never_an_error(
        value_type: str, value: Any, typed: Any) -> None:
    assert okendo_typed_value(value, value_type) == typed


def test_masked_address_keeps_first_letter_and_domain() -> None:
    assert mask("zoe.muller@example.com") == "z***@example.com"
    assert mask("no-at-sign") == "no***"
    assert mask("7") == "***"


def test_activities_read_incrementally_keep_only_the_new(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    url = f"{BASE}/customers/c-zoe/activities"
    old = [activity(2, "2024-02-01T10:00:00.250Z"), activity(1, "2024-01-01T10:00:00.000Z")]
    requests_mock.get(url, json={"activities": old})
    first = read(config(), "customer_activities", sync_mode=SyncMode.incremental)
    assert sorted(ids(first, "customer_activities", "activityId")) == ["a1", "a2"]
    state = first.most_recent_state.stream_state.__dict__
    assert "2024-02-01T10:00:00.250" in json.dumps(state)
    assert ZOE not in json.dumps(state)  # the partition holds the customer ID, not the address

    requests_mock.get(url, json={"activities": [activity(3, "2024-03-01T00:00:00.000Z"), *old]})
    second = read(config(), "customer_activities", sync_mode=SyncMode.incremental,
                  state={"customer_activities": state})
    # The newest activity already read may come again (same date): at least once, never older.
    assert set(ids(second, "customer_activities", "activityId")) - {"a2"} == {"a3"}


def test_address_added_since_the_last_sync_gets_its_whole_history(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    requests_mock.get(f"{BASE}/customers/c-zoe/activities",
                      json={"activities": [activity(1, "2024-06-01T00:00:00.000Z")]})
    requests_mock.get(f"{BASE}/customers/c-mateo/activities",
                      json={"activities": [activity(9, "2023-05-01T00:00:00.000Z")]})
    first = read(config(ZOE), "customer_activities", sync_mode=SyncMode.incremental)
    state = first.most_recent_state.stream_state.__dict__
    second = read(config(ZOE, MATEO), "customer_activities", sync_mode=SyncMode.incremental,
                  state={"customer_activities": state})
    # Mateo's activity is older than Zoë's cursor, but Mateo was never read before.
    assert "a9" in ids(second, "customer_activities", "activityId")


def test_first_incremental_sync_honours_start_date(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    requests_mock.get(f"{BASE}/customers/c-zoe/activities", json={"activities": [
        activity(2, "2024-06-02T00:00:00.000Z"), activity(1, "2023-12-31T23:59:59.999Z")]})
    output = read(config(start_date="2024-01-01T00:00:00Z"), "customer_activities",
                  sync_mode=SyncMode.incremental)
    assert ids(output, "customer_activities", "activityId") == ["a2"]


def test_429_is_retried_honouring_retry_after(requests_mock: Any,
                                              _no_backoff_sleep: list[float]) -> None:
    requests_mock.post(LOOKUP, [{"status_code": 429, "headers": {"Retry-After": "3"}},
                                {"json": {"customerId": "c-zoe"}}])
    requests_mock.get(f"{BASE}/customers/c-zoe", [
        {"status_code": 429, "headers": {"Retry-After": "1"}}, {"json": customer("c-zoe")}])
    assert ids(read(config(), "customers"), "customers", "customerId") == ["c-zoe"]
    # The CDK waits the header's seconds plus one. (The API budget, told by the 429 that the
    # window is spent, also waits up to its one-second window: those waits are shorter.)
    assert [w for w in _no_backoff_sleep if w >= 2] == [4, 2]


def test_wrong_credentials_fail_check_without_key(requests_mock: Any, tmp_path: Any) -> None:
    requests_mock.get(REVIEWS, status_code=401)
    output = check(config(), tmp_path)
    status = output.connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert "rejected the credentials" in status.message
    assert KEY not in transcript(output)


def test_lookup_refused_as_invalid_fails_with_okendo_reason(requests_mock: Any) -> None:
    requests_mock.post(LOOKUP, status_code=400,
                       json={"error": {"description": "email must be a valid email address"}})
    output = read(config(), "customers")
    assert "email must be a valid email address" in output.get_formatted_error_message()


def test_customer_removed_since_lookup_is_skipped_in_every_stream(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    gone = {"status_code": 404, "json": {"error": {"description": "Customer not found."}}}
    for path in ("c-mateo", "c-mateo/profiles", "c-mateo/activities"):
        requests_mock.get(f"{BASE}/customers/{path}", **gone)
    requests_mock.get(f"{BASE}/customers/c-zoe/profiles",
                      json={"profiles": [{"namespace": "quiz", "properties": []}]})
    requests_mock.get(f"{BASE}/customers/c-zoe/activities",
                      json={"activities": [activity(1, "2024-01-01T00:00:00.000Z")]})
    output = read(config(ZOE, MATEO), "customers", "customer_profiles", "customer_activities")
    assert not output.errors
    assert ids(output, "customers", "customerId") == ["c-zoe"]
    assert ids(output, "customer_profiles", "customerId", "namespace") == [("c-zoe", "quiz")]
    assert ids(output, "customer_activities", "activityId") == ["a1"]


def test_streams_keys_and_cursor_as_the_contract_says() -> None:
    catalog = source(config()).discover(None, config())  # type: ignore[arg-type]
    streams = {s.name: s for s in catalog.streams}
    assert streams["customers"].source_defined_primary_key == [["customerId"]]
    assert streams["customer_profiles"].source_defined_primary_key == [
        ["customerId"], ["namespace"]]
    assert streams["customer_activities"].source_defined_primary_key == [["activityId"]]
    assert streams["customer_activities"].default_cursor_field == ["date"]
    assert SyncMode.incremental not in streams["customers"].supported_sync_modes
    assert streams["reviews"].source_defined_primary_key == [["reviewId"]]
    assert streams["loyalty_customers"].source_defined_primary_key == [["loyaltyCustomerId"]]
    assert streams["loyalty_earning_rules"].source_defined_primary_key == [["type"]]
    assert streams["loyalty_redemption_rules"].source_defined_primary_key == [
        ["redemptionRuleId"]]
    for name in ("reviews", "loyalty_customers", "loyalty_earning_rules",
                 "loyalty_redemption_rules"):
        assert streams[name].supported_sync_modes == [SyncMode.full_refresh]


def test_lookups_run_in_parallel_in_order_and_stop_once_abandoned() -> None:
    import threading

    from source_customers.components.okendo import _in_parallel

    seen: list[tuple[str, bool]] = []
    later = threading.Event()

    def look_up(address: str) -> str:
        seen.append((address, threading.current_thread().daemon))
        if address == "bad":
            raise ValueError(address)
        if address != "a":
            later.wait(5)
        return address.upper()

    later.set()
    assert list(_in_parallel(look_up, ["a", "b", "c"], 2)) == ["A", "B", "C"]
    # Two workers run two lookups at once: each waits for the other to have started.
    both = threading.Barrier(2, timeout=5)
    assert list(_in_parallel(lambda a: (both.wait(), a)[1], ["p", "q"], 2)) == ["p", "q"]
    found = _in_parallel(look_up, ["a", "bad", "c"], 2)
    assert next(found) == "A"
    with pytest.raises(ValueError):
        next(found)
    # A failed sync abandons the rest: nothing new starts, and no thread holds the exit.
    later.clear()
    seen.clear()
    found = _in_parallel(look_up, ["a"] + [f"x{n}" for n in range(50)], 3)
    assert next(found) == "A"
    found.close()
    later.set()
    threading.Event().wait(0.3)  # for the workers to finish what they had started
    assert len(seen) <= 4 and all(daemon for _, daemon in seen)


def ghosts(n: int) -> list[str]:
    return [f"ghost{i}@example.com" for i in range(n)]


def test_check_reads_one_review_and_needs_no_address(requests_mock: Any,
                                                    tmp_path: Any) -> None:
    requests_mock.get(REVIEWS, json={"reviews": [review("r1")], "nextUrl": "/reviews?x=1"})
    config_without_addresses = {k: v for k, v in config().items() if k != "customer_emails"}
    output = check(config_without_addresses, tmp_path)
    assert output.connection_status_messages[0].connectionStatus.status == Status.SUCCEEDED
    (request,) = requests_mock.request_history
    assert request.qs == {"limit": ["1"], "orderby": ["date asc"], "status": ["approved"]}


def test_check_gives_up_after_two_retries_where_a_sync_would_try_ten(
        requests_mock: Any, tmp_path: Any) -> None:
    requests_mock.get(REVIEWS, status_code=503, json={"error": {"description": "down"}})
    output = check(config(), tmp_path)
    assert output.connection_status_messages[0].connectionStatus.status == Status.FAILED
    assert len(requests_mock.request_history) == 3


def test_check_of_an_account_without_reviews_passes_with_a_warning(requests_mock: Any,
                                                                   tmp_path: Any) -> None:
    requests_mock.get(REVIEWS, status_code=403, json=FORBIDDEN)
    output = check(config(), tmp_path)
    assert output.connection_status_messages[0].connectionStatus.status == Status.SUCCEEDED
    assert any("no access to Okendo Reviews" in line for line in logs(output, "WARN"))


def test_connection_check_flag_is_the_checks_alone(tmp_path: Any) -> None:
    output = check(config(ZOE, connection_check=True), tmp_path)
    assert output.connection_status_messages[0].connectionStatus.status == Status.FAILED


@pytest.mark.parametrize(("field", "entry", "shown"), [
    ("customer_emails", "zoe muller@example.com", "'z***@example.com'"),
    ("customer_emails", "zoë at example", "'zo***'"),
])
def test_config_error_quotes_a_personal_value_masked(field: str, entry: str, shown: str) -> None:
    problem = config_problem("okendo", {**config(ZOE), field: [ZOE, entry]})
    assert problem == f"Config field '{field}[1]' must be an e-mail address (got {shown})."


def test_config_error_quotes_an_identifier_masked() -> None:
    capillary_config = {"vendor": "capillary", "base_url": "https://eu.api.capillarytech.com",
                        "credentials": {"auth_type": "basic", "username": "u", "password": "p"},
                        "identifier_name": "mobile", "identifiers": ["919845012345", " 9198450"]}
    problem = config_problem("capillary", capillary_config) or ""
    assert "'identifiers[1]'" in problem and "(got ' 9***')" in problem
    assert "9198450" not in problem


def test_lookup_facts_are_logged_once_per_sync(requests_mock: Any) -> None:
    serve_customers(requests_mock)
    for kind in ("profiles", "activities"):
        requests_mock.get(f"{BASE}/customers/c-zoe/{kind}", json={kind: []})
    output = read(config(ZOE, GHOST), "customers", "customer_profiles", "customer_activities")
    lines = logs(output)
    assert len([line for line in lines if "n***@example.com" in line]) == 1
    assert len([line for line in lines if "Okendo customer lookup:" in line]) == 1


# --- reviews and loyalty ------------------------------------------------------------------

def review(rid: str, status: str = "approved") -> dict[str, Any]:
    return {"reviewId": rid, "status": status, "rating": 5,
            "dateCreated": "2025-06-26T13:24:34.170Z",
            "reviewer": {"displayName": "Tim C.", "location": {"country": {"code": "au"}}}}


def serve_reviews(requests_mock: Any, pages: dict[str, list[list[str]]]) -> None:
    """Each status's pages of review IDs, linked by nextUrl relative to /enterprise."""
    def respond(request: Any, context: Any) -> dict[str, Any]:
        status = request.qs.get("status", ["approved"])[0]
        page = int(request.qs.get("lastevaluated", ["0"])[0])
        chunks = pages.get(status, [[]])
        body: dict[str, Any] = {"reviews": [review(r, status) for r in chunks[page]]}
        if page + 1 < len(chunks):
            body["nextUrl"] = f"/reviews?lastEvaluated={page + 1}&limit=100&status={status}"
        return body
    requests_mock.get(REVIEWS, json=respond)


def review_requests(requests_mock: Any) -> list[str]:
    return [r.url.removeprefix(BASE) for r in requests_mock.request_history
            if r.path.endswith("/reviews")]


def test_every_status_is_read_oldest_first_because_okendo_returns_approved_only_by_default(
        requests_mock: Any) -> None:
    serve_reviews(requests_mock, {"approved": [["a1", "a2"], ["a3"]], "pending": [["p1"]],
                                  "rejected": [["x1"]]})
    output = read(config(), "reviews")
    assert sorted(ids(output, "reviews", "reviewId")) == ["a1", "a2", "a3", "p1", "x1"]
    for url in review_requests(requests_mock):
        query = dict(q.split("=") for q in url.partition("?")[2].split("&"))
        assert query["orderBy"] == "date+asc" and query["status"] in (
            "approved", "pending", "rejected")
    assert len(review_requests(requests_mock)) == 4


def test_review_next_url_resolves_under_enterprise_and_keeps_its_query_without_repeats(
        requests_mock: Any) -> None:
    serve_reviews(requests_mock, {"pending": [["p1"], ["p2"]]})
    read(config(review_statuses=["pending"]), "reviews")
    first, second = review_requests(requests_mock)
    assert first == "/reviews?limit=100&orderBy=date+asc&status=pending"
    # As sent, with the manifest's orderBy added once, the status it already has not again.
    assert second == "/reviews?lastEvaluated=1&limit=100&status=pending&orderBy=date+asc"


def test_review_statuses_choose_the_passes(requests_mock: Any) -> None:
    serve_reviews(requests_mock, {"approved": [["a1"]], "rejected": [["x1"]]})
    output = read(config(review_statuses=["rejected"]), "reviews")
    assert ids(output, "reviews", "reviewId") == ["x1"]
    assert len(review_requests(requests_mock)) == 1


@pytest.mark.parametrize(("statuses", "problem"), [
    (["approved", "spam"], "review_statuses[1]"),
    ([], "review_statuses"),
    (["pending", "pending"], "review_statuses"),
])
def test_review_statuses_outside_the_documented_three_fail_naming_the_field(
        statuses: list[str], problem: str) -> None:
    found = config_problem("okendo", config(review_statuses=statuses)) or ""
    assert f"'{problem}'" in found


def test_loyalty_customers_are_read_by_address_once_each_and_carry_it(requests_mock: Any) -> None:
    requests_mock.get(f"{LOYALTY}/earning_rules", json={"rules": []})
    requests_mock.get(f"{LOYALTY}/customers", json=lambda request, context: {"loyaltyCustomer": {
        "loyaltyCustomerId": "l-" + request.qs["email"][0].split("@")[0],
        "status": "enrolled", "points": {"balance": 120}}})
    output = read(config(ZOE, MATEO, ZOE.upper()), "loyalty_customers")
    records = [m.record.data for m in output.records]
    assert {(r["loyaltyCustomerId"], r["email"]) for r in records} == {
        ("l-zoe.muller", ZOE), ("l-mateo.garcia", MATEO)}
    asked = [r.qs["email"][0] for r in requests_mock.request_history
             if r.path.endswith("/customers")]
    assert sorted(asked) == sorted([ZOE, MATEO])


def test_address_that_is_not_a_loyalty_customer_is_skipped_and_logged(requests_mock: Any) -> None:
    requests_mock.get(f"{LOYALTY}/earning_rules", json={"rules": []})
    requests_mock.get(f"{LOYALTY}/customers?email={ZOE}", status_code=404,
                      json={"error": {"description": "No loyalty customer was found."}})
    requests_mock.get(f"{LOYALTY}/customers?email={MATEO}",
                      json={"loyaltyCustomer": {"loyaltyCustomerId": "l-1", "status": "pending"}})
    output = read(config(ZOE, MATEO), "loyalty_customers")
    assert not output.errors
    assert ids(output, "loyalty_customers", "loyaltyCustomerId") == ["l-1"]
    assert len([line for line in logs(output) if "not an Okendo Loyalty customer" in line]) == 1


def test_store_without_loyalty_warns_once_asks_no_address_and_the_sync_succeeds(
        requests_mock: Any) -> None:
    for path in ("customers", "earning_rules", "redemption_rules"):
        requests_mock.get(f"{LOYALTY}/{path}", status_code=403, json=FORBIDDEN)
    serve_reviews(requests_mock, {"approved": [["a1"]]})
    output = read(config(ZOE, MATEO), "reviews", "loyalty_customers", "loyalty_earning_rules",
                  "loyalty_redemption_rules")
    assert not output.errors
    assert ids(output, "reviews", "reviewId") == ["a1"]
    assert [m.record.stream for m in output.records] == ["reviews"]
    warnings = [line for line in logs(output, "WARN") if "Okendo Loyalty" in line]
    assert len(warnings) == 1 and "HTTP 403" in warnings[0]
    assert not [r for r in requests_mock.request_history if r.path.endswith("/loyalty/customers")]


def test_loyalty_rules_are_the_rules_of_each_answer(requests_mock: Any) -> None:
    requests_mock.get(f"{LOYALTY}/earning_rules", json={"rules": [
        {"type": "fixed-amount", "amount": 100}, {"type": "submit-review", "amountForReview": 50}]})
    requests_mock.get(f"{LOYALTY}/redemption_rules", json={"rules": [
        {"redemptionRuleId": "rr-1", "type": "free-shipping", "reward": {"points": 500}}]})
    output = read(config(), "loyalty_earning_rules", "loyalty_redemption_rules")
    assert ids(output, "loyalty_earning_rules", "type") == ["fixed-amount", "submit-review"]
    assert ids(output, "loyalty_redemption_rules", "redemptionRuleId") == ["rr-1"]


def test_rule_without_its_key_fails_the_sync_naming_it(requests_mock: Any) -> None:
    requests_mock.get(f"{LOYALTY}/earning_rules", json={"rules": [{"amount": 100}]})
    output = read(config(), "loyalty_earning_rules")
    assert "without its primary key 'type'" in output.get_formatted_error_message()


def test_without_customer_emails_per_customer_streams_are_empty_said_once(
        requests_mock: Any) -> None:
    serve_reviews(requests_mock, {"approved": [["a1"]]})
    requests_mock.get(f"{LOYALTY}/earning_rules", json={"rules": [{"type": "points-per"}]})
    without = {k: v for k, v in config().items() if k != "customer_emails"}
    output = read(without, "customers", "customer_profiles", "customer_activities",
                  "loyalty_customers", "reviews", "loyalty_earning_rules")
    assert not output.errors
    assert sorted(m.record.stream for m in output.records) == ["loyalty_earning_rules", "reviews"]
    assert len([line for line in logs(output) if "no customer_emails configured" in line]) == 1
    assert config_problem("okendo", without) is None
