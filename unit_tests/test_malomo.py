"""Malomo: one test per documented behaviour (docs/malomo.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from airbyte_cdk.models import Status, SyncMode

from conftest import check, ids, read, source, transcript

BASE = "https://api.gomalomo.com"
CUSTOMERS = f"{BASE}/customers"
KEY = "sk_test_secret_5150"


def config(**extra: Any) -> dict[str, Any]:
    return {"vendor": "malomo", "api_key": KEY, **extra}


def customer(n: int, updated: str = "2024-05-01T00:00:00Z") -> dict[str, Any]:
    return {"id": f"c{n:04d}", "first_name": "Zoë", "last_name": "Müller",
            "created_at": "2023-01-01T00:00:00Z", "updated_at": updated}


def event(n: int, created: str = "2024-05-01T00:00:00Z") -> dict[str, Any]:
    return {"id": f"e{n:04d}", "created_at": created, "updated_at": created,
            "label": f"Order #{n} fulfilled", "type": "ShopifyOrderFulfilled",
            "properties": {"shopify_order": {"id": "5555555555555"}}, "timestamp": 1548855000}


def paged(items: list[dict[str, Any]], size: int = 2) -> Callable[..., list[dict[str, Any]]]:
    """Malomo's paging as docs/malomo.md assumes it: `next=<id>` gives the records after that id."""
    def respond(request: Any, context: Any) -> list[dict[str, Any]]:
        after = parse_qs(urlsplit(request.url).query).get("next", [None])[0]
        start = 0 if after is None else [i["id"] for i in items].index(after) + 1
        return items[start:start + size]
    return respond


def malomo_error(status: int, message: str, request_id: str = "req_abc123") -> dict[str, Any]:
    return {"status_code": status, "json": {"code": "error", "message": message,
                                            "request_id": request_id, "status": status}}


def queries(requests_mock: Any, url: str) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(r.url).query) for r in requests_mock.request_history
            if r.url.split("?")[0] == url]


def test_manifest_is_valid_and_offers_both_streams_incrementally() -> None:
    streams = {s.name: s for s in source(config()).discover(None, config()).streams}  # type: ignore[arg-type]
    assert streams["customers"].default_cursor_field == ["updated_at"]
    assert streams["customer_events"].default_cursor_field == ["created_at"]
    assert streams["customer_events"].source_defined_primary_key == [["id"]]
    assert SyncMode.incremental in streams["customer_events"].supported_sync_modes


def test_requests_carry_bearer_key_and_version_2_accept_header(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1)]))
    assert ids(read(config(), "customers"), "customers", "id") == ["c0001"]
    sent = requests_mock.request_history[0]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["Accept"] == "application/vnd.malomo+json; version=2"


def test_next_is_the_last_record_id_and_an_empty_page_ends(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(n) for n in range(5)]))
    output = read(config(), "customers")
    assert ids(output, "customers", "id") == [f"c{n:04d}" for n in range(5)]
    assert queries(requests_mock, CUSTOMERS) == [
        {}, {"next": ["c0001"]}, {"next": ["c0003"]}, {"next": ["c0004"]}]


def test_paging_goes_on_past_a_page_the_incremental_filter_empties(requests_mock: Any) -> None:
    # Client-side incremental: a page of old customers emits nothing, yet later pages count.
    old, new = "2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z"
    items = [customer(1, old), customer(2, old), customer(3, new)]
    requests_mock.get(CUSTOMERS, json=paged(items))
    output = read(config(), "customers", sync_mode=SyncMode.incremental,
                  state={"customers": {"updated_at": "2024-06-01T00:00:00Z"}})
    assert ids(output, "customers", "id") == ["c0003"]


def test_api_ignoring_the_cursor_stops_with_an_error_instead_of_looping(
        requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=[customer(1), customer(2)])  # the same page every time
    output = read(config(), "customers")
    assert requests_mock.call_count == 2
    assert "ignored the paging cursor" in output.get_formatted_error_message()


def test_a_page_whose_last_record_has_no_id_fails_rather_than_skip(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=[customer(1), {"email": "no-id@example.com"}])
    output = read(config(), "customers")
    assert "without its primary key 'id'" in output.get_formatted_error_message()
    assert not output.records


def test_customers_incremental_keeps_updated_at_or_after_the_state(requests_mock: Any) -> None:
    items = [customer(1, "2024-05-31T23:59:59Z"), customer(2, "2024-06-01T00:00:00Z"),
             customer(3, "2024-06-02T00:00:00Z")]
    requests_mock.get(CUSTOMERS, json=paged(items))
    output = read(config(), "customers", sync_mode=SyncMode.incremental,
                  state={"customers": {"updated_at": "2024-06-01T00:00:00Z"}})
    # The boundary second is sent again: at least once, never lost.
    assert ids(output, "customers", "id") == ["c0002", "c0003"]
    assert output.most_recent_state.stream_state.updated_at == "2024-06-02T00:00:00Z"


def test_first_incremental_sync_honours_start_date(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1, "2023-01-01T00:00:00Z"),
                                             customer(2, "2024-06-02T00:00:00Z")]))
    output = read(config(start_date="2024-01-01T00:00:00Z"), "customers",
                  sync_mode=SyncMode.incremental)
    assert ids(output, "customers", "id") == ["c0002"]


def test_events_carry_customer_id_and_page_by_next(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1), customer(2)]))
    requests_mock.get(f"{CUSTOMERS}/c0001/events", json=paged([event(n) for n in range(3)]))
    requests_mock.get(f"{CUSTOMERS}/c0002/events", json=paged([]))
    output = read(config(), "customer_events")
    assert sorted(ids(output, "customer_events", "customer_id", "id")) == [
        ("c0001", "e0000"), ("c0001", "e0001"), ("c0001", "e0002")]
    assert queries(requests_mock, f"{CUSTOMERS}/c0001/events")[1] == {"next": ["e0001"]}


