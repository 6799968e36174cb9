"""LOKE end to end: the installed CLI against the LOKE sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integration_tests.cli import Output, assert_same_keys, catalog_for, run, spec_branch, sync
from integration_tests.sandbox import loke
from integration_tests.sandbox.server import Server


@pytest.fixture
def api() -> loke.Api:
    # Small pages keep each test to a few hundred requests; the documented sizes are
    # exercised by test_full_refresh_returns_exactly_the_sandbox_records.
    return loke.Api(customers=150, page_size=50)


@pytest.fixture
def url(serve: Callable[[loke.Api], Server], api: loke.Api) -> str:
    return serve(api).url


def expected_memberships(api: loke.Api) -> list[tuple[str, str]]:
    return [(cid, m["id"]) for cid, lists in api.memberships.items() for m in lists]


def read_all(url: str, incremental: bool = False, state: list[dict[str, Any]] | None = None,
             streams: tuple[str, ...] = (), **config: Any) -> Output:
    return sync(loke.config(url, **config), *streams, incremental=incremental, state=state)


def test_spec_covers_loke_fields_without_config() -> None:
    branch = spec_branch("loke")
    assert {"organization_id", "credentials", "base_url", "start_date"} <= set(branch["properties"])
    assert set(branch["required"]) == {"vendor", "organization_id", "credentials"}


def test_check_succeeds_with_access_token(url: str) -> None:
    assert run("check", loke.config(url)).connection_status["status"] == "SUCCEEDED"


def test_check_succeeds_with_client_credentials(url: str, api: loke.Api) -> None:
    output = run("check", loke.config(url, credentials=loke.client_credentials(url)))
    assert output.connection_status["status"] == "SUCCEEDED"
    assert api.issued_tokens == 1


def test_check_with_wrong_token_fails_readably_and_never_shows_it(url: str) -> None:
    wrong = "not-the-token-0f9e8d7c"
    output = run("check", loke.config(url, credentials={"auth_type": "access_token",
                                                          "access_token": wrong}))
    assert output.returncode == 0
    assert output.connection_status["status"] == "FAILED"
    assert "rejected the credentials" in output.connection_status["message"]
    assert "Traceback" not in output.stdout
    assert wrong not in output.text


def test_check_with_token_of_another_organization_fails(url: str) -> None:
    output = run("check", loke.config(url, credentials={"auth_type": "access_token",
                                                          "access_token": loke.OTHER_ORG_TOKEN}))
    assert output.connection_status["status"] == "FAILED"
    assert "organization" in output.connection_status["message"]
    assert loke.OTHER_ORG_TOKEN not in output.text


def test_check_with_unknown_organization_fails(url: str) -> None:
    output = run("check", loke.config(url, organization_id="01NOSUCHORG"))
    assert output.connection_status["status"] == "FAILED"
    assert "no organization 01NOSUCHORG" in output.connection_status["message"]


def test_check_with_wrong_client_secret_fails_without_traceback_or_secret(url: str) -> None:
    credentials = {**loke.client_credentials(url), "client_secret": "wrong-secret-4a4a"}
    output = run("check", loke.config(url, credentials=credentials))
    assert output.connection_status["status"] == "FAILED"
    message = output.connection_status["message"]
    assert "rejected the client credentials" in message and "invalid_client" in message
    assert "Traceback" not in output.stdout
    assert "wrong-secret-4a4a" not in output.text


def test_config_without_organization_names_the_field(url: str) -> None:
    config = loke.config(url)
    del config["organization_id"]
    output = run("check", config)
    assert output.connection_status["status"] == "FAILED"
    assert "organization_id" in output.connection_status["message"]


def test_discover_lists_streams_keys_and_cursor(url: str) -> None:
    (message,) = run("discover", loke.config(url)).of_type("CATALOG")
    streams = {s["name"]: s for s in message["catalog"]["streams"]}
    assert streams["customers"]["source_defined_primary_key"] == [["id"]]
    assert streams["customers"]["default_cursor_field"] == ["updatedAt"]
    assert "incremental" in streams["customers"]["supported_sync_modes"]
    assert streams["customer_memberships"]["source_defined_primary_key"] == [["customerId"], ["id"]]


@pytest.mark.parametrize("form", ["path", "url", "alternate"])
def test_full_refresh_returns_exactly_the_sandbox_records(
        serve: Callable[[loke.Api], Server], form: str) -> None:
    api = loke.Api(customers=1200, with_memberships=40, next_page_form=form)
    output = read_all(serve(api).url)
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in api.customers])
    assert_same_keys(output.keys("customer_memberships", "customerId", "id"),
                     expected_memberships(api))
    by_id = {c["id"]: c for c in output.records("customers")}
    for customer in api.customers[:50]:  # values arrive as sent, unicode and all
        assert by_id[customer["id"]] == customer


def test_client_credentials_token_is_fetched_once_per_sync(url: str, api: loke.Api) -> None:
    output = read_all(url, credentials=loke.client_credentials(url))
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in api.customers])
    assert_same_keys(output.keys("customer_memberships", "customerId", "id"),
                     expected_memberships(api))
    assert len([r for r in api.requests if r.method == "GET"]) > 150
    # Both streams, and the memberships' own reader of customers, share one token.
    assert api.issued_tokens == 1


def test_expired_token_is_renewed_during_a_sync(serve: Callable[[loke.Api], Server]) -> None:
    api = loke.Api(customers=300, with_memberships=300, token_ttl=2)
    api.latency = 0.004  # a sync of ~600 requests outlives two tokens
    url = serve(api).url
    output = read_all(url, credentials=loke.client_credentials(url), num_workers=1)
    assert_same_keys(output.keys("customer_memberships", "customerId", "id"),
                     expected_memberships(api))
    assert api.issued_tokens >= 2


def test_incremental_read_with_previous_state_emits_only_changed(url: str, api: loke.Api) -> None:
    first = read_all(url, incremental=True)
    assert_same_keys(first.keys("customers", "id"), [c["id"] for c in api.customers])
    newest = max(c["updatedAt"] for c in api.customers)
    (customers_state,) = [s for s in first.final_state()
                          if s["stream"]["stream_descriptor"]["name"] == "customers"]
    assert customers_state["stream"]["stream_state"] == {"updatedAt": newest}

    changed = api.touch(5)
    before = len(api.requests)
    second = read_all(url, incremental=True, state=first.final_state(), streams=("customers",))
    # Customers updated in the very second of the saved cursor come again: the API's
    # timestamps have one-second resolution, so "after" would lose same-second updates.
    boundary = [c["id"] for c in api.customers if c["updatedAt"] == newest]
    assert_same_keys(second.keys("customers", "id"), changed + boundary)
    # The newest-first feed stops at the saved cursor: one page of two was read.
    assert len(api.requests) - before == 1


def test_first_incremental_sync_honours_start_date(url: str, api: loke.Api) -> None:
    start = "2024-06-01T00:00:00Z"
    output = read_all(url, incremental=True, start_date=start)
    assert_same_keys(output.keys("customers", "id"),
                     [c["id"] for c in api.customers if c["updatedAt"] >= start])


def test_faults_are_retried_and_nothing_is_lost(url: str, api: loke.Api) -> None:
    api.set_faults(every=45, kinds=("429", "503", "500", "502"), retry_after="1")
    output = read_all(url)
    assert set(api.faulted) == {"429", "503", "500", "502"}
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in api.customers])
    assert_same_keys(output.keys("customer_memberships", "customerId", "id"),
                     expected_memberships(api))


def test_next_page_on_another_host_fails_and_sends_it_nothing(
        serve: Callable[[loke.Api], Server]) -> None:
    api = loke.Api(customers=1200, next_page_form="url")
    decoy = loke.Api(customers=0)
    api_url, decoy_url = serve(api).url, serve(decoy).url
    api.public_url = decoy_url.replace("127.0.0.1", "localhost")  # another host, same machine
    cfg = loke.config(api_url)
    output = run("read", cfg, catalog_for(run("discover", cfg), "customers"))
    assert output.returncode != 0
    assert any("another host" in e for e in output.errors)
    assert decoy.requests == []
