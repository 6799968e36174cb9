"""LOKE: one test per documented behaviour (docs/loke.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from airbyte_cdk.models import Status, SyncMode

from conftest import check, ids, read, transcript

BASE = "https://api.loke.global"
ORG = "01ORG"
CUSTOMERS = f"{BASE}/organizations/{ORG}/customers"
TOKEN = "tok-secret-1234"


def config(**extra: Any) -> dict[str, Any]:
    return {"vendor": "loke", "organization_id": ORG,
            "credentials": {"auth_type": "access_token", "access_token": TOKEN}, **extra}


def customer(n: int, updated: str = "2024-05-01T00:00:00Z") -> dict[str, Any]:
    return {"id": f"C{n:04d}", "firstName": "Zoë", "lastName": "Müller", "updatedAt": updated}


def page(items: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"json": items, "headers": {"X-Next-Page": next_page} if next_page else {}}


def test_customers_sent_with_bearer_token_and_sort_updated(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, **page([customer(1)]))
    output = read(config(), "customers")
    assert ids(output, "customers", "id") == ["C0001"]
    sent = requests_mock.request_history[0]
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert parse_qs(urlsplit(sent.url).query) == {"sort": ["updated"]}


def test_x_next_page_as_absolute_path_is_followed(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, [page([customer(1)], f"/organizations/{ORG}/customers?after=abc"),
                                  page([customer(2)])])
    output = read(config(), "customers")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    assert requests_mock.request_history[1].url.startswith(CUSTOMERS + "?after=abc")


def test_x_next_page_as_absolute_url_is_followed(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, [page([customer(1)], f"{CUSTOMERS}?after=abc"),
                                  page([customer(2)])])
    output = read(config(), "customers")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]


def test_x_next_page_header_name_in_lower_case_is_followed(requests_mock: Any) -> None:
    first = {"json": [customer(1)],
             "headers": {"x-next-page": f"/organizations/{ORG}/customers?after=z"}}
    requests_mock.get(CUSTOMERS, [first, page([customer(2)])])
    assert ids(read(config(), "customers"), "customers", "id") == ["C0001", "C0002"]


def test_next_page_on_another_host_is_refused_and_gets_no_token(requests_mock: Any) -> None:
    evil = requests_mock.get("https://evil.example/steal", json=[])
    requests_mock.get(CUSTOMERS, **page([customer(1)], "https://evil.example/steal"))
    output = read(config(), "customers")
    assert not evil.called
    assert "another host" in output.get_formatted_error_message()


def test_next_page_that_repeats_the_page_asked_before_a_redirect_stops_with_error(
        requests_mock: Any) -> None:
    moved = f"{CUSTOMERS}?sort=updated&moved=1"
    requests_mock.get(f"{CUSTOMERS}?sort=updated", status_code=307, headers={"Location": moved})
    requests_mock.get(moved, **page([customer(1)], f"{CUSTOMERS}?sort=updated"))
    output = read(config(), "customers")
    assert requests_mock.call_count == 2
    assert "same next-page link" in output.get_formatted_error_message()


def test_next_page_that_repeats_stops_with_error(requests_mock: Any) -> None:
    loop = f"{CUSTOMERS}?after=same"
    requests_mock.get(CUSTOMERS, **page([customer(1)], loop))
    output = read(config(), "customers")
    assert requests_mock.call_count == 2
    assert "same next-page link" in output.get_formatted_error_message()


def test_incremental_stops_paging_once_past_saved_cursor(requests_mock: Any) -> None:
    newer = [customer(1, "2024-06-02T00:00:00Z"), customer(2, "2024-06-01T00:00:00Z")]
    older = [customer(3, "2024-04-01T00:00:00Z")]
    requests_mock.get(CUSTOMERS, [page(newer + older, "/next-1"),
                                  page([customer(4, "2020-01-01T00:00:00Z")])])
    output = read(config(), "customers", sync_mode=SyncMode.incremental,
                  state={"customers": {"updatedAt": "2024-05-01T00:00:00Z"}})
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    assert requests_mock.call_count == 1
    assert output.most_recent_state.stream_state.updatedAt == "2024-06-02T00:00:00Z"


def test_first_incremental_sync_honours_start_date(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, **page([customer(1, "2024-06-02T00:00:00Z"),
                                         customer(2, "2023-01-01T00:00:00Z")]))
    output = read(config(start_date="2024-01-01T00:00:00Z"), "customers",
                  sync_mode=SyncMode.incremental)
    assert ids(output, "customers", "id") == ["C0001"]


def test_memberships_carry_customer_id_and_page_by_x_next_page(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, **page([customer(1), customer(2)]))
    lists = [{"id": f"L{n}", "name": "Loyal Customers"} for n in range(12)]
    requests_mock.get(f"{CUSTOMERS}/C0001/memberships",
                      [page(lists[:10],
                            f"/organizations/{ORG}/customers/C0001/memberships?after=x"),
                       page(lists[10:])])
    requests_mock.get(f"{CUSTOMERS}/C0002/memberships", **page([]))
    output = read(config(), "customer_memberships")
    assert sorted(ids(output, "customer_memberships", "customerId", "id")) == sorted(
        ("C0001", f"L{n}") for n in range(12))


def test_memberships_of_a_deleted_customer_are_skipped(requests_mock: Any) -> None:
    requests_mock.get(CUSTOMERS, **page([customer(1), customer(2)]))
    requests_mock.get(f"{CUSTOMERS}/C0001/memberships", status_code=404)
    requests_mock.get(f"{CUSTOMERS}/C0002/memberships", **page([{"id": "L1", "name": "VIP"}]))
    output = read(config(), "customer_memberships")
    assert ids(output, "customer_memberships", "customerId", "id") == [("C0002", "L1")]
    assert not output.errors


@pytest.mark.parametrize(("status", "says"), [(401, "rejected the credentials"),
                                              (403, "refused access"),
                                              (404, "has no organization")])
def test_auth_and_organization_errors_fail_check_readably(
        requests_mock: Any, tmp_path: Any, status: int, says: str) -> None:
    requests_mock.get(CUSTOMERS, status_code=status)
    output = check(config(), tmp_path)
    status_message = output.connection_status_messages[0].connectionStatus
    assert status_message.status == Status.FAILED
    assert says in status_message.message
    assert TOKEN not in transcript(output)


def test_429_is_retried_honouring_retry_after(requests_mock: Any,
                                              _no_backoff_sleep: list[float]) -> None:
    requests_mock.get(CUSTOMERS, [{"status_code": 429, "headers": {"Retry-After": "7"}},
                                  page([customer(1)])])
    assert ids(read(config(), "customers"), "customers", "id") == ["C0001"]
    # The CDK waits the header's seconds plus one.
    assert any(7 <= w <= 8 for w in _no_backoff_sleep)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(requests_mock: Any, status: int) -> None:
    requests_mock.get(CUSTOMERS, [{"status_code": status}, page([customer(1)])])
    assert ids(read(config(), "customers"), "customers", "id") == ["C0001"]


def test_client_credentials_token_fetched_once_and_shared_by_all_streams(
        requests_mock: Any) -> None:
    token_url = "https://auth.example/token"
    issued = requests_mock.post(token_url, json={"access_token": "issued-1", "expires_in": 3600})
    requests_mock.get(CUSTOMERS, **page([customer(1)], "/p2"))
    requests_mock.get(f"{BASE}/p2", **page([customer(2)]))
    for n in (1, 2):
        requests_mock.get(f"{CUSTOMERS}/C000{n}/memberships", **page([{"id": f"L{n}"}]))
    credentials = {"auth_type": "client_credentials", "client_id": "cid",
                   "client_secret": "cs-secret", "token_url": token_url}
    output = read(config(credentials=credentials), "customers", "customer_memberships")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    assert sorted(ids(output, "customer_memberships", "id")) == ["L1", "L2"]
    assert issued.call_count == 1
    assert parse_qs(issued.last_request.text)["grant_type"] == ["client_credentials"]
    gets = [r for r in requests_mock.request_history if r.method == "GET"]
    assert all(r.headers["Authorization"] == "Bearer issued-1" for r in gets)


def test_client_credentials_token_is_renewed_once_expired(requests_mock: Any) -> None:
    token_url = "https://auth.example/token"
    issued = requests_mock.post(token_url, [
        {"json": {"access_token": "short-lived", "expires_in": 0}},
        {"json": {"access_token": "renewed", "expires_in": 3600}},
    ])
    requests_mock.get(CUSTOMERS, **page([customer(1)]))
    credentials = {"auth_type": "client_credentials", "client_id": "cid",
                   "client_secret": "cs-secret", "token_url": token_url}
    assert ids(read(config(credentials=credentials), "customers"), "customers", "id") == ["C0001"]
    assert issued.call_count == 2
    assert requests_mock.request_history[-1].headers["Authorization"] == "Bearer renewed"


def test_wrong_client_secret_fails_check_without_traceback_or_secret(
        requests_mock: Any, tmp_path: Any) -> None:
    token_url = "https://auth.example/token"
    requests_mock.post(token_url, status_code=401, json={"error": "invalid_client"})
    credentials = {"auth_type": "client_credentials", "client_id": "cid",
                   "client_secret": "cs-secret-999", "token_url": token_url}
    output = check(config(credentials=credentials), tmp_path)
    status_message = output.connection_status_messages[0].connectionStatus
    assert status_message.status == Status.FAILED
    assert "rejected the client credentials" in status_message.message
    assert "invalid_client" in status_message.message
    text = transcript(output)
    assert "Traceback" not in text
    assert "cs-secret-999" not in text


@pytest.mark.parametrize("status", [400, 403, 404])
def test_token_request_refused_otherwise_fails_check_naming_status_and_keys(
        requests_mock: Any, tmp_path: Any, status: int) -> None:
    token_url = "https://auth.example/token"
    requests_mock.post(token_url, status_code=status, json={"error": "invalid_request"})
    credentials = {"auth_type": "client_credentials", "client_id": "cid",
                   "client_secret": "cs-secret-998", "token_url": token_url}
    output = check(config(credentials=credentials), tmp_path)
    message = output.connection_status_messages[0].connectionStatus.message
    assert f"answered HTTP {status}: invalid_request" in message
    assert "credentials.token_url" in message
    text = transcript(output)
    assert "HTTPError" not in text and "Traceback" not in text
    assert "cs-secret-998" not in text
    assert requests_mock.call_count == 1  # a refusal is not retried


def test_missing_required_field_is_named(tmp_path: Any) -> None:
    incomplete = config()
    del incomplete["organization_id"]
    output = check(incomplete, tmp_path)
    message = output.connection_status_messages[0].connectionStatus.message
    assert "organization_id" in message
