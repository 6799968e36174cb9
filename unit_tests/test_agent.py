"""customers-mcp's lookups and changes, one test per behaviour, HTTP mocked. The tools over
the real protocol and real HTTP are integration_tests/test_agent*.py's."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
import requests_mock as rm

from source_customers import components
from source_customers.agent import changes
from source_customers.agent.tools import ToolProblem, Tools
from source_customers.agent.vendor import Vendor

sys.modules.setdefault("source_declarative_manifest.components", components)

MALOMO = {"vendor": "malomo", "api_key": "sk_test_0123456789", "base_url": "https://malomo.test"}
LOKE = {"vendor": "loke", "organization_id": "org1", "base_url": "https://loke.test",
        "credentials": {"auth_type": "access_token", "access_token": "tok-0123456789"}}
OKENDO = {"vendor": "okendo", "user_id": "u1", "api_key": "k" * 32,
          "base_url": "https://okendo.test/enterprise", "requests_per_second": 100}
CAPILLARY = {"vendor": "capillary", "base_url": "https://capillary.test",
             "credentials": {"auth_type": "basic", "username": "till", "password": "pw"}}
JANE = {"id": "c1", "email": "Jane@Example.com", "first_name": "Jane", "phone_number": "555-1"}


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen, their waits do not."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def test_a_loke_next_page_link_to_another_host_is_refused(requests_mock: rm.Mocker) -> None:
    base = "https://loke.test/organizations/org1/customers"
    requests_mock.get(base, json=[{"id": "a", "email": "j@example.com"}],
                      headers={"X-Next-Page": "https://elsewhere.test/steal?after=x"})
    answer = Vendor("loke", LOKE).find("email", "j@example.com")
    assert answer.status == "failed"
    assert "next-page link to another host; not followed" in answer.message
    assert [r.hostname for r in requests_mock.request_history] == ["loke.test"]


def test_a_loke_next_page_path_is_followed_as_sent(requests_mock: rm.Mocker) -> None:
    base = "https://loke.test/organizations/org1/customers"
    requests_mock.get(base, [
        {"json": [{"id": "a"}], "headers": {"X-Next-Page": "/organizations/org1/customers"
                                                           "?email=j%40example.com&after=b"}},
        {"json": [{"id": "b"}]}])
    answer = Vendor("loke", LOKE).find("email", "j@example.com")
    assert [c["id"] for c in answer.records] == ["a", "b"]
    assert requests_mock.request_history[1].qs["after"] == ["b"]


def test_a_body_not_of_the_documented_shape_is_asked_again_then_named(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://loke.test/organizations/org1/customers/c1",
                      json={"message": "Service temporarily unavailable"})
    answer = Vendor("loke", LOKE).get("c1")
    assert answer.status == "failed"
    assert "not the documented shape: expected a JSON object with 'id'" in answer.message
    assert requests_mock.call_count == 3


def test_okendo_finds_by_address_in_two_steps_shaped_as_the_source(
        requests_mock: rm.Mocker) -> None:
    requests_mock.post("https://okendo.test/enterprise/customer_lookup",
                       json={"customerId": "c9"})
    requests_mock.get("https://okendo.test/enterprise/customers/c9",
                      json={"email": "j@example.com", "givenName": "J"})
    answer = Vendor("okendo", OKENDO).find("email", "j@example.com")
    assert answer.records == [{"email": "j@example.com", "givenName": "J", "customerId": "c9"}]
    assert requests_mock.request_history[0].json() == {"email": "j@example.com"}
    assert requests_mock.request_history[1].headers["okendo-api-version"] == "2025-02-01"


def test_okendo_404_to_the_lookup_is_not_found(requests_mock: rm.Mocker) -> None:
    requests_mock.post("https://okendo.test/enterprise/customer_lookup", status_code=404,
                       json={"error": {"description": "No customer was found"}})
    assert Vendor("okendo", OKENDO).find("email", "x@example.com").status == "not_found"


def test_refused_credentials_are_the_source_manifests_words(requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://malomo.test/customers", status_code=401,
                      json={"code": "unauthorized", "message": "Invalid API key",
                            "request_id": "req_1"})
    answer = Vendor("malomo", MALOMO).find("email", "j@example.com")
    assert answer.message == ("Malomo rejected the API key (HTTP 401: Invalid API key). Check "
                              "api_key: it must be a secret key (sk_...) from Malomo. Malomo "
                              "request_id: req_1")


def test_capillary_phone_is_its_mobile_identifier_in_digits(requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://capillary.test/v2/customers/lookup/customerDetails",
                      json={"id": 7, "warnings": [], "profiles": []})
    answer = Vendor("capillary", CAPILLARY).find("phone", "+61 412-345-678")
    assert answer.records == [{"id": 7, "profiles": [], "identifierName": "mobile",
                               "identifierValue": "61412345678"}]
    query = requests_mock.request_history[0].qs
    assert query["identifiervalue"] == ["61412345678"]
    assert query["embed"] == ["mlp"]


def test_a_key_the_vendor_cannot_look_up_by_sends_nothing(requests_mock: rm.Mocker) -> None:
    answer = Vendor("malomo", MALOMO).find("phone", "555-1")
    assert answer.status == "cannot_look_up"
    assert answer.message == "Malomo cannot look a customer up by phone; it can by: email."
    assert requests_mock.call_count == 0


def test_malomo_is_listed_once_for_many_lookups(requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://malomo.test/customers", [{"json": [JANE]}, {"json": []}])
    vendor = Vendor("malomo", MALOMO)
    assert vendor.find("email", "jane@example.com").records == [JANE]
    assert vendor.find("email", "JANE@EXAMPLE.COM").records == [JANE]
    assert vendor.find("email", "other@example.com").status == "not_found"
    assert requests_mock.call_count == 2  # one listing: a page, then the empty last one


def test_a_diff_names_only_what_changes() -> None:
    vendor = Vendor("malomo", MALOMO)
    assert changes.diff(vendor, JANE, {"email": "jane@example.com", "first_name": "Jane",
                                       "phone_number": "555-2"}) == [
        {"field": "phone_number", "from": "555-1", "to": "555-2"}]
    capillary = Vendor("capillary", CAPILLARY)
    current: dict[str, Any] = {"profiles": [{"firstName": "J"}],
                               "extendedFields": {"gender": "F", "city": "X"}}
    assert changes.diff(capillary, current, {"firstName": "J", "extendedFields": {"city": "Y"}}
                        ) == [{"field": "extendedFields", "from": {"city": "X"},
                               "to": {"city": "Y"}}]


@pytest.mark.parametrize(("match", "fields", "says"), [
    ({"email": "a@b.co", "id": "x"}, {"first_name": "J"}, "match must hold exactly one key"),
    ({"email": ""}, {"first_name": "J"}, "match.email must be a non-empty string."),
    ({"email": "a@b.co"}, {"first_name": None}, "changes.first_name is null"),
    ({"email": "a@b.co"}, {"first_name": 7}, "changes.first_name must be a string."),
    ({"email": "a@b.co"}, {"email": "c@d.co"}, "no writable field 'email'"),
])
def test_changes_the_destination_would_not_take_say_what_to_fix(
        match: dict[str, Any], fields: dict[str, Any], says: str) -> None:
    with pytest.raises(changes.BadChanges, match=says):
        changes.check(Vendor("malomo", MALOMO), match, fields)


def test_a_read_only_server_previews_and_sends_no_write(requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://malomo.test/customers", [{"json": [JANE]}, {"json": []}])
    requests_mock.get("https://malomo.test/customers/c1", json=JANE)
    tools = Tools({"malomo": Vendor("malomo", MALOMO)}, allow_writes=False, deadline=10)
    result = tools.update_customer("malomo", {"email": "jane@example.com"},
                                   {"phone_number": "555-2"}, apply=True)
    assert (result["outcome"], result["applied"]) == ("preview", False)
    assert {r.method for r in requests_mock.request_history} == {"GET"}


def test_unknown_vendor_is_a_problem_naming_the_configured_ones() -> None:
    tools = Tools({"malomo": Vendor("malomo", MALOMO)}, allow_writes=False, deadline=10)
    with pytest.raises(ToolProblem, match="it has: malomo"):
        tools.get_customer("okendo", "c1")
