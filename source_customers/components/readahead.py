"""Read-ahead of the next page: while one page's records go through the CDK, the next page's
request is already in flight.

The CDK reads a stream's pages one after the other (`SimpleRetriever._read_pages`): it asks
for page N+1 only once every record of page N has gone through its pipeline, so a sync's time
is its work plus all its waiting on the network. A manifest that wraps its pagination
strategy in `ReadAhead` has each page's records read from its answer as soon as it arrives,
the next page's token asked of the paginator with exactly the arguments the CDK would pass
it (the page's size, its last record, the token it was asked with), and the next page
requested (and its records read) on a thread while this page's records are handed on. One
page ahead, never more: the CDK's loop takes the next page only after this one's records.

Nothing else changes. The request is the one the CDK would send next, through the same
requester (the same retries, deadline and rate-limit budget); the paginator is asked once
a page, and its answer (or its error) is handed back when the CDK asks for it; the records
come in the same order; an error of the next page's request is raised where the CDK would
have read that page, and one of its records after the records before it. No page is asked
for that the paginator did not name, and when a stream ends or fails, the request in
flight is awaited before the stream's reading returns.

What it reaches into (`SimpleRetriever._read_pages`, `_fetch_next_page`, `_next_page_token`,
how the retriever is configured) is checked by `runtime/hooks.py` before it is installed:
when one has moved, `ReadAhead` is a plain pass-through and pages are read one after the
other, with one WARN. A stream that can read a page again on its own (page-size reduction,
pagination reset, query-property chunks) is read one page at a time too.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import InitVar, dataclass
from typing import Any

import requests
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.default_paginator import (
    DefaultPaginator,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.stop_condition import (
    StopConditionPaginationStrategyDecorator,
)
from airbyte_cdk.sources.declarative.retrievers.simple_retriever import SimpleRetriever
from airbyte_cdk.sources.types import Config, Record, StreamSlice

from source_customers.runtime.progress import PROGRESS


@dataclass
class ReadAhead(PaginationStrategy):
    """Pages as `strategy` does, with the next page read ahead (`pages`: 1, or 0 for none).

    A connection check never reads ahead: it reads one record and stops, and the page after
    it would be a request the check does not need.
    """

    strategy: PaginationStrategy
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    pages: str | int = 1

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._pages = InterpolatedString.create(str(self.pages), parameters=parameters)

    def read_ahead_pages(self) -> int:
        """How many pages are read ahead: 0 or 1 (two measured no faster than one: each
        request waits for the answer before it, so a second one ahead has nothing to overlap)."""
        if self.config.get("connection_check"):
            return 0
        return 1 if int(self._pages.eval(self.config)) >= 1 else 0

    @property
    def initial_token(self) -> Any | None:
        return self.strategy.initial_token

    def get_page_size(self) -> int | None:
        return self.strategy.get_page_size()

    # Whatever keywords this CDK passes go on as they came (see NextLinkPagination).
    def next_page_token(  # type: ignore[override]
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        **more: Any,
    ) -> Any | None:
        return self.strategy.next_page_token(
            response, last_page_size, last_record, last_page_token_value, **more)


# The CDK's methods, as they were when read-ahead was installed.
_cdk_read_pages = SimpleRetriever._read_pages
_cdk_fetch_next_page = SimpleRetriever._fetch_next_page
_cdk_next_page_token = SimpleRetriever._next_page_token
_ON = "_source_customers_read_ahead"  # on a retriever: whether it reads ahead
_READS = "_source_customers_reads_ahead"  # on a retriever: its reads under way, by slice
_TOKEN = "_source_customers_next_page_token"  # on a response: the paginator's answer
_NOTHING = object()

# Shared by every stream: at most one request ahead per partition being read, and no more
# partitions are read at once than the CDK's 20 workers and its partition generators.
_POOL_SIZE = 32
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="read-ahead")
        return _pool


def reads_ahead(retriever: SimpleRetriever) -> bool:
    """Whether this retriever's pages are read ahead: its manifest asks for it, and nothing
    can make the CDK read a page again or ask for another one than its paginator named."""
    found = retriever.__dict__.get(_ON)
    if found is None:
        found = retriever.__dict__[_ON] = _asks_for_read_ahead(retriever)
    return found


def _asks_for_read_ahead(retriever: SimpleRetriever) -> bool:
    # A subclass (the CDK's LazySimpleRetriever) pages in its own way.
    if type(retriever) is not SimpleRetriever:
        return False
    if retriever.additional_query_properties is not None:
        return False  # several requests a page
    if retriever.page_size_reduction is not None:
        return False  # a page read again smaller
    if getattr(retriever.pagination_tracker_factory(), "_limit", _NOTHING) is not None:
        return False  # pagination reset after a number of records: another next page
    paginator = retriever._paginator
    # Not the PaginatorTestReadDecorator of a test read, which stops after a few pages.
    if type(paginator) is not DefaultPaginator:
        return False
    strategy = paginator.pagination_strategy
    if isinstance(strategy, StopConditionPaginationStrategyDecorator):
        strategy = strategy._delegate  # a data feed: the stop condition sees the last record
    # By what it does, not its class: the platform's runner may load this module twice.
    pages = getattr(strategy, "read_ahead_pages", None)
    return callable(pages) and pages() >= 1


class _Page:
    """A page's answer and its records, read in full (or up to the error that stopped it)."""

    __slots__ = ("response", "records", "error")

    def __init__(self, response: requests.Response | None, records: list[Record],
                 error: Exception | None) -> None:
        self.response = response
        self.records = records
        self.error = error


