"""Malomo end to end: the installed CLI against the Malomo sandbox over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from integration_tests.cli import Output, assert_same_keys, catalog_for, run, spec_branch, sync
from integration_tests.sandbox import malomo
from integration_tests.sandbox.server import Server


@pytest.fixture
def api() -> malomo.Api:
    # Small pages, so that both streams page several times: customers by 25, events by 2.
    return malomo.Api(customers=120, page_size=25, event_page_size=2)


@pytest.fixture
def url(serve: Callable[[malomo.Api], Server], api: malomo.Api) -> str:
    return serve(api).url


def customer_ids(api: malomo.Api) -> list[str]:
    return [c["id"] for c in api.customers]


def read_all(url: str, incremental: bool = False, state: list[dict[str, Any]] | None = None,
             **config: Any) -> Output:
    return sync(malomo.config(url, **config), incremental=incremental, state=state)


def test_spec_covers_malomo_fields_without_config() -> None:
    branch = spec_branch("malomo")
    assert {"api_key", "base_url", "start_date", "num_workers"} <= set(branch["properties"])
    assert branch["properties"]["api_key"]["airbyte_secret"] is True
    assert set(branch["required"]) == {"vendor", "api_key"}


def test_sandbox_refuses_a_request_without_the_version_header(url: str) -> None:
    # So every successful read below also proves the connector sends it.
    request = urllib.request.Request(url + "/customers",
                                     headers={"Authorization": f"Bearer {malomo.API_KEY}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 406


def test_check_succeeds_with_the_secret_key(url: str) -> None:
    assert run("check", malomo.config(url)).connection_status["status"] == "SUCCEEDED"


def test_check_with_wrong_key_fails_about_the_key_quoting_request_id(
        url: str, api: malomo.Api) -> None:
    wrong = "sk_not_the_key_0f9e8d7c"
    output = run("check", malomo.config(url, api_key=wrong))
    assert output.returncode == 0
    status = output.connection_status
    assert status["status"] == "FAILED"
    assert "rejected the API key" in status["message"]
    assert api.errors[-1]["request_id"] in status["message"]
    assert "Traceback" not in output.stdout
    assert wrong not in output.text


def test_check_with_a_publishable_key_is_refused_before_any_request(
        url: str, api: malomo.Api) -> None:
    output = run("check", malomo.config(url, api_key=malomo.PUBLISHABLE_KEY))
    assert output.connection_status["status"] == "FAILED"
    assert "'api_key' must be a secret key" in output.connection_status["message"]
    assert api.requests == []
    assert malomo.PUBLISHABLE_KEY not in output.text


def test_discover_lists_streams_keys_cursors_and_types(url: str) -> None:
    (message,) = run("discover", malomo.config(url)).of_type("CATALOG")
    streams = {s["name"]: s for s in message["catalog"]["streams"]}
    assert streams["customers"]["source_defined_primary_key"] == [["id"]]
    assert streams["customers"]["default_cursor_field"] == ["updated_at"]
    events = streams["customer_events"]
    assert events["source_defined_primary_key"] == [["id"]]
    assert events["default_cursor_field"] == ["created_at"]
    assert "incremental" in events["supported_sync_modes"]
    properties = events["json_schema"]["properties"]
    assert "integer" in properties["timestamp"]["type"]
    assert "object" in properties["properties"]["type"]


def test_full_read_with_faults_returns_exactly_the_sandbox_records(
        url: str, api: malomo.Api) -> None:
    # A handful of faults over ~270 requests: a 5xx costs a few seconds of backoff.
    api.set_faults(every=60, kinds=("429", "503", "429", "500"), retry_after="1")
    output = read_all(url)
    assert_same_keys(output.keys("customers", "id"), customer_ids(api))
    assert_same_keys(output.keys("customer_events", "customer_id", "id"), api.all_events())
    assert sorted(api.faulted) == ["429", "429", "500", "503"]
    by_id = {c["id"]: c for c in output.records("customers")}
    for customer in api.customers:  # values arrive as sent, unicode and all
        assert by_id[customer["id"]] == customer
    events = {e["id"]: e for e in output.records("customer_events")}
    for cid, sent in list(api.events.items())[:40]:
        for event in sent:
            assert events[event["id"]] == {**event, "customer_id": cid}
    assert malomo.API_KEY not in output.text


def test_second_read_with_state_emits_only_what_changed(url: str, api: malomo.Api) -> None:
    first = read_all(url, incremental=True)
    assert_same_keys(first.keys("customers", "id"), customer_ids(api))
    assert_same_keys(first.keys("customer_events", "customer_id", "id"), api.all_events())
    newest = max(c["updated_at"] for c in api.customers)
    (customers_state,) = [s for s in first.final_state()
                          if s["stream"]["stream_descriptor"]["name"] == "customers"]
    assert customers_state["stream"]["stream_state"] == {"updated_at": newest}
    # What sync 1 saw last: the customers updated in the saved second, and each customer's
    # events created in the second of its own saved cursor, come again (at least once).
    boundary_customers = [c["id"] for c in api.customers if c["updated_at"] == newest]
    boundary_events = []
    for cid, events in api.events.items():
        latest = max((e["created_at"] for e in events), default=None)
        boundary_events += [(cid, e["id"]) for e in events if e["created_at"] == latest]

    touched = api.touch(3)
    added = api.add_events(4)
    newcomer = api.add_customer(events=1)
    second = read_all(url, incremental=True, state=first.final_state())

    assert_same_keys(second.keys("customers", "id"), [*touched, newcomer, *boundary_customers])
    assert_same_keys(second.keys("customer_events", "customer_id", "id"),
                     [*added, (newcomer, api.events[newcomer][0]["id"]), *boundary_events])


def test_first_incremental_sync_honours_start_date(url: str, api: malomo.Api) -> None:
    start = "2024-03-01T00:00:00Z"
    output = read_all(url, incremental=True, start_date=start)
    assert_same_keys(output.keys("customers", "id"),
                     [c["id"] for c in api.customers if c["updated_at"] >= start])
    # Events are filtered by their own created_at, whatever their customer's updated_at.
    assert_same_keys(output.keys("customer_events", "customer_id", "id"),
                     [(cid, e["id"]) for cid, events in api.events.items() for e in events
                      if e["created_at"] >= start])


def test_api_ignoring_the_cursor_fails_fast_with_a_readable_error(
        serve: Callable[[malomo.Api], Server]) -> None:
    api = malomo.Api(customers=60, page_size=25, ignore_cursor=True)
    cfg = malomo.config(serve(api).url)
    output = run("read", cfg, catalog_for(run("discover", cfg), "customers"))
    assert output.returncode != 0
    assert any("ignored the paging cursor" in e for e in output.errors), output.errors
    # The first page, the same page again, and nothing more.
    assert len([r for r in api.requests if r.path == "/customers"]) == 2


def test_a_refusal_fails_at_once_quoting_malomo_message_and_request_id(
        url: str, api: malomo.Api) -> None:
    api.set_faults(scheduled=["403"])
    cfg = malomo.config(url)
    output = run("read", cfg, catalog_for(run("discover", cfg), "customers"))
    assert output.returncode != 0
    (sent,) = api.errors
    assert any("This API key may not read customers" in e and sent["request_id"] in e
               for e in output.errors), json.dumps(output.errors)
    assert len(api.requests) == 1
