"""Read-ahead of the next page (components/readahead.py): one test per promise.

A stream's partition is read as the CDK reads it (`DefaultStream.generate_partitions()`,
`partition.read()`), record by record, so each test can stop between two records and look
at what was asked of the API meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from airbyte_cdk.sources.streams.call_rate import APIBudget

from conftest import ids, read, source
from source_customers.components import readahead
from unit_tests import test_loke as loke
from unit_tests import test_malomo as malomo
from unit_tests import test_okendo as okendo

WAIT = 10  # seconds: far more than any step needs


@pytest.fixture(autouse=True)
def _read_ahead_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped manifests leave read-ahead off (`pages: 0`, bench/README.md); these tests
    hold it to its promises as a manifest with `pages: 1` would run it."""
    shipped = readahead.ReadAhead.__post_init__

    def pages_1(self: readahead.ReadAhead, parameters: Any) -> None:
        self.pages = 1
        shipped(self, parameters)

    monkeypatch.setattr(readahead.ReadAhead, "__post_init__", pages_1)


def records_of(config: dict[str, Any], stream: str) -> Iterator[Any]:
    """The stream's records, as the CDK's worker reads its one partition."""
    (found,) = [s for s in source(config).streams(config) if s.name == stream]
    (partition,) = list(found.generate_partitions())
    return iter(partition.read())


def loke_pages(requests_mock: Any, *pages: list[int], callback: Any = None) -> list[str]:
    """LOKE customers in pages of the given numbers, linked by X-Next-Page; the URLs."""
    urls = [loke.CUSTOMERS] + [f"{loke.CUSTOMERS}?after={n}" for n in range(1, len(pages))]
    for n, (url, numbers) in enumerate(zip(urls, pages, strict=True)):
        answer = loke.page([loke.customer(i) for i in numbers],
                           urls[n + 1] if n + 1 < len(urls) else None)
        if callback is not None and n > 0:
            requests_mock.get(url, json=callback(n, answer),
                              headers=answer["headers"])
        else:
            requests_mock.get(url, **answer)
    return urls


def sent(requests_mock: Any) -> list[str]:
    return [r.url.replace("sort=updated&", "").replace("&sort=updated", "")
            .replace("?sort=updated", "") for r in requests_mock.request_history]


def test_the_next_page_is_requested_while_this_pages_records_are_handed_on(
        requests_mock: Any) -> None:
    asked = threading.Event()

    def second_page(n: int, answer: dict[str, Any]) -> Any:
        def respond(request: Any, context: Any) -> Any:
            asked.set()
            return answer["json"]
        return respond

    loke_pages(requests_mock, [1, 2, 3], [4, 5], callback=second_page)
    records = records_of(loke.config(), "customers")
    assert next(records)["id"] == "C0001"
    # Two records of page 1 not yet taken, and page 2 is already asked for.
    assert asked.wait(WAIT)
    assert [r["id"] for r in records] == ["C0002", "C0003", "C0004", "C0005"]


def test_records_come_in_the_same_order_as_read_one_page_at_a_time(requests_mock: Any) -> None:
    pages = [list(range(1 + 5 * p, 6 + 5 * p)) for p in range(6)]
    urls = loke_pages(requests_mock, *pages)
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == [f"C{n:04d}" for n in range(1, 31)]
    assert sent(requests_mock) == [u.replace("?sort=updated", "") for u in urls]


def test_the_read_ahead_request_draws_from_the_rate_limit_budget(
        requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[str, str]] = []
    cdk_acquire = APIBudget.acquire_call

    def acquire_call(self: APIBudget, request: Any, *args: Any, **kwargs: Any) -> None:
        drawn.append((request.url, threading.current_thread().name))
        cdk_acquire(self, request, *args, **kwargs)

    monkeypatch.setattr(APIBudget, "acquire_call", acquire_call)
    okendo.serve_reviews(requests_mock, {"pending": [["p1", "p2"], ["p3"], ["p4"]]})
    output = read(okendo.config(review_statuses=["pending"]), "reviews")
    assert ids(output, "reviews", "reviewId") == ["p1", "p2", "p3", "p4"]
    urls = [r.url for r in requests_mock.request_history]
    assert [url for url, _ in drawn] == urls and len(urls) == 3
    # Pages 2 and 3 were read ahead, and drew from the budget as page 1 did.
    assert [thread.startswith("read-ahead") for _, thread in drawn] == [False, True, True]


def test_a_failing_next_page_fails_where_it_would_have_been_read(requests_mock: Any) -> None:
    requests_mock.get(loke.CUSTOMERS, **loke.page([loke.customer(1), loke.customer(2)],
                                                  "/organizations/01ORG/customers?after=1"))
    requests_mock.get(f"{loke.CUSTOMERS}?after=1", status_code=401)
    records = records_of(loke.config(), "customers")
    # Page 1's records all come, though page 2 has failed meanwhile.
    assert [next(records)["id"], next(records)["id"]] == ["C0001", "C0002"]
    with pytest.raises(Exception, match="rejected the credentials"):
        next(records)
    # And through the whole command: the records, then the sync's error, page 2's own.
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    assert "rejected the credentials (HTTP 401)" in output.get_formatted_error_message()


