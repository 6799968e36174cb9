"""The sandbox's write endpoints, over real HTTP with plain `requests`: what a destination
will meet (Malomo's POST/PUT/DELETE /customers, Capillary's POST /v2/customers and
PUT /v2/customers/lookup) and the write faults ("applied-lost", Capillary's 521)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from integration_tests.sandbox import capillary, malomo
from integration_tests.sandbox.server import WRITE_FAULT_KINDS, Server, VendorApi

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MALOMO_ERROR_KEYS = {"code", "message", "request_id", "status"}


# --- Malomo -----------------------------------------------------------------------------
class Malomo:
    def __init__(self, api: malomo.Api, url: str) -> None:
        self.api, self.url = api, url
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {malomo.API_KEY}",
                                     "Accept": malomo.ACCEPT})

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=10, **kwargs)

    def all_customers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        while True:
            page = self.send("GET", "/customers", params=params).json()
            if not page:
                return found
            found += page
            params = {"next": page[-1]["id"]}


@pytest.fixture
def mal(serve: Callable[[VendorApi], Server]) -> Malomo:
    api = malomo.Api(customers=30, page_size=7)
    return Malomo(api, serve(api).url)


NEW = {"email": "zoë.new@example.com", "first_name": "Zoë", "last_name": "Ødegaard",
       "phone_number": "555-123-4567"}


def test_malomo_created_customer_reads_back_through_get_and_paging(mal: Malomo) -> None:
    answer = mal.send("POST", "/customers", json=NEW)
    assert answer.status_code == 200
    created = answer.json()
    assert UUID.match(created["id"])
    assert {k: created[k] for k in NEW} == NEW
    assert created["created_at"] == created["updated_at"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", created["updated_at"])
    assert mal.send("GET", f"/customers/{created['id']}").json() == created
    listed = mal.all_customers()
    assert listed[-1] == created  # creation order: the newest last
    assert len(listed) == 31
    assert mal.api.created == [created["id"]]
    assert mal.api.writes == [("POST", created["id"])]


def test_malomo_accepts_a_second_customer_with_the_same_email(mal: Malomo) -> None:
    first = mal.send("POST", "/customers", json=NEW).json()
    second = mal.send("POST", "/customers", json=NEW).json()
    assert first["id"] != second["id"]
    assert [c["id"] for c in mal.all_customers() if c.get("email") == NEW["email"]] == [
        first["id"], second["id"]]


@pytest.mark.parametrize("body", [{"email": "no-at-sign.example.com"}, {"email": "a@b"},
                                  {"first_name": 7}, ["not", "an", "object"]])
def test_malomo_rejects_an_invalid_body_with_its_error(mal: Malomo, body: Any) -> None:
    answer = mal.send("POST", "/customers", json=body)
    assert answer.status_code == 400
    assert set(answer.json()) == MALOMO_ERROR_KEYS
    assert answer.json()["status"] == 400
    assert mal.api.created == [] and len(mal.api.customers) == 30


def test_malomo_update_changes_only_the_given_fields(mal: Malomo) -> None:
    before = dict(mal.api.customers[4])
    answer = mal.send("PUT", f"/customers/{before['id']}", json={"first_name": "Chloé"})
    assert answer.status_code == 200
    after = answer.json()
    assert after["first_name"] == "Chloé"
    assert {k: v for k, v in after.items() if k not in ("first_name", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("first_name", "updated_at")}
    assert after["updated_at"] > before["updated_at"]
    assert mal.send("GET", f"/customers/{before['id']}").json() == after
    assert mal.api.updated == [before["id"]]


def test_malomo_update_with_null_removes_a_field_and_bad_email_is_refused(mal: Malomo) -> None:
    cid = mal.send("POST", "/customers", json=NEW).json()["id"]
    after = mal.send("PUT", f"/customers/{cid}", json={"phone_number": None}).json()
    assert "phone_number" not in after and after["email"] == NEW["email"]
    refused = mal.send("PUT", f"/customers/{cid}", json={"email": "nope"})
    assert refused.status_code == 400 and set(refused.json()) == MALOMO_ERROR_KEYS
    assert mal.send("GET", f"/customers/{cid}").json()["email"] == NEW["email"]


def test_malomo_delete_removes_the_customer(mal: Malomo) -> None:
    cid = mal.api.customers[10]["id"]
    answer = mal.send("DELETE", f"/customers/{cid}")
    assert answer.status_code == 204
    assert answer.content == b""
    assert mal.send("GET", f"/customers/{cid}").status_code == 404
    assert cid not in [c["id"] for c in mal.all_customers()]
    assert len(mal.all_customers()) == 29
    assert mal.api.deleted == [cid]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_malomo_unknown_id_is_a_404_with_its_error(mal: Malomo, method: str) -> None:
    answer = mal.send(method, "/customers/00000000-0000-4000-8000-000000000000",
                      json={"first_name": "X"})
    assert answer.status_code == 404
    body = answer.json()
    assert set(body) == MALOMO_ERROR_KEYS
    assert body["code"] == "not_found" and body["status"] == 404
    assert mal.api.writes == []


def test_malomo_writes_need_the_secret_key(mal: Malomo) -> None:
    answer = requests.post(mal.url + "/customers", json=NEW, timeout=10,
                           headers={"Authorization": f"Bearer {malomo.PUBLISHABLE_KEY}",
                                    "Accept": malomo.ACCEPT})
    assert answer.status_code == 401
    assert mal.api.created == []


def test_malomo_applied_lost_creates_but_the_client_hears_nothing(mal: Malomo) -> None:
    mal.api.set_faults(scheduled=["", "applied-lost"])
    assert mal.send("GET", "/customers").status_code == 200
    with pytest.raises(requests.ConnectionError):
        mal.send("POST", "/customers", json=NEW)
    assert mal.api.faulted == ["applied-lost"]
    (cid,) = mal.api.created
    assert mal.send("GET", f"/customers/{cid}").json()["email"] == NEW["email"]
    # A blind retry makes a second customer: Malomo has no upsert or idempotency key.
    mal.send("POST", "/customers", json=NEW)
    assert len(mal.api.created) == 2


def test_applied_lost_is_a_write_fault_kind() -> None:
    assert "applied-lost" in WRITE_FAULT_KINDS


# --- Capillary --------------------------------------------------------------------------
class Capillary:
    def __init__(self, api: capillary.Api, url: str) -> None:
        self.api, self.url = api, url
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Basic " + capillary.basic_header(
            capillary.USERNAME, capillary.PASSWORD)

    def add(self, body: dict[str, Any], **params: str) -> requests.Response:
        return self.session.post(f"{self.url}/v2/customers", json=body, params=params,
                                 timeout=10)

    def update(self, name: str, value: str, body: dict[str, Any],
               source: str = "INSTORE", **params: str) -> requests.Response:
        return self.session.put(
            f"{self.url}/v2/customers/lookup", json=body, timeout=10,
            params={"source": source, "identifierName": name, "identifierValue": value,
                    **params})

    def lookup(self, name: str, value: str, source: str = "INSTORE",
               **params: str) -> requests.Response:
        return self.session.get(
            f"{self.url}/v2/customers/lookup/customerDetails", timeout=10,
            params={"source": source, "identifierName": name, "identifierValue": value,
                    **params})


@pytest.fixture
def cap(serve: Callable[[VendorApi], Server]) -> Capillary:
    api = capillary.Api(customers=40)
    return Capillary(api, serve(api).url)


def person(mobile: str = "919000000001", email: str = "noah.new@example.com",
           **profile: Any) -> dict[str, Any]:
    return {
        "profiles": [{"firstName": "Noah", "lastName": "Dvořák",
                      "identifiers": [{"type": "mobile", "value": mobile},
                                      {"type": "email", "value": email}],
                      "fields": {"city": "東京"},
                      "commChannels": [{"type": "email", "value": email, "primary": True}],
                      **profile}],
        "extendedFields": {"gender": "Male"},
        "loyaltyInfo": {"loyaltyType": "loyalty"},
    }


def item_error(answer: requests.Response) -> int:
    """The one item error's code of a write that failed, checking its shape."""
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["success"] is False and body["warnings"] == []
    (failure,) = body["errors"]
    assert set(failure) == {"status", "code", "message"} and failure["status"] is False
    return int(failure["code"])


