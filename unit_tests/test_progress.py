"""Progress of a read: the counters, the lines and the ESTIMATE traces (runtime/progress.py)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from airbyte_cdk.models import AirbyteMessageSerializer
from airbyte_cdk.sources.streams.http.exceptions import (
    DefaultBackoffException,
    UserDefinedBackoffException,
)

from source_customers.components import answers
from source_customers.components.answers import skip_cause
from source_customers.runtime import progress as runtime_progress
from source_customers.runtime.failures import failed_streams_message
from source_customers.runtime.progress import (
    StreamProgress,
    counted,
    duration,
    progress_seconds,
    retry_cause,
)


def response(status: int, body: bytes = b"{}") -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer._content = status, body
    answer.request = requests.Request("GET", "https://api.example.com/x").prepare()
    return answer


@pytest.fixture
def sync() -> Iterator[Any]:
    """A sync of streams `a` and `b` as the CDK's read processor would start it, its
    progress told every 20 ms onto a queue; the process's current sync is restored after."""
    fake_processor = SimpleNamespace(
        _record_counter={"a": 0, "b": 0},
        _partition_enqueuer=SimpleNamespace(_queue=queue.Queue()),
    )
    before = runtime_progress.PROGRESS.current
    started = runtime_progress._Sync(fake_processor, 0.02)  # type: ignore[arg-type]
    runtime_progress.PROGRESS.current = started
    yield started
    started.ended.set()
    runtime_progress.PROGRESS.current = before
    runtime_progress.PROGRESS.local.stream = None


def test_counts_are_told_most_frequent_first() -> None:
    assert counted({"timeout": 1, "HTTP 429": 3, "HTTP 503": 1}) == \
        "3 \u00d7 HTTP 429, 1 \u00d7 HTTP 503, 1 \u00d7 timeout"
    assert counted({}) == ""


@pytest.mark.parametrize(("seconds", "said"), [
    (0, "0 s"), (0.4, "0 s"), (42, "42 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")])
def test_durations_read_as_a_person_would_say_them(seconds: float, said: str) -> None:
    assert duration(seconds) == said


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 30.0), ("", 30.0), ("0.5", 0.5), ("2", 2.0), ("soon", 30.0), ("0", 30.0),
    ("-1", 30.0), ("nan", 30.0)])
