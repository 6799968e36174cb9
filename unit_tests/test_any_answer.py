"""Whatever the API answers: every record, or a prompt failure that names the cause.

One test per behaviour of `JsonBodyErrorHandler`, `RetryAfter` and the request deadline in
source_customers/components/ and runtime/, each seen to fail before it was built (issue 13).
"""

from __future__ import annotations

import datetime
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import test_capillary as capillary
import test_loke as loke
import test_malomo as malomo
import test_okendo as okendo
from airbyte_cdk.models import SyncMode

from conftest import check, ids, read, transcript
from source_customers.components import answers
from source_customers.runtime import deadline

FUTURE = "2999-01-01T00:00:00Z"  # a server clock far ahead, or a record updated mid-sync


def in_seconds(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def errors(output: Any) -> str:
    return output.get_formatted_error_message() or ""


@pytest.mark.parametrize("mode", [SyncMode.full_refresh, SyncMode.incremental])
def test_record_dated_after_the_local_clock_is_emitted_loke(requests_mock: Any,
                                                           mode: SyncMode) -> None:
    requests_mock.get(loke.CUSTOMERS, **loke.page([loke.customer(1, FUTURE), loke.customer(2)]))
    output = read(loke.config(), "customers", sync_mode=mode)
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    if mode == SyncMode.incremental:
        assert output.most_recent_state.stream_state.updatedAt == FUTURE


@pytest.mark.parametrize("mode", [SyncMode.full_refresh, SyncMode.incremental])
def test_record_dated_after_the_local_clock_is_emitted_malomo(requests_mock: Any,
                                                             mode: SyncMode) -> None:
    requests_mock.get(malomo.CUSTOMERS, json=malomo.paged([malomo.customer(1, FUTURE)]))
    requests_mock.get(f"{malomo.CUSTOMERS}/c0001/events",
                      json=malomo.paged([malomo.event(1, FUTURE), malomo.event(2)]))
    output = read(malomo.config(), "customers", "customer_events", sync_mode=mode)
    assert ids(output, "customers", "id") == ["c0001"]
    assert len(ids(output, "customer_events", "id")) == 2


def test_record_dated_after_the_local_clock_is_emitted_okendo(requests_mock: Any) -> None:
    okendo.serve_customers(requests_mock)
    activities = [okendo.activity(1, "2999-01-01T00:00:00.000Z"),
                  okendo.activity(2, "2024-01-01T00:00:00.000Z")]
    requests_mock.get(f"{okendo.BASE}/customers/c-zoe/activities", json={"activities": activities})
    output = read(okendo.config(okendo.ZOE), "customer_activities",
                  sync_mode=SyncMode.incremental)
    assert len(ids(output, "customer_activities", "activityId")) == 2


def test_error_object_where_a_page_is_expected_is_retried_then_fails_naming_the_request(
        requests_mock: Any) -> None:
    requests_mock.get(loke.CUSTOMERS, json={"message": "Service temporarily unavailable"})
    output = read(loke.config(), "customers")
    assert not output.records
    message = errors(output)
    assert "not the documented shape" in message and "expected a JSON array" in message
    assert f"GET /organizations/{loke.ORG}/customers" in message
    assert "Service temporarily unavailable" in message
    assert len(requests_mock.request_history) == 7  # the first try and 6 retries


def test_wrapped_page_is_retried_and_the_real_page_read(requests_mock: Any) -> None:
    records = [loke.customer(1), loke.customer(2)]
    requests_mock.get(loke.CUSTOMERS, [{"json": {"data": records}}, {"json": records}])
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]


def test_okendo_page_without_its_documented_key_is_retried(requests_mock: Any) -> None:
    okendo.serve_customers(requests_mock)
    activity = okendo.activity(1, "2024-01-01T00:00:00.000Z")
    requests_mock.get(f"{okendo.BASE}/customers/c-zoe/activities",
                      [{"json": {"items": [activity]}}, {"json": {"activities": [activity]}}])
    output = read(okendo.config(okendo.ZOE), "customer_activities")
    assert len(ids(output, "customer_activities", "activityId")) == 1