def test_capillary_added_customer_is_found_by_the_lookup(cap: Capillary) -> None:
    answer = cap.add(person())
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True and body["errors"] == [] and body["warnings"] == []
    assert body["createdId"] == body["entity"]
    assert cap.api.added == [body["createdId"]]
    for name, value in (("mobile", "919000000001"), ("email", "noah.new@example.com")):
        found = cap.lookup(name, value)
        assert found.status_code == 200
        customer = found.json()
        assert customer["id"] == body["createdId"]
    assert customer["profiles"][0]["firstName"] == "Noah"
    assert customer["profiles"][0]["fields"] == {"city": "東京"}
    assert customer["extendedFields"] == {"gender": "Male"}
    assert customer["loyaltyInfo"]["loyaltyType"] == "loyalty"
    assert len(cap.api.customers) == 41


def test_capillary_identifier_already_held_is_an_item_error_not_a_second_customer(
        cap: Capillary) -> None:
    mobile = str(cap.api.identifier(cap.api.customers[2], "mobile"))
    assert item_error(cap.add(person(mobile=mobile))) == 8012
    assert cap.api.added == [] and len(cap.api.customers) == 40
    assert cap.api.merges == []
    assert cap.api.item_errors == [("POST", 8012)]


@pytest.mark.parametrize(("body", "params", "code"), [
    (person(mobile="+91 98x"), {}, 8013),
    (person(email="no-at-sign.example.com"), {}, 8013),
    ({"profiles": [{"firstName": "No", "identifiers": []}]}, {}, 8013),
    ({"profiles": [{"identifiers": [{"type": "passport", "value": "X1"}]}]}, {}, 8013),
    (person(), {"source": "NOWHERE"}, 8003),
    (person(), {"source": "MARTJACK"}, 8003),  # a multi-account source needs accountId
])
def test_capillary_invalid_add_is_a_201_item_error(
        cap: Capillary, body: dict[str, Any], params: dict[str, str], code: int) -> None:
    assert item_error(cap.add(body, **params)) == code
    assert cap.api.added == []


