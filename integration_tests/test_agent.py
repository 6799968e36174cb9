"""`customers-mcp`, the installed command, spoken to over stdio by the MCP SDK's own client,
against every vendor's sandbox over real HTTP: each tool, each vendor and key, not found, a
vendor down or slow, the Okendo budget, previews that send nothing, writes read back, bad
arguments answered as tool errors, and the log masked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from integration_tests import mcp_client
from integration_tests.mcp_client import by_vendor, session
from integration_tests.sandbox import capillary, loke, malomo, okendo, person
from integration_tests.sandbox.server import Server, VendorApi

VENDORS = ("okendo", "loke", "malomo", "capillary")
MODULES: dict[str, Any] = {"okendo": okendo, "loke": loke, "malomo": malomo,
                           "capillary": capillary}


@dataclass
class Sandboxes:
    apis: dict[str, Any]
    servers: dict[str, Server]
    ids: dict[str, str]  # Jane's id at each vendor

    def configs(self, *vendors: str, **extra: dict[str, Any]) -> list[dict[str, Any]]:
        return [{**MODULES[v].config(self.servers[v].url), **extra.get(v, {})}
                for v in vendors or VENDORS]

    def writes(self, vendor: str) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.apis[vendor].requests
                if r.method not in ("GET",) and r.path not in ("/token",
                                                                "/v3/oauth/token/generate")]


@pytest.fixture
def sandboxes(serve: Callable[[VendorApi], Server]) -> Iterator[Sandboxes]:
    apis: dict[str, Any] = {"okendo": okendo.Api(customers=12),
                            "loke": loke.Api(customers=60, page_size=25),
                            "malomo": malomo.Api(customers=40, page_size=15),
                            "capillary": capillary.Api(customers=30)}
    servers = {v: serve(api) for v, api in apis.items()}
    yield Sandboxes(apis, servers, person.add_everywhere(apis))


def _ids(result: dict[str, Any], field: str) -> list[Any]:
    return [c[field] for c in result["customers"]]


# --- the tools ---------------------------------------------------------------------------

def test_the_four_tools_are_listed_with_schemas_and_what_each_vendor_can_find_by(
        sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs(), [])
    tools = {t["name"]: t for t in seen.tools}
    assert set(tools) == {"find_customer", "get_customer", "customer_activity",
                          "update_customer"}
    for tool in tools.values():
        assert tool["outputSchema"]["type"] == "object", tool["name"]
        assert tool["description"]
    find = tools["find_customer"]
    assert set(find["inputSchema"]["properties"]) == {"email", "phone", "identifier", "vendors"}
    assert "- okendo: by email" in find["description"]
    assert "- loke: by email, phone" in find["description"]
    assert "- malomo: by email (listed, then matched by address)" in find["description"]
    assert "- capillary: by email, phone, identifier (mobile, email, externalId" in \
        find["description"]
    update = tools["update_customer"]
    assert set(update["inputSchema"]["properties"]) == {"vendor", "match", "changes", "apply"}
    assert "does not" in update["description"]  # this server was started read-only


def test_find_customer_by_email_finds_her_at_every_vendor_by_primary_key(
        sandboxes: Sandboxes) -> None:
    started = time.monotonic()
    seen = session(sandboxes.configs(), [("find_customer", {"email": person.EMAIL})])
    assert time.monotonic() - started < 60  # a bound on the session, not a timing claim
    results = by_vendor(seen.results[0])
    assert {k: r["status"] for k, r in results.items()} == {
        (v, "email"): "found" for v in VENDORS}
    ids = sandboxes.ids
    assert _ids(results[("okendo", "email")], "customerId") == [ids["okendo"]]
    assert results[("okendo", "email")]["customers"][0]["email"] == person.EMAIL
    assert _ids(results[("loke", "email")], "id") == [ids["loke"]]
    # Malomo holds the address in another letter case: matched all the same.
    assert _ids(results[("malomo", "email")], "id") == [ids["malomo"]]
    cap = results[("capillary", "email")]["customers"][0]
    assert cap["id"] == int(ids["capillary"])
    assert (cap["identifierName"], cap["identifierValue"]) == ("email", person.EMAIL)
    assert "warnings" not in cap  # shaped as the source's customers stream
    assert cap["loyaltyProgramDetails"][0]["currentSlab"] == "Gold"  # her tier


def test_find_customer_by_phone_and_identifier_says_who_cannot_look_up_by_them(
        sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs(), [
        ("find_customer", {"phone": person.PHONE}),
        ("find_customer", {"identifier": {"name": "externalId", "value": person.EXTERNAL_ID}}),
        ("find_customer", {"identifier": {"name": "loyaltyCard", "value": "123456"},
                           "vendors": ["capillary"]}),
    ])
    phone, ident, unknown_type = (by_vendor(r) for r in seen.results)
    assert _ids(phone[("loke", "phone")], "id") == [sandboxes.ids["loke"]]
    assert _ids(phone[("capillary", "phone")], "id") == [int(sandboxes.ids["capillary"])]
    assert phone[("capillary", "phone")]["customers"][0]["identifierName"] == "mobile"
    for vendor in ("okendo", "malomo"):
        assert phone[(vendor, "phone")]["status"] == "cannot_look_up"
        assert "cannot look a customer up by phone; it can by: email" in \
            phone[(vendor, "phone")]["message"]
    assert _ids(ident[("capillary", "identifier")], "id") == [int(sandboxes.ids["capillary"])]
    assert {v for (v, _), r in ident.items() if r["status"] == "cannot_look_up"} == {
        "okendo", "loke", "malomo"}
    assert unknown_type[("capillary", "identifier")]["status"] == "cannot_look_up"
    assert "identifier 'loyaltyCard'" in unknown_type[("capillary", "identifier")]["message"]


def test_an_address_no_one_has_is_not_found_at_every_vendor(sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs(), [("find_customer", {"email": "nobody@example.org"})])
    assert {k: (r["status"], r["customers"]) for k, r in by_vendor(seen.results[0]).items()} \
        == {(v, "email"): ("not_found", []) for v in VENDORS}


def test_get_customer_by_each_vendors_own_id(sandboxes: Sandboxes) -> None:
    ids = sandboxes.ids
    seen = session(sandboxes.configs(), [
        ("get_customer", {"vendor": "okendo", "id": ids["okendo"]}),
        ("get_customer", {"vendor": "loke", "id": ids["loke"]}),
        ("get_customer", {"vendor": "malomo", "id": ids["malomo"]}),
        ("get_customer", {"vendor": "capillary", "id": ids["capillary"]}),
        ("get_customer", {"vendor": "malomo", "id": "00000000-0000-4000-8000-000000000000"}),
    ])
    okendo_r, loke_r, malomo_r, capillary_r, missing = (r.data for r in seen.results)
    assert okendo_r["customer"]["customerId"] == ids["okendo"]
    assert loke_r["customer"]["id"] == ids["loke"]
    assert malomo_r["customer"]["id"] == ids["malomo"]
    assert capillary_r["status"] == "cannot_look_up"
    assert "find_customer" in capillary_r["message"]
    assert (missing["status"], missing["customer"]) == ("not_found", None)


def test_customer_activity_is_newest_first_and_limited(sandboxes: Sandboxes) -> None:
    ids = sandboxes.ids
    seen = session(sandboxes.configs(), [
        ("customer_activity", {"vendor": "okendo", "id": ids["okendo"]}),
        ("customer_activity", {"vendor": "loke", "id": ids["loke"]}),
        ("customer_activity", {"vendor": "malomo", "id": ids["malomo"]}),
        ("customer_activity", {"vendor": "malomo", "id": ids["malomo"], "limit": 1}),
        ("customer_activity", {"vendor": "capillary", "id": ids["capillary"]}),
    ])
    okendo_r, loke_r, malomo_r, malomo_one, capillary_r = (r.data for r in seen.results)
    kinds = [(r["kind"], r["record"].get("activityId") or r["record"].get("loyaltyCustomerId"))
             for r in okendo_r["records"]]
    assert kinds == [("customer_activities", "a0-jane"), ("customer_activities", "a1-jane"),
                     ("customer_activities", "a2-jane"), ("loyalty_customers", "7d1e0c4a-jane")]
    assert okendo_r["records"][3]["record"]["points"] == {"balance": 1250}
    assert [r["record"]["id"] for r in loke_r["records"]] == [
        m["id"] for m in sandboxes.apis["loke"].memberships[ids["loke"]]]
    assert [r["record"]["id"] for r in malomo_r["records"]] == ["e1-jane", "e0-jane"]
    assert all(r["record"]["customer_id"] == ids["malomo"] for r in malomo_r["records"])
    assert [r["record"]["id"] for r in malomo_one["records"]] == ["e1-jane"]
    assert capillary_r["status"] == "cannot_look_up"


def test_customer_activity_tells_no_records_from_no_customer(sandboxes: Sandboxes) -> None:
    api = sandboxes.apis["malomo"]
    quiet = next(c["id"] for c in api.customers if not api.events[c["id"]])
    seen = session(sandboxes.configs("malomo", "okendo"), [
        ("customer_activity", {"vendor": "malomo", "id": quiet}),
        ("customer_activity", {"vendor": "malomo", "id": "00000000-0000-4000-8000-0000000000ff"}),
        ("customer_activity", {"vendor": "okendo", "id": "no-such-customer"}),
    ])
    none, missing, okendo_missing = (r.data for r in seen.results)
    assert (none["status"], none["records"]) == ("found", [])
    assert (missing["status"], missing["records"]) == ("not_found", [])
    assert okendo_missing["status"] == "not_found"


def test_loke_memberships_are_read_across_pages(serve: Callable[[VendorApi], Server]) -> None:
    api = loke.Api(customers=5, membership_page_size=1)
    server = serve(api)
    cid = person.add_loke(api)
    seen = session([loke.config(server.url)],
                   [("customer_activity", {"vendor": "loke", "id": cid})])
    assert [r["record"]["id"] for r in seen.results[0].data["records"]] == [
        m["id"] for m in api.memberships[cid]]
    assert sum("/memberships" in r.path for r in api.requests) == 2


# --- failures ---------------------------------------------------------------------------

def test_a_vendor_down_fails_in_words_and_the_others_still_answer(
        sandboxes: Sandboxes) -> None:
    configs = sandboxes.configs()
    sandboxes.servers["loke"].stop()
    seen = session(configs, [("find_customer", {"email": person.EMAIL})])
    results = by_vendor(seen.results[0])
    assert results[("loke", "email")]["status"] == "failed"
    assert results[("loke", "email")]["message"].startswith("Could not connect to 127.0.0.1:")
    assert "(the connection was refused): check base_url." in results[("loke", "email")]["message"]
    assert {v for (v, _), r in results.items() if r["status"] == "found"} == {
        "okendo", "malomo", "capillary"}


def test_a_slow_vendor_is_named_at_the_deadline_and_the_others_answer(
        sandboxes: Sandboxes) -> None:
    sandboxes.apis["malomo"].set_faults(scheduled=["timeout"] * 5)
    seen = session(sandboxes.configs(), [("find_customer", {"email": person.EMAIL})],
                   "--deadline", "3")
    results = by_vendor(seen.results[0])
    assert results[("malomo", "email")]["status"] == "timed_out"
    assert results[("malomo", "email")]["message"] == (
        "Malomo did not answer within 3 s; the other vendors' answers are complete. "
        "Ask again later.")
    assert {v for (v, _), r in results.items() if r["status"] == "found"} == {
        "okendo", "loke", "capillary"}


def test_refused_credentials_fail_in_the_sources_words(sandboxes: Sandboxes) -> None:
    configs = [okendo.invalid_config(sandboxes.servers["okendo"].url),
               malomo.invalid_config(sandboxes.servers["malomo"].url)]
    seen = session(configs, [("find_customer", {"email": person.EMAIL})])
    results = by_vendor(seen.results[0])
    assert results[("okendo", "email")]["status"] == "failed"
    assert results[("okendo", "email")]["message"] == (
        "Okendo rejected the credentials (HTTP 401): check the user ID and the API key.")
    assert results[("malomo", "email")]["status"] == "failed"
    assert results[("malomo", "email")]["message"].startswith("Malomo rejected the API key")
    for secret in (*okendo.SECRETS, *malomo.SECRETS, "not-the-api-key", "sk_not_a_valid_key"):
        assert secret not in seen.results[0].text + seen.stderr


def test_the_okendo_budget_holds_lookups_to_two_requests_a_second(
        sandboxes: Sandboxes) -> None:
    api = sandboxes.apis["okendo"]
    api.set_rate_limit(2, burst=2)  # Okendo's documented limit, no burst to spare
    # Without requests_per_second: the manifest's default budget, 2 a second.
    config = {k: v for k, v in okendo.config(sandboxes.servers["okendo"].url).items()
              if k != "requests_per_second"}
    seen = session([config], [("find_customer", {"email": person.EMAIL})] * 3)
    results = [by_vendor(r)[("okendo", "email")] for r in seen.results]
    assert [r["status"] for r in results] == ["found"] * 3
    assert api.throttled == 0  # no 429: the budget paced the six requests
    assert results[0]["waited_for_rate_limit_seconds"] == 0.0
    held = [r for r in results[1:] if r["waited_for_rate_limit_seconds"] >= 0.1]
    assert held, results
    assert held[0]["message"].startswith("Okendo's rate limit held this lookup for ")


# --- writes ---------------------------------------------------------------------------

def test_a_preview_sends_nothing_even_with_apply_on_a_read_only_server(
        sandboxes: Sandboxes) -> None:
    fix = {"vendor": "malomo", "match": {"email": person.EMAIL},
           "changes": {"phone_number": person.FIXED_PHONE}}
    seen = session(sandboxes.configs(), [
        ("update_customer", fix),
        ("update_customer", {**fix, "apply": True}),
        ("update_customer", {"vendor": "capillary", "match": {"mobile": person.MOBILE},
                             "changes": {"firstName": "Janet"}, "apply": True}),
    ])
    preview, refused, capillary_preview = (r.data for r in seen.results)
    assert preview["outcome"] == "preview" and not preview["applied"]
    assert preview["customer_before"]["phone_number"] == person.MALOMO_PHONE
    assert preview["changes"] == [{"field": "phone_number", "from": person.MALOMO_PHONE,
                                   "to": person.FIXED_PHONE}]
    assert preview["not_applied_because"] == (
        "apply is false: this is a preview, and nothing was sent")
    assert refused["outcome"] == "preview" and not refused["applied"]
    assert refused["not_applied_because"] == (
        "the server was started without --allow-writes: nothing was sent")
    assert capillary_preview["changes"] == [{"field": "firstName", "from": "Jane",
                                             "to": "Janet"}]
    # The sandboxes' request logs: reads only.
    assert sandboxes.writes("malomo") == []
    assert sandboxes.writes("capillary") == []
    assert sandboxes.apis["malomo"].writes == []
    assert sandboxes.apis["capillary"].updates == []


def test_an_applied_write_is_read_back_as_the_vendor_holds_it(sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs("malomo", "capillary"), [
        ("update_customer", {"vendor": "malomo", "match": {"email": person.EMAIL},
                             "changes": {"phone_number": person.FIXED_PHONE}, "apply": True}),
        ("update_customer", {"vendor": "malomo", "match": {"id": sandboxes.ids["malomo"]},
                             "changes": {"phone_number": person.FIXED_PHONE}, "apply": True}),
        ("update_customer", {"vendor": "capillary", "match": {"mobile": person.MOBILE},
                             "changes": {"firstName": "Janet"}, "apply": True}),
        ("find_customer", {"email": person.EMAIL}),
    ], "--allow-writes")
    malomo_r, again, capillary_r, found = seen.results
    assert (malomo_r.data["outcome"], malomo_r.data["applied"]) == ("updated", True)
    assert malomo_r.data["customer_after"]["phone_number"] == person.FIXED_PHONE
    # The address she was matched by is left as Malomo has it.
    assert malomo_r.data["customer_after"]["email"] == "JANE.CITIZEN@example.com"
    assert again.data["outcome"] == "unchanged" and again.data["changes"] == []
    assert capillary_r.data["outcome"] == "updated"
    assert capillary_r.data["customer_after"]["profiles"][0]["firstName"] == "Janet"
    # The vendors' end state: one PUT each, nothing else written.
    api = sandboxes.apis["malomo"]
    assert api.writes == [("PUT", sandboxes.ids["malomo"])]
    assert api._find(sandboxes.ids["malomo"])["phone_number"] == person.FIXED_PHONE
    assert sandboxes.apis["capillary"].updates == [int(sandboxes.ids["capillary"])]
    assert sandboxes.apis["capillary"].merges == []
    results = by_vendor(found)
    assert results[("malomo", "email")]["customers"][0]["phone_number"] == person.FIXED_PHONE


def test_a_write_the_vendor_refuses_is_rejected_with_its_reason(sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs("malomo"), [
        ("update_customer", {"vendor": "malomo", "match": {"id": sandboxes.ids["malomo"]},
                             "changes": {"email": "not-an-address"}, "apply": True}),
    ], "--allow-writes")
    result = seen.results[0].data
    assert (result["outcome"], result["applied"]) == ("rejected", False)
    assert "HTTP 400" in result["reason"]
    assert "email is not a valid email address" in result["reason"]
    assert sandboxes.apis["malomo"].writes == []


def test_no_customer_with_the_key_is_not_found_and_nothing_is_sent(
        sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs("capillary"), [
        ("update_customer", {"vendor": "capillary", "match": {"mobile": "910000000001"},
                             "changes": {"firstName": "Janet"}, "apply": True}),
    ], "--allow-writes")
    result = seen.results[0].data
    assert (result["outcome"], result["applied"]) == ("not_found", False)
    assert result["not_applied_because"] == (
        "no Capillary customer has this mobile: nothing was sent")
    assert sandboxes.writes("capillary") == []


# --- bad arguments, bad config, privacy --------------------------------------------------

@pytest.mark.parametrize(("tool", "arguments", "says"), [
    ("find_customer", {}, "Give at least one of email, phone or identifier."),
    ("find_customer", {"email": "jane"}, "email must be an e-mail address (name@domain)."),
    ("find_customer", {"email": person.EMAIL, "vendors": ["shopify"]},
     "Vendor 'shopify' is not configured on this server; it has: okendo, loke, malomo, "
     "capillary."),
    ("find_customer", {"identifier": {"name": "externalId"}}, "validation error"),
    ("get_customer", {"vendor": "okendo", "id": ""}, "id must be the vendor's customer id"),
    ("customer_activity", {"vendor": "loke", "id": "x", "limit": 0},
     "limit must be between 1 and 500."),
    ("update_customer", {"vendor": "okendo", "match": {"email": person.EMAIL},
                         "changes": {"givenName": "J"}},
     "Okendo takes no writes here; update_customer writes to: malomo, capillary."),
    ("update_customer", {"vendor": "malomo", "match": {"phone_number": "555"},
                         "changes": {"first_name": "J"}},
     "Malomo matches customers by id, email, not 'phone_number'."),
    ("update_customer", {"vendor": "malomo", "match": {"email": person.EMAIL},
                         "changes": {"nickname": "J"}},
     "Malomo customers have no writable field 'nickname'; the fields are: first_name, "
     "last_name, phone_number."),
    ("update_customer", {"vendor": "capillary", "match": {"mobile": person.MOBILE},
                         "changes": {"loyaltyType": "gold"}},
     "changes.loyaltyType must be one of: loyalty, non_loyalty."),
    ("update_customer", {"vendor": "malomo", "match": {"email": person.EMAIL},
                         "changes": {}}, "changes is empty"),
])
def test_bad_arguments_are_tool_errors_that_say_what_to_fix(
        sandboxes: Sandboxes, tool: str, arguments: dict[str, Any], says: str) -> None:
    seen = session(sandboxes.configs(), [(tool, arguments)], "--allow-writes")
    result = seen.results[0]
    assert result.is_error
    assert says in result.text
    assert "Traceback" not in result.text
    assert sandboxes.writes("malomo") == [] and sandboxes.writes("capillary") == []


@pytest.mark.parametrize(("config", "says"), [
    ({"vendor": "shopify"}, "config field 'vendor' is 'shopify'; it must be one of: "
                            "capillary, loke, malomo, okendo."),
    ({"vendor": "malomo"}, "api_key"),
])
def test_a_bad_config_stops_the_server_with_a_clear_error(config: dict[str, Any],
                                                          says: str) -> None:
    import subprocess

    with mcp_client.config_files(config) as paths:
        done = subprocess.run([mcp_client.EXECUTABLE, "--config", paths[0]], input="",
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_log_masks_personal_data_and_nothing_carries_a_secret(
        sandboxes: Sandboxes) -> None:
    seen = session(sandboxes.configs(), [
        ("find_customer", {"email": person.EMAIL}),
        ("find_customer", {"phone": person.PHONE}),
        ("update_customer", {"vendor": "malomo", "match": {"email": person.EMAIL},
                             "changes": {"phone_number": person.FIXED_PHONE}}),
    ])
    assert "find_customer by email j***@example.com" in seen.stderr
    for personal in (person.EMAIL, person.PHONE, person.MOBILE, person.FIXED_PHONE,
                     person.MALOMO_PHONE):
        assert personal not in seen.stderr
    answers = json.dumps([r.data for r in seen.results]) + seen.stderr
    for module in MODULES.values():
        for secret in module.SECRETS:
            assert secret not in answers
    # The results carry the personal data: that is their purpose.
    assert person.EMAIL in json.dumps(seen.results[0].data)