@pytest.mark.parametrize("record", [{"firstName": "Zoë"}, {"id": None}, {"id": ""}])
def test_record_without_its_primary_key_fails_naming_the_key(requests_mock: Any,
                                                            record: dict[str, Any]) -> None:
    requests_mock.get(loke.CUSTOMERS, json=[loke.customer(1), record])
    output = read(loke.config(), "customers")
    assert "without its primary key 'id'" in errors(output)
    assert len(requests_mock.request_history) == 1  # not retried: the answer would not change


@pytest.mark.parametrize("status", [400, 409, 414, 422, 431, 451])
def test_status_retrying_cannot_fix_fails_at_once_quoting_the_vendor(requests_mock: Any,
                                                                    status: int) -> None:
    requests_mock.get(loke.CUSTOMERS, status_code=status, json={"message": "Unprocessable thing"})
    output = read(loke.config(), "customers")
    assert len(requests_mock.request_history) == 1
    assert f"HTTP {status}: Unprocessable thing" in errors(output)


def test_retry_log_line_names_its_cause_and_wait(requests_mock: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    requests_mock.get(loke.CUSTOMERS, [{"status_code": 503}, {"text": "<html>proxy</html>"},
                                       {"json": [loke.customer(1)]}])
    with caplog.at_level(logging.INFO, logger="airbyte"):
        output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001"]
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 2, retries
    assert "HTTP 503" in retries[0] and "not JSON" in retries[1]
    assert all(" s: LOKE answered GET " in line for line in retries)
    assert not [r for r in caplog.records if "Rate limit exceeded" in r.getMessage()]


def test_retry_after_as_an_http_date_is_waited_out(requests_mock: Any,
                                                   _no_backoff_sleep: list[float]) -> None:
    when = format_datetime(in_seconds(42), usegmt=True)
    requests_mock.get(loke.CUSTOMERS, [{"status_code": 429, "headers": {"Retry-After": when}},
                                       {"json": [loke.customer(1)]}])
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001"]
    assert any(41 <= w <= 44 for w in _no_backoff_sleep), _no_backoff_sleep


@pytest.mark.parametrize("value", ["soon", "-5", "1e3", "", "3.5", "Thu, 01 Jan 1970 00:00:00 GMT",
                                   "Mon, 99 Foo 2024 25:61:61 GMT", "\u00e9t\u00e9"])
def test_retry_after_that_makes_no_sense_falls_back_to_the_backoff(
        requests_mock: Any, _no_backoff_sleep: list[float], value: str) -> None:
    requests_mock.get(loke.CUSTOMERS, [{"status_code": 429, "headers": {"Retry-After": value}},
                                       {"json": [loke.customer(1)]}])
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001"]
    assert _no_backoff_sleep, "no backoff at all"


def test_retry_after_of_five_minutes_or_more_stops_the_sync(requests_mock: Any) -> None:
    requests_mock.get(loke.CUSTOMERS, status_code=429, headers={"Retry-After": "300"})
    output = read(loke.config(), "customers")
    assert "asked to wait 300 s" in errors(output)
    assert len(requests_mock.request_history) == 1


def test_redirect_loop_fails_naming_the_redirect(requests_mock: Any) -> None:
    requests_mock.get(loke.CUSTOMERS, status_code=302, headers={"Location": loke.CUSTOMERS})
    output = read(loke.config(), "customers")
    assert "redirected a request in a loop" in errors(output)
    assert len(requests_mock.request_history) <= 31  # one round of redirects, not retried


# --- the total deadline of a request, against a real socket ---

def trickle(head: bytes, body: bytes = b"") -> Iterator[str]:
    """Answers with `head` sent at once, then `body` a byte every 50 ms, for 5 s at most."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(head)
                deadline = time.monotonic() + 5
                try:
                    for byte in body:
                        if stop.is_set() or time.monotonic() > deadline:
                            break
                        conn.sendall(bytes([byte]))
                        stop.wait(0.05)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/customers"
    stop.set()
    thread.join(2)
    listener.close()


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """A body promised long and sent a byte every 50 ms."""
    yield from trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000\r\n\r\n[", b" " * 100)


def test_headers_trickled_past_the_deadline_are_a_timeout() -> None:
    for url in trickle(b"", b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100):
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout, match="deadline"):
            requests.get(url, timeout=(1, 0.5))
        assert time.monotonic() - started < 2


def test_an_answer_trickled_past_the_deadline_is_a_timeout(trickling_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout, match="deadline"):
        requests.get(trickling_server, timeout=(1, 0.5))  # each byte comes within 0.5 s
    assert time.monotonic() - started < 2


def test_a_request_without_a_timeout_still_has_a_deadline(
        trickling_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CDK's OAuth token request sets no timeout at all.
    monkeypatch.setattr(deadline, "DEFAULT_DEADLINE_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(trickling_server, data={"grant_type": "client_credentials"})
    assert time.monotonic() - started < 2


REDIRECT_ELSEWHERE = (b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/token\r\n"
                      b"Content-Length: 0\r\n\r\n")


def test_a_redirect_is_not_followed_where_redirects_are_refused() -> None:
    for url in trickle(REDIRECT_ELSEWHERE):
        with deadline.redirects_refused(), pytest.raises(requests.exceptions.HTTPError,
                                                         match="HTTP 307"):
            requests.post(url, data={"client_secret": "cs"})
        with pytest.raises(requests.exceptions.ConnectionError):  # followed, to port 9
            requests.post(url, data={"client_secret": "cs"})


def test_loke_token_request_redirected_fails_check_and_is_not_followed(tmp_path: Any) -> None:
    for url in trickle(REDIRECT_ELSEWHERE):
        credentials = {"auth_type": "client_credentials", "client_id": "cid",
                       "client_secret": "cs-secret-997", "token_url": url}
        output = check(loke.config(credentials=credentials), tmp_path)
        message = output.connection_status_messages[0].connectionStatus.message
        assert message.startswith("The OAuth2 token endpoint redirected the request (HTTP 307) "
                                  "to http://127.0.0.1:9/token; not followed")
        assert "credentials.token_url" in message
        assert "cs-secret-997" not in transcript(output)


def test_retry_after_seconds_reads_both_forms_of_rfc_9110() -> None:
    assert answers.retry_after_seconds("120") == 120
    assert answers.retry_after_seconds(" 7 ") == 7
    assert answers.retry_after_seconds("0") is None
    in_a_minute = format_datetime(in_seconds(60), usegmt=True)
    assert 58 <= (answers.retry_after_seconds(in_a_minute) or 0) <= 61
    for nonsense in (None, "", "soon", "-1", "1.5", "1e3", "Thu, 01 Jan 1970 00:00:00 GMT"):
        assert answers.retry_after_seconds(nonsense) is None


def test_one_record_answer_without_its_key_is_retried_as_the_wrong_shape(
        requests_mock: Any) -> None:
    requests_mock.get(capillary.LOOKUP, [{"json": {"message": "Service temporarily unavailable"}},
                                         {"json": capillary.customer(1)}])
    output = read(capillary.config("919777785205"), "customers")
    assert len(ids(output, "customers", "id")) == 1
    assert len(requests_mock.request_history) == 2


def test_okendo_lookup_answer_without_customer_id_fails_naming_what_came(
        requests_mock: Any) -> None:
    requests_mock.post(okendo.LOOKUP, json={"status": "ok"})
    output = read(okendo.config(okendo.ZOE), "customers")
    message = errors(output)
    assert "expected a JSON object with 'customerId', got an object with the keys 'status'" \
        in message, message
    assert "POST /enterprise/customer_lookup" in message
    assert okendo.ZOE not in message


@pytest.mark.parametrize(("value", "waited"), [("12", 12), ("soon", 1)])
def test_capillary_token_request_reads_retry_after_like_every_request(
        requests_mock: Any, _no_backoff_sleep: list[float], value: str, waited: float) -> None:
    requests_mock.post(capillary.TOKEN_URL, [
        {"status_code": 429, "headers": {"Retry-After": value}},
        {"json": {"data": {"accessToken": "tok-1", "ttlSeconds": 3600}}}])
    requests_mock.get(capillary.LOOKUP, json=capillary.customer(1))
    output = read(capillary.config("1", credentials=capillary.oauth()), "customers")
    assert len(ids(output, "customers", "id")) == 1
    assert _no_backoff_sleep[0] == waited  # a word falls back to the backoff (1 s, then 2 s, ...)
