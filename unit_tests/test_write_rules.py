"""destination-customers, HTTP mocked: a check that proves only the credentials, creates never
sent twice blindly, and Capillary's page in full (enrolments, identifiers to add, warnings).
One test per documented behaviour (docs/capillary.md and docs/malomo.md, "Writing back")."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.destination import cli
from source_customers.destination.screen import vendor_date_time
from unit_tests.test_destination import CAPILLARY, MALOMO, catalog, record, run_write

LOOKUP = "https://capillary.test/v2/customers/lookup/customerDetails"
UPDATE = "https://capillary.test/v2/customers/lookup"
ADD = "https://capillary.test/v2/customers"
MOBILE = "919812345678"
NOT_FOUND = {"errors": [{"status": False, "code": 8015,
                         "message": "Customer not found for the given identifiers"}]}
DONE = {"createdId": 501, "entity": 501, "success": True, "warnings": [], "errors": []}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)


def check(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    try:
        return cli.check(str(path))["connectionStatus"]  # type: ignore[no-any-return]
    except AirbyteTracedException as error:
        return {"status": "FAILED", "message": error.message}


def customer(ident: int, programs: tuple[int, ...] = (), identifiers: tuple[
        tuple[str, str], ...] = (("mobile", MOBILE),)) -> dict[str, Any]:
    return {"id": ident, "profiles": [{"source": "INSTORE", "identifiers": [
        {"type": t, "value": v} for t, v in identifiers]}],
            "loyaltyProgramDetails": [{"programId": p, "slabSNo": 1} for p in programs]}


# --- check ----------------------------------------------------------------------------------

def test_check_passes_when_capillary_judges_the_looked_up_identifier_invalid(
        requests_mock: rm.Mocker, tmp_path: Path) -> None:
    requests_mock.get(LOOKUP, status_code=400, json={"errors": [
        {"status": False, "code": 8013, "message": "Invalid mobile"}]})
    assert check(CAPILLARY, tmp_path) == {"status": "SUCCEEDED"}


def test_check_passes_when_no_customer_has_the_looked_up_identifier(
        requests_mock: rm.Mocker, tmp_path: Path) -> None:
    requests_mock.get(LOOKUP, json=NOT_FOUND)
    assert check(CAPILLARY, tmp_path) == {"status": "SUCCEEDED"}


@pytest.mark.parametrize("status", [401, 403])
def test_check_fails_naming_the_credentials_when_capillary_refuses_them(
        requests_mock: rm.Mocker, tmp_path: Path, status: int) -> None:
    requests_mock.get(LOOKUP, status_code=status, json={"errors": [
        {"code": status, "message": "Invalid credentials or token"}]})
    result = check(CAPILLARY, tmp_path)
    assert result["status"] == "FAILED"
    assert f"Capillary refused the credentials (HTTP {status}" in result["message"]
    assert "check credentials (a till's username and password" in result["message"]


def test_check_fails_naming_the_api_key_when_malomo_refuses_it(
        requests_mock: rm.Mocker, tmp_path: Path) -> None:
    requests_mock.get("https://malomo.test/customers", status_code=401,
                      json={"code": "unauthorized", "message": "Invalid API key"})
    result = check(MALOMO, tmp_path)
    assert result["status"] == "FAILED"
    assert "Malomo refused the credentials (HTTP 401" in result["message"]
    assert "check api_key" in result["message"]
    assert MALOMO["api_key"] not in result["message"]


# --- creates are never sent twice blindly ---------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_a_malomo_create_answered_with_a_failure_status_is_looked_for_before_it_is_sent_again(
        requests_mock: rm.Mocker, status: int) -> None:
    listed = [{"id": "cus_1", "email": "zoe@example.com"}]
    requests_mock.get("https://malomo.test/customers", [
        {"json": listed}, {"json": []},
        {"json": [*listed, {"id": "cus_9", "email": "new@example.com"}]}, {"json": []}])
    post = requests_mock.post("https://malomo.test/customers", status_code=status,
                              json={"message": "upstream failed"})
    _, writer = run_write(MALOMO, catalog("append_dedup", ["email"]),
                          [record({"email": "new@example.com"})])
    assert post.call_count == 1  # the gateway's failure hid a create that was applied
    assert writer.streams["segment"].kinds == {"created": 1}


def test_a_malomo_create_answered_with_a_failure_and_not_listed_after_is_sent_again(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://malomo.test/customers", [{"json": []}])
    post = requests_mock.post("https://malomo.test/customers", [
        {"status_code": 503, "json": {"message": "unavailable"}},
        {"json": {"id": "cus_9", "email": "new@example.com"}}])
    _, writer = run_write(MALOMO, catalog("append_dedup", ["email"]),
                          [record({"email": "new@example.com"})])
    assert post.call_count == 2
    assert writer.streams["segment"].kinds == {"created": 1}


def test_a_create_answered_429_is_sent_again_as_it_is(requests_mock: rm.Mocker) -> None:
    listing = requests_mock.get("https://malomo.test/customers", [{"json": []}])
    post = requests_mock.post("https://malomo.test/customers", [
        {"status_code": 429, "json": {"message": "slow down"}, "headers": {"Retry-After": "0"}},
        {"json": {"id": "cus_9", "email": "new@example.com"}}])
    _, writer = run_write(MALOMO, catalog("append_dedup", ["email"]),
                          [record({"email": "new@example.com"})])
    assert post.call_count == 2 and listing.call_count == 1  # no look before the resend
    assert writer.streams["segment"].kinds == {"created": 1}


def test_a_capillary_add_answered_502_is_looked_up_not_sent_again(
        requests_mock: rm.Mocker) -> None:
    requests_mock.put(UPDATE, json=NOT_FOUND)
    requests_mock.get(LOOKUP, [{"json": customer(501)}])
    add = requests_mock.post(ADD, status_code=502, json={"message": "Bad gateway"})
    _, writer = run_write(CAPILLARY, catalog("append_dedup", ["mobile"]),
                          [record({"mobile": MOBILE, "firstName": "Zoe"})])
    assert add.call_count == 1
    assert writer.streams["segment"].kinds == {"created": 1}


@pytest.mark.parametrize("code", [461, 521])
def test_a_capillary_add_answered_busy_is_sent_again_as_it_is(
        requests_mock: rm.Mocker, code: int) -> None:
    requests_mock.put(UPDATE, json=NOT_FOUND)
    lookup = requests_mock.get(LOOKUP, json=NOT_FOUND)
    add = requests_mock.post(ADD, [{"status_code": code, "json": {"errors": [
        {"code": code, "message": "try later"}]}}, {"json": DONE}])
    _, writer = run_write(CAPILLARY, catalog("append_dedup", ["mobile"]),
                          [record({"mobile": MOBILE, "firstName": "Zoe"})])
    assert add.call_count == 2 and lookup.call_count == 0
    assert writer.streams["segment"].kinds == {"created": 1}


# --- enrolments -----------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "sent"), [
    ("2027-01-31T23:59:59+05:30", "2027-01-31T23:59:59+05:30"),
    ("2027-01-31T18:29:59Z", "2027-01-31T18:29:59+00:00"),
    ("2027-01-31T18:29:59.250-04:00", "2027-01-31T18:29:59-04:00"),
    ("2027-01-31 18:29:59+0100", "2027-01-31T18:29:59+01:00"),
])
def test_an_iso_date_time_with_a_zone_is_sent_in_capillarys_form(given: str, sent: str) -> None:
    assert vendor_date_time(given) == sent


@pytest.mark.parametrize("given", ["2027-01-31T23:59:59", "2027-01-31", "31/01/2027",
                                   "tomorrow", 1800000000, ""])
def test_a_date_time_without_a_zone_or_that_is_none_is_not_converted(given: Any) -> None:
    assert vendor_date_time(given) is None


def test_enrolment_dates_are_converted_before_the_update_is_sent(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get(LOOKUP, json=customer(501))
    put = requests_mock.put(UPDATE, json=DONE)
    enrol = {"programId": 2207, "tierNumber": 2, "loyaltyPoints": 500,
             "tierExpiryDate": "2027-12-31T18:30:00Z"}
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]),
                          [record({"mobile": MOBILE, "loyaltyProgramEnrollments": [enrol]})])
    assert writer.streams["segment"].kinds == {"updated": 1}
    assert put.last_request.json()["loyaltyProgramEnrollments"] == [
        {**enrol, "tierExpiryDate": "2027-12-31T18:30:00+00:00"}]


@pytest.mark.parametrize("date", ["2027-12-31T18:30:00", "end of year"])
def test_an_enrolment_date_without_a_zone_or_unparseable_rejects_the_row_naming_the_field(
        requests_mock: rm.Mocker, tmp_path: Path, date: str) -> None:
    sent = requests_mock.register_uri(rm.ANY, rm.ANY, json=DONE)
    enrol = {"programId": 2207, "tierNumber": 1, "pointsExpiryDate": date}
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]),
                          [record({"mobile": MOBILE, "loyaltyProgramEnrollments": [enrol]})],
                          storage={"storage_type": "Local", "path": str(tmp_path)})
    assert sent.call_count == 0
    assert writer.streams["segment"].reasons == {"invalid date-time": 1}
    (stored,) = (tmp_path / "segment").glob("rejected-*.jsonl")
    line = json.loads(stored.read_text())
    assert line["rejected_field"] == "loyaltyProgramEnrollments[0].pointsExpiryDate"


def test_an_enrolment_in_a_program_the_customer_is_in_is_left_out_and_said_not_applied(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get(LOOKUP, json=customer(501, programs=(1483,)))
    put = requests_mock.put(UPDATE, json=DONE)
    rows = [record({"mobile": MOBILE, "loyaltyProgramEnrollments": [
        {"programId": 1483, "tierNumber": 3}]}),
        record({"mobile": MOBILE, "firstName": "Zoe", "loyaltyProgramEnrollments": [
            {"programId": 1483, "tierNumber": 3}, {"programId": 2207, "tierNumber": 1}]})]
    out, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), rows)
    stream = writer.streams["segment"]
    assert stream.kinds == {"unchanged": 1, "updated": 1}  # the first asked for nothing else
    assert stream.notes == {"already enrolled in program 1483, not updated": 2}
    assert put.call_count == 1
    assert put.last_request.json()["loyaltyProgramEnrollments"] == [
        {"programId": 2207, "tierNumber": 1}]
    summary = [m["log"]["message"] for m in out if m["type"] == "LOG"][-1]
    assert "not applied: 2 \u00d7 already enrolled in program 1483, not updated" in summary


# --- identifiers to add ---------------------------------------------------------------------

def test_an_identifier_another_customer_holds_rejects_the_row_naming_the_clash(
        requests_mock: rm.Mocker) -> None:
    def lookup(request: Any, context: Any) -> dict[str, Any]:
        if request.qs["identifiername"] == ["mobile"]:
            return customer(501)
        assert request.qs["source"] == ["all"]  # the other sources too: a merge crosses them
        return customer(777, identifiers=(("martjackId", "MJ-1"),))
    requests_mock.get(LOOKUP, json=lookup)
    put = requests_mock.put(UPDATE, json=DONE)
    out, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), [record({
        "mobile": MOBILE, "identifiers": [{"type": "martjackId", "value": "MJ-1"}]})])
    assert put.call_count == 0
    assert writer.streams["segment"].reasons == {"identifier held by another customer": 1}
    warning = next(m["log"]["message"] for m in out if m["type"] == "LOG"
                   and m["log"]["level"] == "WARN")
    assert "belongs to customer 777; adding it would merge the two customers" in warning
    assert "MJ-1" not in json.dumps(out)


def test_an_identifier_the_customer_already_holds_is_not_sent_again(
        requests_mock: rm.Mocker) -> None:
    held = customer(501, identifiers=(("mobile", MOBILE), ("email", "zoe@example.com")))
    lookups = requests_mock.get(LOOKUP, [{"json": held}, {"json": NOT_FOUND}])
    put = requests_mock.put(UPDATE, json=DONE)
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), [record({
        "mobile": MOBILE, "identifiers": [{"type": "email", "value": "zoe@example.com"},
                                          {"type": "externalId", "value": "0042"}]})])
    assert writer.streams["segment"].kinds == {"updated": 1}
    assert lookups.call_count == 2  # the customer, then the one identifier it lacks
    assert put.last_request.json()["profiles"] == [
        {"identifiers": [{"type": "externalId", "value": "0042"}]}]


def test_an_identifier_capillary_finds_invalid_rejects_the_row(requests_mock: rm.Mocker) -> None:
    requests_mock.get(LOOKUP, [{"json": customer(501)}, {"status_code": 400, "json": {
        "errors": [{"code": 8013, "message": "Invalid email"}]}}])
    put = requests_mock.put(UPDATE, json=DONE)
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), [record({
        "mobile": MOBILE, "identifiers": [{"type": "email", "value": "zoe.example.com"}]})])
    assert put.call_count == 0
    assert writer.streams["segment"].reasons == {"identifier lookup refused": 1}


def test_identifiers_of_a_customer_to_add_go_into_the_add_after_they_are_looked_up(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get(LOOKUP, json=NOT_FOUND)
    add = requests_mock.post(ADD, json=DONE)
    _, writer = run_write(CAPILLARY, catalog("append_dedup", ["mobile"]), [record({
        "mobile": MOBILE, "identifiers": [{"type": "email", "value": "zoe@example.com"}]})])
    assert writer.streams["segment"].kinds == {"created": 1}
    assert add.last_request.json()["profiles"][0]["identifiers"] == [
        {"type": "mobile", "value": MOBILE}, {"type": "email", "value": "zoe@example.com"}]


# --- warnings and channels ------------------------------------------------------------------

def test_capillarys_warnings_are_counted_by_message_and_logged_masked(
        requests_mock: rm.Mocker) -> None:
    warned = {**DONE, "warnings": [{"status": False, "code": 8069,
                                    "message": f"Customer email of {MOBILE} is not verified"}]}
    requests_mock.put(UPDATE, json=warned)
    out, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), [
        record({"mobile": MOBILE, "commChannels": [
            {"type": "email", "value": "zoe@example.com", "verified": False}]})])
    stream = writer.streams["segment"]
    assert stream.kinds == {"updated": 1}  # the change was made
    assert sum(stream.warnings.values()) == 1
    logs = [m["log"]["message"] for m in out if m["type"] == "LOG"]
    assert any("Warned on a record" in line and "(8069)" in line for line in logs), logs
    assert "the vendor's warnings: 1 \u00d7 Customer email of 91" in logs[-1]
    assert MOBILE not in json.dumps(out)


def test_comm_channels_are_sent_in_their_documented_shape(requests_mock: rm.Mocker) -> None:
    put = requests_mock.put(UPDATE, json=DONE)
    channel = {"type": "mobilePush", "value": "fcm-token-1", "primary": True, "verified": True,
               "meta": {"residence": False}, "lastViewedDate": "2026-12-01"}
    run_write(CAPILLARY, catalog("update", ["mobile"]),
              [record({"mobile": MOBILE, "commChannels": [channel]})])
    assert put.last_request.json() == {"commChannels": [channel]}


def test_discover_offers_every_field_of_capillarys_update_page(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CAPILLARY))
    (operation, *_) = cli.discover(str(path))["destination_catalog"]["operations"]
    fields = operation["json_schema"]["properties"]
    assert {"loyaltyProgramEnrollments", "identifiers", "commChannels"} <= set(fields)
    assert set(fields["loyaltyProgramEnrollments"]["items"]["properties"]) == {
        "programId", "tierNumber", "loyaltyPoints", "tierExpiryDate", "pointsExpiryDate"}
    assert set(fields["commChannels"]["items"]["properties"]) == {
        "type", "value", "primary", "verified", "meta", "lastViewedDate"}
    assert "mobilePush" in fields["commChannels"]["items"]["properties"]["type"]["enum"]


# --- Malomo's listing -----------------------------------------------------------------------

def test_a_malomo_listing_page_that_is_not_a_list_is_a_readable_error(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get("https://malomo.test/customers", json={"customers": []})
    with pytest.raises(AirbyteTracedException, match=r"Malomo answered GET /customers with a "
                       r"JSON object where a list of customers belongs"):
        run_write(MALOMO, catalog("update", ["email"]),
                  [record({"email": "zoe@example.com", "first_name": "Zoe"})])


def test_a_row_whose_key_capillary_judges_invalid_is_rejected_with_capillarys_reason(
        requests_mock: rm.Mocker) -> None:
    requests_mock.get(LOOKUP, status_code=400, json={"errors": [
        {"code": 8013, "message": "Invalid mobile"}]})
    put = requests_mock.put(UPDATE, json=DONE)
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]), [record({
        "mobile": "12345", "loyaltyProgramEnrollments": [{"programId": 2207}]})])
    assert put.call_count == 0
    assert writer.streams["segment"].reasons == {"invalid identifier (8013)": 1}