def test_a_next_link_that_repeats_fails_after_the_page_that_sent_it(requests_mock: Any) -> None:
    loop = f"{loke.CUSTOMERS}?after=same"
    requests_mock.get(loke.CUSTOMERS, **loke.page([loke.customer(1)], loop))
    requests_mock.get(loop, **loke.page([loke.customer(2)], loop))
    output = read(loke.config(), "customers")
    assert ids(output, "customers", "id") == ["C0001", "C0002"]
    assert "same next-page link" in output.get_formatted_error_message()
    assert requests_mock.call_count == 2


def test_no_request_beyond_the_last_page(requests_mock: Any) -> None:
    urls = loke_pages(requests_mock, [1, 2], [3], [4])
    read(loke.config(), "customers")
    assert requests_mock.call_count == len(urls)
    # Malomo's last page is the empty one, asked for as before, and nothing after it.
    requests_mock.reset()
    requests_mock.get(malomo.CUSTOMERS, [{"json": [malomo.customer(1), malomo.customer(2)]},
                                         {"json": [malomo.customer(3)]}, {"json": []}])
    output = read(malomo.config(), "customers")
    assert len(ids(output, "customers", "id")) == 3
    assert requests_mock.call_count == 3


def test_a_data_feed_past_the_saved_cursor_asks_for_no_next_page(requests_mock: Any) -> None:
    newer = [loke.customer(1, "2024-06-02T00:00:00Z"), loke.customer(2, "2024-04-01T00:00:00Z")]
    requests_mock.get(loke.CUSTOMERS, **loke.page(newer, "/next-1"))
    beyond = requests_mock.get(f"{loke.BASE}/next-1", json=[loke.customer(3)])
    output = read(loke.config(), "customers", sync_mode=loke.SyncMode.incremental,
                  state={"customers": {"updatedAt": "2024-05-01T00:00:00Z"}})
    assert ids(output, "customers", "id") == ["C0001"]
    assert not beyond.called


def test_a_check_reads_no_page_ahead(requests_mock: Any, tmp_path: Any) -> None:
    urls = loke_pages(requests_mock, [1], [2])
    output = loke.check(loke.config(), tmp_path)
    assert output.connection_status_messages[0].connectionStatus.status == loke.Status.SUCCEEDED
    assert [r.url for r in requests_mock.request_history if r.url.startswith(urls[1])] == []


def test_a_stream_stopped_early_awaits_the_request_in_flight(requests_mock: Any) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def second_page(n: int, answer: dict[str, Any]) -> Any:
        def respond(request: Any, context: Any) -> Any:
            started.set()
            release.wait(WAIT)
            finished.set()
            return answer["json"]
        return respond

    loke_pages(requests_mock, [1, 2], [3], callback=second_page)
    records = records_of(loke.config(), "customers")
    next(records)
    assert started.wait(WAIT)
    threading.Timer(0.2, release.set).start()
    records.close()  # the consumer stops: the request in flight is waited for
    assert finished.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("read-ahead")
                and _busy(t)]


def test_a_stream_that_fails_leaves_no_request_running(requests_mock: Any) -> None:
    started, finished = threading.Event(), threading.Event()

    def second_page(n: int, answer: dict[str, Any]) -> Any:
        def respond(request: Any, context: Any) -> Any:
            started.set()
            threading.Event().wait(0.2)
            finished.set()
            return answer["json"]
        return respond

    loke_pages(requests_mock, [1, 2], [3], callback=second_page)
    records = records_of(loke.config(), "customers")
    next(records)
    assert started.wait(WAIT)
    # The CDK's pipeline fails on page 1's second record (as a bad record would).
    with pytest.raises(RuntimeError):
        records.throw(RuntimeError("downstream failed"))
    assert finished.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("read-ahead")
                and _busy(t)]


def test_without_the_feature_pages_are_read_one_after_the_other(
        requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "reads_ahead", lambda retriever: False)
    asked = threading.Event()

    def second_page(n: int, answer: dict[str, Any]) -> Any:
        def respond(request: Any, context: Any) -> Any:
            asked.set()
            return answer["json"]
        return respond

    loke_pages(requests_mock, [1, 2], [3], callback=second_page)
    records = records_of(loke.config(), "customers")
    next(records)
    assert not asked.wait(0.3)
    assert [r["id"] for r in records] == ["C0002", "C0003"]


def _busy(thread: threading.Thread) -> bool:
    """A pool thread doing work (not waiting for some)."""
    import sys
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "_read_ahead":
            return True
        frame = frame.f_back
    return False