def _records_of(records_generator_fn: Callable[[Any], Iterable[Record]],
                response: requests.Response | None) -> tuple[list[Record], Exception | None]:
    records: list[Record] = []
    try:
        records.extend(records_generator_fn(response))  # keeps what came before an error
    except Exception as error:
        return records, error
    return records, None


class _Read:
    """One `_read_pages` call of a retriever: one slice's pages, and the next one in flight."""

    def __init__(self, retriever: SimpleRetriever, stream_slice: StreamSlice,
                 records_generator_fn: Callable[[Any], Iterable[Record]]) -> None:
        self.retriever = retriever
        self.stream_slice = stream_slice
        self.records_generator_fn = records_generator_fn
        self.stream = getattr(PROGRESS.local, "stream", None)  # whose requests these are
        self.cancelled = threading.Event()
        # The page being read: its answer, the token and page size it was asked with.
        self.current: tuple[requests.Response | None, Any, Any] | None = None
        self.ready: _Page | None = None  # its records, when they were read ahead
        # The next page: (its token, its page size, the request and records in flight).
        self.ahead: tuple[Any, Any, Future[_Page]] | None = None

    def fetch(self, next_page_token: Any, page_size_override: Any) -> requests.Response | None:
        """The page the CDK asks for: the one in flight, when it is that one."""
        self.ready = None
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            token, size, future = ahead
            if token == next_page_token and size == page_size_override:
                page = future.result()  # the request's error is raised here, as the CDK's
                self.ready = page
                self.current = (page.response, next_page_token, page_size_override)
                return page.response
            # Not the page read ahead (which the checks above rule out): it is not used.
            self.cancelled.set()
            _wait(future)
            self.cancelled = threading.Event()
        response = _cdk_fetch_next_page(self.retriever, self.stream_slice, next_page_token,
                                        page_size_override)
        self.current = (response, next_page_token, page_size_override)
        return response

    def records(self, response: requests.Response | None) -> Iterable[Record]:
        """`records_generator_fn` for the CDK's loop: this page's records, read in full, then
        the next page asked for before they are handed on."""
        ready, self.ready = self.ready, None
        if ready is not None and ready.response is response:
            records, error = ready.records, ready.error
        else:
            records, error = _records_of(self.records_generator_fn, response)
        current = self.current
        # The CDK asks its paginator only after a page whose records all came, and whose
        # answer was not an ignored error (a falsy response ends its loop).
        if error is None and response and current is not None and current[0] is response:
            self._ask_paginator(response, records, current[1], current[2])
        yield from records
        if error is not None:
            raise error

    def _ask_paginator(self, response: requests.Response, records: list[Record],
                       token: Any, size: Any) -> None:
        last_record = records[-1] if records else None
        more: dict[str, Any] = {"page_size_override": size} if size is not None else {}
        try:
            next_token = _cdk_next_page_token(
                self.retriever, response=response, last_page_size=len(records),
                last_record=last_record,
                last_page_token_value=token.get("next_page_token") if token else None,
                stream_slice=self.stream_slice, **more)
        except Exception as error:
            # Raised when the CDK asks, after this page's records, as it would have been.
            response.__dict__[_TOKEN] = (len(records), last_record, None, error)
            return
        response.__dict__[_TOKEN] = (len(records), last_record, next_token, None)
        if next_token:
            self.ahead = (next_token, size, _executor().submit(
                self._read_ahead, next_token, size, self.cancelled))

    def _read_ahead(self, token: Any, size: Any, cancelled: threading.Event) -> _Page:
        before = getattr(PROGRESS.local, "stream", None)
        PROGRESS.local.stream = self.stream  # the request counts for the stream reading it
        try:
            response = _cdk_fetch_next_page(self.retriever, self.stream_slice, token, size)
            if cancelled.is_set():
                return _Page(response, [], None)
            records, error = _records_of(self.records_generator_fn, response)
            return _Page(response, records, error)
        finally:
            PROGRESS.local.stream = before

    def close(self) -> None:
        """Awaits the request in flight, if any: nothing is left running after a stream."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            self.cancelled.set()  # its records are not read
            _wait(ahead[2])


def _wait(future: "Future[_Page]") -> None:
    if not future.cancel():
        try:
            future.result()
        except Exception:  # a page no one reads: its error is no one's
            pass


def _read_pages(self: SimpleRetriever,
                records_generator_fn: Callable[[Any], Iterable[Record]],
                stream_slice: StreamSlice) -> Iterable[Record]:
    if not reads_ahead(self):
        return _cdk_read_pages(self, records_generator_fn, stream_slice)
    return _read_pages_ahead(self, records_generator_fn, stream_slice)


def _read_pages_ahead(self: SimpleRetriever,
                      records_generator_fn: Callable[[Any], Iterable[Record]],
                      stream_slice: StreamSlice) -> Iterable[Record]:
    read = _Read(self, stream_slice, records_generator_fn)
    reads: dict[int, _Read] = self.__dict__.setdefault(_READS, {})
    reads[id(stream_slice)] = read
    try:
        yield from _cdk_read_pages(self, read.records, stream_slice)
    finally:
        reads.pop(id(stream_slice), None)
        read.close()


def _fetch_next_page(self: SimpleRetriever, stream_slice: StreamSlice,
                     next_page_token: Mapping[str, Any] | None = None,
                     page_size_override: int | None = None) -> requests.Response | None:
    read = self.__dict__.get(_READS, {}).get(id(stream_slice))
    if read is None or read.stream_slice is not stream_slice:
        return _cdk_fetch_next_page(self, stream_slice, next_page_token, page_size_override)
    return read.fetch(next_page_token, page_size_override)


def _next_page_token(self: SimpleRetriever, response: requests.Response, last_page_size: int,
                     last_record: Record | None, last_page_token_value: Any | None,
                     page_size_override: int | None = None,
                     stream_slice: StreamSlice | None = None) -> Mapping[str, Any] | None:
    asked = response.__dict__.pop(_TOKEN, None) if response is not None else None
    # The paginator's answer for this page, when it was asked with these very arguments.
    if asked is not None and asked[0] == last_page_size and asked[1] is last_record:
        if asked[3] is not None:
            raise asked[3]
        return asked[2]  # type: ignore[no-any-return]
    more: dict[str, Any] = {"stream_slice": stream_slice} if stream_slice is not None else {}
    return _cdk_next_page_token(self, response, last_page_size, last_record,
                                last_page_token_value, page_size_override, **more)


def install_read_ahead() -> None:
    """Streams whose manifest wraps its pagination in `ReadAhead` read the next page ahead."""
    for name, new, cdk in (("_read_pages", _read_pages, _cdk_read_pages),
                           ("_fetch_next_page", _fetch_next_page, _cdk_fetch_next_page),
                           ("_next_page_token", _next_page_token, _cdk_next_page_token)):
        if getattr(getattr(SimpleRetriever, name), _ON, False):
            continue  # installed by another copy of this module
        new.__wrapped__ = cdk  # type: ignore[attr-defined]
        setattr(new, _ON, True)
        setattr(SimpleRetriever, name, new)