def test_capillary_body_that_is_not_an_object_is_a_request_error(cap: Capillary) -> None:
    answer = cap.session.post(f"{cap.url}/v2/customers", json=[1, 2], timeout=10)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == 400


def test_capillary_write_error_statuses_can_vary(serve: Callable[[VendorApi], Server]) -> None:
    api = capillary.Api(customers=5, write_error_statuses=(201, 400, 200))
    client = Capillary(api, serve(api).url)
    bad = person(mobile="12")
    assert [client.add(bad).status_code for _ in range(3)] == [201, 400, 200]


def test_capillary_update_changes_the_customer_and_logs_it(cap: Capillary) -> None:
    target = cap.api.customers[3]
    mobile = str(cap.api.identifier(target, "mobile"))
    answer = cap.update("mobile", mobile, {
        "extendedFields": {"gender": "Female"},
        "profiles": [{"lastName": "Nakamura", "identifiers": [
            {"type": "externalId", "value": "EXT-NEW-1"}]}]})
    assert answer.status_code == 200
    assert answer.json()["entity"] == target["id"] and answer.json()["success"] is True
    found = cap.lookup("externalId", "EXT-NEW-1").json()
    assert found["id"] == target["id"]
    assert found["profiles"][0]["lastName"] == "Nakamura"
    assert cap.api.updates == [target["id"]]
    assert cap.api.merges == []


def test_capillary_update_of_unknown_customer_is_8015(cap: Capillary) -> None:
    (missing,) = capillary.unknown_mobiles(1)
    assert item_error(cap.update("mobile", missing, {"extendedFields": {"gender": "Male"}})) \
        == 8015
    assert cap.api.updates == []


def test_capillary_update_with_invalid_source_or_identifier(cap: Capillary) -> None:
    mobile = str(cap.api.identifier(cap.api.customers[3], "mobile"))
    assert item_error(cap.update("mobile", mobile, {}, source="NOWHERE")) == 8003
    bad = {"profiles": [{"identifiers": [{"type": "email", "value": "not-an-email"}]}]}
    assert item_error(cap.update("mobile", mobile, bad)) == 8013
    assert cap.api.updates == []