def test_the_interval_comes_from_the_environment_else_30_s(
        monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float) -> None:
    if value is None:
        monkeypatch.delenv(runtime_progress.PROGRESS_SECONDS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(runtime_progress.PROGRESS_SECONDS_VARIABLE, value)
    assert progress_seconds() == seconds


def test_a_retry_is_named_by_its_status_or_its_failure() -> None:
    request = requests.Request("GET", "https://api.example.com/x").prepare()
    assert retry_cause(UserDefinedBackoffException(5, request, response(429), "")) == "HTTP 429"
    assert retry_cause(DefaultBackoffException(request, response(503), "")) == "HTTP 503"
    assert retry_cause(DefaultBackoffException(request, response(200), "")) == \
        "unusable answer (HTTP 200)"
    # The CDK keeps the error handler's message, not the exception: the message names it.
    for error, said in ((requests.exceptions.ReadTimeout("slow"), "timeout"),
                        (requests.exceptions.ConnectionError("reset"), "connection failed"),
                        (requests.exceptions.ChunkedEncodingError("cut"), "answer cut off")):
        message = answers._exception_resolution(error).error_message or ""
        assert retry_cause(DefaultBackoffException(request, error, message)) == said
    assert retry_cause(requests.exceptions.ConnectTimeout()) == "timeout"
    assert retry_cause(requests.exceptions.ConnectionError("reset")) == "connection failed"
    assert retry_cause(requests.exceptions.ChunkedEncodingError()) == "answer cut off"
    assert retry_cause(None) == "unknown"


def test_a_skip_is_named_by_the_vendors_code_else_its_status() -> None:
    assert skip_cause(response(404)) == "HTTP 404"
    body = b'{"data": [], "errors": [{"code": 8015, "message": "Customer not found"}]}'
    assert skip_cause(response(200, body)) == "error 8015"
    assert skip_cause(response(400, body)) == "error 8015"


def test_row_estimate_is_one_per_partition_until_a_tenth_are_read() -> None:
    progress = StreamProgress("events")
    assert progress.row_estimate(records=0) is None  # no count known: no estimate
    progress.expected = 200
    assert progress.row_estimate(records=0) == 200
    progress.partitions_read = 19
    assert progress.row_estimate(records=57) == 200
    progress.partitions_read = 20
    assert progress.row_estimate(records=60) == 600  # 3 a partition so far
    progress.partitions_read = 200
    assert progress.row_estimate(records=612) == 612  # all read: the count itself


def test_row_estimate_waits_for_twice_as_many_read_as_are_being_read() -> None:
    # Shrunk from two syncs: LOKE memberships (one record a partition) told 85 of 120 when
    # partitions being read counted as half read; Malomo events (pages of 2) told 220 of
    # under 110 when the records of those being read counted as read ones'.
    progress = StreamProgress("customer_memberships")
    progress.expected, progress.partitions, progress.partitions_read = 120, 40, 12
    assert progress.row_estimate(records=12, workers=10) == 120  # 10 being read: too few read
    progress.partitions_read = 20
    assert progress.row_estimate(records=20, workers=10) == 120  # one a partition
    events = StreamProgress("customer_events")
    events.expected, events.partitions, events.partitions_read = 60, 60, 20
    # 2 events each: 120 in all. At worst the 10 being read have given all theirs.
    assert events.row_estimate(records=40 + 10 * 2, workers=10) == 180  # 1.5 x, no more


def test_progress_and_summary_lines() -> None:
    progress = StreamProgress("customers")
    progress.started, progress.requests, progress.waited = 100.0, 312, 41.2
    progress.retries = {"HTTP 429": 3, "timeout": 1}
    progress.skips = {"HTTP 404": 2}
    assert progress.progress_line(1234, now=165.0) == (
        "Stream 'customers' running for 1 min 05 s: 1,234 records so far, 312 requests, "
        "41 s waiting on rate limits and backoff (summed over workers).")
    progress.expected, progress.partitions_read = 300, 20
    assert "1,234 records so far, 312 requests, 20 of 300 partitions read, 41 s waiting" in \
        progress.progress_line(1234, now=165.0)
    assert progress.summary_line(300, now=165.0, failed=False) == (
        "Stream 'customers' done in 1 min 05 s: 300 records, 312 requests; retries: "
        "3 \u00d7 HTTP 429, 1 \u00d7 timeout (41 s waiting on rate limits and backoff, summed "
        "over workers); skipped: 2 \u00d7 HTTP 404.")
    quiet = StreamProgress("rules")
    quiet.started, quiet.requests = 10.0, 1
    assert quiet.summary_line(1, now=10.2, failed=True) == (
        "Stream 'rules' failed in 0 s: 1 record, 1 request; retries: none (0 s waiting on "
        "rate limits and backoff, summed over workers); skipped: none.")


def test_estimate_is_an_airbyte_estimate_trace() -> None:
    message = AirbyteMessageSerializer.dump(runtime_progress._estimate_message("customers", 26))
    assert message["type"] == "TRACE"
    assert message["trace"]["type"] == "ESTIMATE"
    assert message["trace"]["estimate"] == {"name": "customers", "type": "STREAM",
                                            "row_estimate": 26}


def test_closing_error_lists_the_streams_without_repeating_their_errors() -> None:
    secret_cause = "LOKE answered GET /x with HTTP 500"
    message = failed_streams_message({"customers": [RuntimeError(secret_cause)],
                                      "customer_memberships": [RuntimeError(secret_cause)] * 3})
    assert "customers, customer_memberships" in message
    assert secret_cause not in message and "RuntimeError" not in message


def test_counters_are_exact_when_many_threads_count(sync: Any) -> None:
    def work(stream: str) -> None:
        runtime_progress.PROGRESS.local.stream = stream
        for _ in range(5000):
            runtime_progress.count_request()
        runtime_progress.count_wait(0.5, "HTTP 429")
        runtime_progress.count_skip("HTTP 404")

    threads = [threading.Thread(target=work, args=(s,)) for s in ["a", "b"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("a", "b"):
        progress = sync.streams[name]
        assert progress.requests == 20000
        assert progress.retries == {"HTTP 429": 4} and progress.skips == {"HTTP 404": 4}
        assert progress.waited == pytest.approx(2.0)


def test_work_of_no_stream_is_not_counted(sync: Any) -> None:
    runtime_progress.PROGRESS.local.stream = None
    runtime_progress.count_request()
    runtime_progress.PROGRESS.local.stream = "not-in-the-catalog"
    runtime_progress.count_request()
    assert [p.requests for p in sync.streams.values()] == [0, 0]


def test_the_cdks_retry_lines_are_counted_by_cause_with_their_wait(sync: Any) -> None:
    runtime_progress.PROGRESS.local.stream = "a"
    request = requests.Request("GET", "https://api.example.com/x").prepare()
    log_filter = runtime_progress._RetryLogNamesItsCause()

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("airbyte", logging.INFO, "", 0, text, None, None)

    try:
        raise UserDefinedBackoffException(7, request, response(429), "HTTP 429 (slow down)")
    except UserDefinedBackoffException:
        line = record("UserDefinedBackoffException: Rate limit exceeded (HTTP 429). "
                      "Retrying in 8 seconds.")
        assert log_filter.filter(line)
    assert line.msg == "Retrying in 8 s: HTTP 429 (slow down)"
    try:
        raise requests.exceptions.ReadTimeout("slow")
    except requests.exceptions.ReadTimeout:
        log_filter.filter(record("Caught retryable error 'slow' after 1 tries. Waiting 5 "
                                 "seconds then retrying..."))
    assert sync.streams["a"].retries == {"HTTP 429": 1, "timeout": 1}
    assert sync.streams["a"].waited == 13.0


def test_running_streams_are_told_every_interval_with_their_estimate(sync: Any) -> None:
    told: queue.Queue[Any] = sync._queue
    progress = sync.streams["a"]
    progress.started, progress.expected = 0.0, 40
    sync.processor._record_counter["a"] = 7
    messages = [AirbyteMessageSerializer.dump(told.get(timeout=10)) for _ in range(2)]
    log, estimate = sorted(messages, key=lambda m: m["type"])
    assert log["log"]["level"] == "INFO"
    assert log["log"]["message"].startswith("Stream 'a' running for ")
    assert "7 records so far, 0 requests, 0 of 40 partitions read" in log["log"]["message"]
    assert estimate["trace"]["estimate"]["row_estimate"] == 40
    # A stream not started, or done, is not told of; an estimate is not repeated.
    progress.done = True
    sync.ended.set()
    assert "Stream 'b'" not in str(messages)
