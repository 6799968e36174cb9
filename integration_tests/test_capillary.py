"""Capillary end to end: the installed CLI against the Capillary sandbox over real HTTP."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import pytest
import requests

from integration_tests.cli import Output, assert_same_keys, catalog_for, run
from integration_tests.sandbox import capillary
from integration_tests.sandbox.server import Server

BASIC = "basic"
OAUTH = "oauth"


@pytest.fixture
def api() -> capillary.Api:
    return capillary.Api(customers=60)


@pytest.fixture
def url(serve: Callable[[capillary.Api], Server], api: capillary.Api) -> str:
    return serve(api).url


def credentials(kind: str) -> dict[str, str]:
    if kind == OAUTH:
        return capillary.oauth()
    return {"auth_type": "basic", "username": capillary.USERNAME, "password": capillary.PASSWORD}


def mixed_mobiles(api: capillary.Api, known: int = 12, unknown: int = 4) -> list[str]:
    """Known and unknown mobiles interleaved, with one known number listed twice."""
    mobiles = [str(api.identifier(c, "mobile")) for c in api.customers[:known]]
    missing = capillary.unknown_mobiles(unknown)
    return [*mobiles[:5], *missing[:2], mobiles[0], *mobiles[5:], *missing[2:]]


@functools.cache
def catalog() -> dict[str, Any]:
    """The discovered catalog; it depends on no config value, so one discover serves all."""
    return catalog_for(run("discover", capillary.config("https://eu.api.capillarytech.com")))


def read_all(url: str, kind: str = BASIC, env: dict[str, str] | None = None,
             **config: Any) -> Output:
    cfg = capillary.config(url, credentials=credentials(kind), **config)
    return run("read", cfg, catalog(), env=env)


def expected_record(api: capillary.Api, customer_id: int, name: str, value: str) -> dict[str, Any]:
    (customer,) = [c for c in api.customers if c["id"] == customer_id]
    kept = {k: v for k, v in customer.items() if k != "warnings"}
    return {**kept, "identifierName": name, "identifierValue": value}


def secrets_in(output: Output, api: capillary.Api) -> list[str]:
    issued = tuple(api.tokens)  # the OAuth tokens the sandbox handed out
    return [s[:6] + "..." for s in (*capillary.SECRETS, *issued) if s in output.text]


def test_spec_has_capillary_fields_with_base_url_required() -> None:
    spec = run("spec").of_type("SPEC")[0]["spec"]["connectionSpecification"]
    (branch,) = [b for b in spec["oneOf"] if b["properties"]["vendor"]["const"] == "capillary"]
    assert {"base_url", "credentials", "identifier_name", "identifiers", "source", "account_id",
            "embed", "num_workers"} <= set(branch["properties"])
    assert set(branch["required"]) == {"vendor", "base_url", "credentials", "identifier_name",
                                       "identifiers"}


@pytest.mark.parametrize("kind", [BASIC, OAUTH])
def test_check_succeeds(url: str, kind: str) -> None:
    output = run("check", capillary.config(url, credentials=credentials(kind)))
    assert output.connection_status["status"] == "SUCCEEDED"


@pytest.mark.parametrize("kind", [BASIC, OAUTH])
def test_read_returns_exactly_the_known_customers(url: str, api: capillary.Api, kind: str) -> None:
    mobiles = mixed_mobiles(api)
    output = read_all(url, kind, identifiers=mobiles)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert_same_keys(output.keys("customers", "id"), api.expected_ids("mobile", mobiles))
    for record in output.records("customers"):
        assert record == expected_record(api, record["id"], "mobile", record["identifierValue"])
    # Each unknown number is skipped with a log line; 8015 came with HTTP 200 and with 400.
    skipped = [line for line in output.logs() if "(code 8015)" in line]
    assert len(skipped) == 4
    assert api.misses == 4
    assert not any(m in output.text for m in capillary.unknown_mobiles(4))
    assert secrets_in(output, api) == []


def test_a_malformed_identifier_is_skipped_like_an_unknown_one(url: str,
                                                               api: capillary.Api) -> None:
    mobiles = [*mixed_mobiles(api, known=3, unknown=1), "98x77"]
    output = read_all(url, identifiers=mobiles)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert_same_keys(output.keys("customers", "id"), api.expected_ids("mobile", mobiles))
    assert len([line for line in output.logs() if "(code 8013)" in line]) == 1
    assert len([line for line in output.logs() if "(code 8015)" in line]) == 1
    assert "98x77" not in output.text


def test_emails_and_external_ids_with_leading_zeros(url: str, api: capillary.Api) -> None:
    with_ids = [c for c in api.customers if api.identifier(c, "externalId")][:8]
    external_ids = [str(api.identifier(c, "externalId")) for c in with_ids]
    output = read_all(url, identifier_name="externalId", identifiers=external_ids)
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in with_ids])
    assert sorted(output.keys("customers", "identifierValue")) == sorted(external_ids)
    assert all(value.startswith("00") for value in output.keys("customers", "identifierValue"))

    emails = [str(api.identifier(c, "email")) for c in api.customers if api.identifier(c, "email")]
    output = read_all(url, identifier_name="email", identifiers=emails[:10])
    assert_same_keys(output.keys("customers", "id"), api.expected_ids("email", emails[:10]))


def test_other_source_needs_its_account_id(url: str, api: capillary.Api) -> None:
    martjack = [c for c in api.customers if len(c["profiles"]) > 1]
    ids = [str(api.identifier(c, "martjackId")) for c in martjack]
    output = read_all(url, identifier_name="martjackId", identifiers=ids, source="MARTJACK",
                      account_id=capillary.ACCOUNT_ID, embed=["mlp", "segments"])
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in martjack])
    records = output.records("customers")
    assert all(r["segments"] for r in records)
    # The programs each customer is enrolled in (loyalty customers are, in the sandbox's seed).
    assert {r["id"]: [p["programId"] for p in r["loyaltyProgramDetails"]] for r in records} == {
        c["id"]: [p["programId"] for p in api.programs(c)] for c in martjack}
    assert any(r["loyaltyProgramDetails"] for r in records)

    without = read_all(url, identifier_name="martjackId", identifiers=ids, source="MARTJACK")
    assert without.returncode == 0
    assert without.records("customers") == []
    assert any("need account_id" in line for line in without.logs())


@pytest.mark.parametrize(("kind", "faults"), [
    (BASIC, ["461", "521", "429", "503"]),
    # The token request meets a 503 first; "" lets a request through.
    (OAUTH, ["503", "", "461", "521", "429"]),
])
def test_busy_statuses_are_retried_and_nothing_is_lost(
        url: str, api: capillary.Api, kind: str, faults: list[str]) -> None:
    api.set_faults(scheduled=list(faults), retry_after="1")
    mobiles = mixed_mobiles(api, known=8, unknown=2)
    output = read_all(url, kind, identifiers=mobiles)
    assert output.returncode == 0, output.errors
    assert api.faulted == [f for f in faults if f]
    assert_same_keys(output.keys("customers", "id"), api.expected_ids("mobile", mobiles))


def test_rate_limit_without_retry_after_is_waited_out(
        serve: Callable[[capillary.Api], Server]) -> None:
    api = capillary.Api(customers=20, per_window=6, rate_window=1.0)
    mobiles = [str(api.identifier(c, "mobile")) for c in api.customers[:12]]
    output = read_all(serve(api).url, identifiers=mobiles, num_workers=3)
    assert output.returncode == 0, output.errors
    assert_same_keys(output.keys("customers", "id"), api.expected_ids("mobile", mobiles))
    assert len(api.requests) > len(mobiles)  # some lookups were refused and asked again


def test_oauth_token_is_renewed_during_a_sync(serve: Callable[[capillary.Api], Server]) -> None:
    api = capillary.Api(customers=150, token_ttl=1)
    api.latency = 0.01  # a sync of 150 lookups outlives two tokens
    mobiles = [str(api.identifier(c, "mobile")) for c in api.customers]
    output = read_all(serve(api).url, OAUTH, identifiers=mobiles, num_workers=1)
    assert output.returncode == 0, output.errors
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in api.customers])
    assert api.issued_tokens >= 2
    assert secrets_in(output, api) == []


def test_other_body_error_fails_the_sync_with_capillarys_code(url: str, api: capillary.Api) -> None:
    api.set_faults(scheduled=["200-error"])
    output = read_all(url, identifiers=mixed_mobiles(api, known=1, unknown=0), num_workers=1)
    assert output.returncode != 0
    assert any("8003 Request could not be processed" in e for e in output.errors)

    invalid = read_all(url, source="NOWHERE")
    assert invalid.returncode != 0
    assert any("8003 Invalid source 'NOWHERE'" in e for e in invalid.errors)


def test_wrong_password_fails_check_readably_and_never_shows_it(url: str) -> None:
    wrong = "not-the-till-password-1e5"
    output = run("check", capillary.config(url, credentials={
        "auth_type": "basic", "username": capillary.USERNAME, "password": wrong}))
    status = output.connection_status
    assert status["status"] == "FAILED"
    assert "rejected the credentials" in status["message"]
    assert "Traceback" not in output.stdout
    digest = capillary.md5(wrong)
    header = capillary.basic_header(capillary.USERNAME, wrong)
    assert [s for s in (wrong, digest, header) if s in output.text] == []


@pytest.mark.parametrize("token_error_status", [401, 200])
def test_wrong_client_secret_fails_check_readably_and_never_shows_it(
        serve: Callable[[capillary.Api], Server], token_error_status: int) -> None:
    url = serve(capillary.Api(customers=10, token_error_status=token_error_status)).url
    wrong = "wrong-client-secret-3b3b"
    output = run("check", capillary.config(url, credentials={**capillary.oauth(),
                                                              "client_secret": wrong}))
    status = output.connection_status
    assert status["status"] == "FAILED"
    assert "did not issue an OAuth token (401: Invalid client key or secret)" in status["message"]
    assert "Traceback" not in output.stdout
    assert wrong not in output.text


def test_till_without_api_v2_access_fails_check_saying_so(url: str) -> None:
    output = run("check", capillary.config(url, credentials={
        "auth_type": "basic", "username": capillary.NO_V2_USERNAME,
        "password": capillary.NO_V2_PASSWORD}))
    assert output.connection_status["status"] == "FAILED"
    assert "API v2 access is not enabled" in output.connection_status["message"]


@pytest.mark.parametrize("kind", [BASIC, OAUTH])
def test_debug_logs_show_no_password_md5_header_or_token(
        url: str, api: capillary.Api, kind: str) -> None:
    debug = {**os.environ, "LOG_LEVEL": "debug"}
    output = read_all(url, kind, env=debug, identifiers=mixed_mobiles(api, known=3, unknown=1))
    assert output.returncode == 0
    assert "Making outbound API request" in output.text  # the request headers were logged
    assert secrets_in(output, api) == []


def test_customer_updated_through_put_lookup_is_read_back(url: str, api: capillary.Api) -> None:
    """The sandbox's `PUT /v2/customers/lookup` (what a destination would send) and a re-read."""
    mobile = str(api.identifier(api.customers[3], "mobile"))
    answer = requests.put(
        f"{url}/v2/customers/lookup",
        params={"source": "INSTORE", "identifierName": "mobile", "identifierValue": mobile},
        json={"loyaltyType": "loyalty", "extendedFields": {"gender": "Female"},
              "profiles": [{"firstName": "Chloé", "fields": {"city": "Zürich"}}]},
        headers={"Authorization": "Basic " + capillary.basic_header(capillary.USERNAME,
                                                                    capillary.PASSWORD)},
        timeout=10)
    assert answer.status_code == 200
    (record,) = read_all(url, identifiers=[mobile]).records("customers")
    assert record["profiles"][0]["firstName"] == "Chloé"
    assert record["profiles"][0]["fields"]["city"] == "Zürich"
    assert record["extendedFields"]["gender"] == "Female"