def test_capillary_update_adding_an_identifier_held_on_the_same_source_is_refused(
        cap: Capillary) -> None:
    one, other = cap.api.customers[3], cap.api.customers[4]
    held = str(cap.api.identifier(other, "mobile"))
    body = {"profiles": [{"identifiers": [{"type": "mobile", "value": held}]}]}
    assert item_error(cap.update("mobile", str(cap.api.identifier(one, "mobile")), body)) \
        == 8012
    assert cap.api.merges == [] and len(cap.api.customers) == 40


def test_capillary_update_adding_an_identifier_held_under_another_source_merges(
        cap: Capillary) -> None:
    # A customer known only on the MARTJACK account.
    identifiers = [{"type": "martjackId", "value": "MJ-NEW-1"},
                   {"type": "mobile", "value": "919000000777"}]
    added = cap.add({"profiles": [{"firstName": "Eli", "identifiers": identifiers}]},
                    source="MARTJACK", accountId=capillary.ACCOUNT_ID).json()["createdId"]
    survivor = cap.api.customers[3]
    answer = cap.update("mobile", str(cap.api.identifier(survivor, "mobile")), {
        "profiles": [{"identifiers": [{"type": "martjackId", "value": "MJ-NEW-1"}]}]})
    assert answer.status_code == 200
    assert cap.api.merges == [{"survivor": survivor["id"], "victim": added,
                               "identifier": {"type": "martjackId", "value": "MJ-NEW-1"},
                               "via": "PUT /v2/customers/lookup"}]
    assert added not in [c["id"] for c in cap.api.customers]
    found = cap.lookup("mobile", "919000000777", source="MARTJACK",
                       accountId=capillary.ACCOUNT_ID).json()
    assert found["id"] == survivor["id"]


def test_capillary_add_with_identifier_under_another_source_joins_that_customer(
        cap: Capillary) -> None:
    holder = next(c for c in cap.api.customers if len(c["profiles"]) > 1)
    martjack_id = next(i["value"] for i in holder["profiles"][1]["identifiers"]
                       if i["type"] == "martjackId")
    body = {"profiles": [{"firstName": "Ana", "identifiers": [
        {"type": "martjackId", "value": martjack_id}]}]}
    answer = cap.add(body)  # INSTORE, where the martjackId is not held
    assert answer.status_code == 200
    assert answer.json()["createdId"] == holder["id"]
    assert answer.json()["warnings"]
    assert cap.api.added == []
    assert [m["survivor"] for m in cap.api.merges] == [holder["id"]]


def test_capillary_521_fault_answers_capillarys_error_and_applies_nothing(
        cap: Capillary) -> None:
    cap.api.set_faults(scheduled=["521"])
    answer = cap.add(person())
    assert answer.status_code == 521
    (failure,) = answer.json()["errors"]
    assert failure["code"] == 521 and failure["status"] is False
    assert "multiple actions are running for the same customer" in failure["message"].lower()
    assert cap.api.added == []
    assert cap.add(person()).status_code == 200  # try later: it passes


def test_capillary_461_fault(cap: Capillary) -> None:
    cap.api.set_faults(scheduled=["461"])
    answer = cap.add(person())
    assert answer.status_code == 461 and answer.json()["errors"][0]["code"] == 461
    assert cap.api.added == []


def test_capillary_applied_lost_adds_but_the_client_hears_nothing(cap: Capillary) -> None:
    cap.api.set_faults(scheduled=["applied-lost"])
    with pytest.raises(requests.ConnectionError):
        cap.add(person())
    assert cap.api.faulted == ["applied-lost"]
    (cid,) = cap.api.added
    assert cap.lookup("mobile", "919000000001").json()["id"] == cid
    # A retry meets the identifier it added: an item error, not a second customer.
    assert item_error(cap.add(person())) == 8012
    assert cap.api.added == [cid]


def test_capillary_applied_lost_update_is_applied(cap: Capillary) -> None:
    target = cap.api.customers[6]
    cap.api.set_faults(scheduled=["applied-lost"])
    with pytest.raises(requests.ConnectionError):
        cap.update("mobile", str(cap.api.identifier(target, "mobile")),
                   {"extendedFields": {"gender": "Female"}})
    assert cap.api.updates == [target["id"]]
    assert target["extendedFields"]["gender"] == "Female"