def test_event_values_arrive_as_sent_with_epoch_timestamp(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1)]))
    requests_mock.get(f"{CUSTOMERS}/c0001/events", json=paged([event(1)]))
    output = read(config(), "customer_events")
    (record,) = [m.record.data for m in output.records if m.record]
    assert record == {**event(1), "customer_id": "c0001"}
    assert isinstance(record["timestamp"], int)


def test_events_incremental_state_is_kept_per_customer(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1), customer(2)]))
    requests_mock.get(f"{CUSTOMERS}/c0001/events", json=paged(
        [event(1, "2024-03-01T00:00:00Z"), event(2, "2024-06-01T00:00:00Z")]))
    requests_mock.get(f"{CUSTOMERS}/c0002/events", json=paged(
        [event(3, "2024-03-01T00:00:00Z"), event(4, "2024-04-01T00:00:00Z")]))
    state = {"states": [
        {"partition": {"customer_id": "c0001", "parent_slice": {}},
         "cursor": {"created_at": "2024-05-01T00:00:00Z"}},
        {"partition": {"customer_id": "c0002", "parent_slice": {}},
         "cursor": {"created_at": "2024-02-01T00:00:00Z"}}]}
    output = read(config(), "customer_events", sync_mode=SyncMode.incremental,
                  state={"customer_events": state})
    assert sorted(ids(output, "customer_events", "id")) == ["e0002", "e0003", "e0004"]


def test_events_of_customers_not_updated_since_start_date_are_still_read(
        requests_mock: Any) -> None:
    # start_date filters events by created_at; it must not drop their customer as a parent.
    requests_mock.get(CUSTOMERS, json=paged([customer(1, "2023-01-01T00:00:00Z")]))
    requests_mock.get(f"{CUSTOMERS}/c0001/events", json=paged(
        [event(1, "2023-06-01T00:00:00Z"), event(2, "2024-06-01T00:00:00Z")]))
    output = read(config(start_date="2024-01-01T00:00:00Z"), "customer_events",
                  sync_mode=SyncMode.incremental)
    assert ids(output, "customer_events", "id") == ["e0002"]


def test_events_of_a_deleted_customer_are_skipped(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, json=paged([customer(1), customer(2)]))
    requests_mock.get(f"{CUSTOMERS}/c0001/events", **malomo_error(404, "Customer not found"))
    requests_mock.get(f"{CUSTOMERS}/c0002/events", json=paged([event(1)]))
    output = read(config(), "customer_events")
    assert ids(output, "customer_events", "customer_id", "id") == [("c0002", "e0001")]
    assert not output.errors


def test_401_fails_check_about_the_key_quoting_request_id(
        requests_mock: Any, tmp_path: Any) -> None:
    requests_mock.get(CUSTOMERS, **malomo_error(401, "Invalid API key", "req_7f3a"))
    output = check(config(), tmp_path)
    status = output.connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert "rejected the API key" in status.message
    assert "Invalid API key" in status.message
    assert "req_7f3a" in status.message
    assert KEY not in transcript(output)


@pytest.mark.parametrize(("status", "message"), [(400, "Invalid cursor"),
                                                 (403, "Forbidden for this key"),
                                                 (406, "Unsupported API version"),
                                                 (422, "Unprocessable")])
def test_other_4xx_fails_at_once_with_malomo_message_and_request_id(
        requests_mock: Any, status: int, message: str) -> None:
    requests_mock.get(CUSTOMERS, **malomo_error(status, message, "req_9d1e"))
    output = read(config(), "customers")
    assert requests_mock.call_count == 1
    (first, *_) = output.errors
    assert first.trace.error.message == (
        f"Malomo refused the request to {CUSTOMERS} (HTTP {status}): {message}. "
        "Malomo request_id: req_9d1e")


def test_429_is_retried_honouring_retry_after(
        requests_mock: Any, _no_backoff_sleep: list[float]) -> None:
    rate_limited = malomo_error(429, "Too many requests")
    requests_mock.get(CUSTOMERS, [{**rate_limited, "headers": {"Retry-After": "7"}},
                                  {"json": [customer(1)]}, {"json": []}])
    assert ids(read(config(), "customers"), "customers", "id") == ["c0001"]
    # The CDK waits the header's seconds plus one.
    assert any(7 <= w <= 8 for w in _no_backoff_sleep)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(requests_mock: Any, status: int) -> None:
    requests_mock.get(CUSTOMERS, [malomo_error(status, "Something went wrong"),
                                  {"json": [customer(1)]}, {"json": []}])
    assert ids(read(config(), "customers"), "customers", "id") == ["c0001"]


def test_5xx_that_never_clears_fails_quoting_message_and_request_id(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, **malomo_error(503, "Service unavailable", "req_5e5e"))
    output = read(config(), "customers")
    assert requests_mock.call_count == 7  # the first try and six retries
    assert "Malomo had a server error (Service unavailable). Malomo request_id: req_5e5e" in (
        output.errors[0].trace.error.message)


def test_missing_api_key_is_named(tmp_path: Any) -> None:
    incomplete = config()
    del incomplete["api_key"]
    message = check(incomplete, tmp_path).connection_status_messages[0].connectionStatus.message
    assert "api_key" in message


def test_a_key_that_is_not_a_secret_key_is_refused_without_showing_it(tmp_path: Any) -> None:
    output = check(config(api_key="pk_live_publishable_77"), tmp_path)
    status = output.connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert "^sk_" in status.message
    assert "pk_live_publishable_77" not in transcript(output)
