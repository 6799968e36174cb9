"""What a read is doing, told while it runs and once per stream at its end: progress LOG
lines, ESTIMATE traces, a summary per stream, and each retry's cause in its log line.

The counts are kept by hooks into the CDK's concurrent read (`install_progress`,
`install_retry_log`), which `runtime/hooks.py` installs only after checking every internal
they touch.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
from airbyte_cdk.models import (
    AirbyteEstimateTraceMessage,
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteTraceMessage,
    EstimateType,
    Level,
    TraceType,
    Type,
)
from airbyte_cdk.sources.concurrent_source.concurrent_read_processor import (
    ConcurrentReadProcessor,
)
from airbyte_cdk.sources.declarative.partition_routers.list_partition_router import (
    ListPartitionRouter,
)
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.concurrent.partition_enqueuer import PartitionEnqueuer
from airbyte_cdk.sources.streams.concurrent.partition_reader import PartitionReader

# --- progress: what a read is doing, while it runs and once per stream at its end ---

PROGRESS_SECONDS_VARIABLE = "SOURCE_CUSTOMERS_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 30.0


def progress_seconds() -> float:
    """Seconds between progress lines: `SOURCE_CUSTOMERS_PROGRESS_SECONDS`, else 30."""
    try:
        seconds = float(os.environ.get(PROGRESS_SECONDS_VARIABLE) or DEFAULT_PROGRESS_SECONDS)
    except ValueError:
        return DEFAULT_PROGRESS_SECONDS
    return seconds if math.isfinite(seconds) and seconds > 0 else DEFAULT_PROGRESS_SECONDS


def counted(counts: Mapping[str, int]) -> str:
    """`3 \u00d7 HTTP 429, 1 \u00d7 timeout` (a multiplication sign): the most frequent first;
    "" for none."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} \u00d7 {cause}" for cause, n in ordered)


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `1 h 02 min`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {whole:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def retry_cause(error: BaseException | None) -> str:
    """A retry's cause in a word or two: `HTTP 429`, `timeout`, `connection failed`."""
    answer = getattr(error, "response", None)
    if isinstance(answer, requests.Response):
        status = answer.status_code
        return f"HTTP {status}" if status >= 300 else f"unusable answer (HTTP {status})"
    if error is None:
        return "unknown"
    # The CDK's backoff exception keeps no failed request's exception, only its message
    # (`_exception_resolution`'s, which names the exception's type).
    text = str(error)
    if isinstance(error, requests.exceptions.Timeout) or "Timeout" in text:
        return "timeout"
    if isinstance(error, requests.exceptions.ChunkedEncodingError) or \
            "ChunkedEncodingError" in text:
        return "answer cut off"
    if isinstance(error, requests.exceptions.ConnectionError) or "ConnectionError" in text:
        return "connection failed"
    return type(error).__name__


class StreamProgress:
    """One stream's counts in one sync, changed under the sync's lock by any thread. Its
    records are not counted here: the CDK counts them (`ConcurrentReadProcessor`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started: float | None = None
        self.requests = 0
        self.waited = 0.0  # seconds waiting on a rate limit (budget, Retry-After) or backoff
        self.retries: dict[str, int] = {}  # by cause
        self.skips: dict[str, int] = {}  # by cause
        self.partitions = 0  # generated so far
        self.partitions_read = 0
        self.expected: int | None = None  # partitions in all, once known
        self.estimated: int | None = None  # the last row estimate emitted
        self.done = False

    def row_estimate(self, records: int, workers: int = 0) -> int | None:
        """Records the stream will have read: one per partition until a tenth of them, and
        twice as many as are being read (up to one a worker), are read; then the records
        per partition read times the partitions expected. The records so far include some
        of those still being read, none yet for a one-record lookup, most of its pages for
        a long one, so the estimate errs high by at most half (taking each as half read
        told one-record partitions a third short; waiting on no more than a tenth, a child
        stream of long partitions more than twice over)."""
        if self.expected is None:
            return None
        reading = min(workers, self.partitions - self.partitions_read)
        if self.partitions_read < max(1, self.expected // 10, 2 * reading):
            return self.expected
        per_partition = records / self.partitions_read
        return max(records, round(per_partition * max(self.expected, self.partitions_read)))

    def progress_line(self, records: int, now: float) -> str:
        parts = [f"{records:,} records so far", _many(self.requests, "request")]
        if self.expected is not None:
            parts.append(f"{self.partitions_read:,} of {self.expected:,} partitions read")
        parts.append(f"{duration(self.waited)} waiting on rate limits and backoff "
                     "(summed over workers)")
        running = duration(now - (self.started or now))
        return f"Stream '{self.name}' running for {running}: {', '.join(parts)}."

    def summary_line(self, records: int, now: float, failed: bool) -> str:
        outcome = "failed" if failed else "done"
        took = duration(now - (self.started or now))
        return (
            f"Stream '{self.name}' {outcome} in {took}: {_many(records, 'record')}, "
            f"{_many(self.requests, 'request')}; retries: {counted(self.retries) or 'none'} "
            f"({duration(self.waited)} waiting on rate limits and backoff, summed over "
            "workers); "
            f"skipped: {counted(self.skips) or 'none'}."
        )


def _many(count: int, thing: str) -> str:
    return f"{count:,} {thing}" + ("" if count == 1 else "s")


def _log_message(text: str) -> AirbyteMessage:
    return AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO, message=text))


def _estimate_message(stream: str, rows: int) -> AirbyteMessage:
    estimate = AirbyteEstimateTraceMessage(name=stream, type=EstimateType.STREAM,
                                           row_estimate=rows)
    trace = AirbyteTraceMessage(type=TraceType.ESTIMATE, emitted_at=time.time() * 1000,
                                estimate=estimate)
    return AirbyteMessage(type=Type.TRACE, trace=trace)


class _Sync:
    """One `read`: its streams' progress, and a daemon thread telling it every interval.

    Messages from other threads go on the CDK's own queue, which its main thread prints
    in order with the records.
    """

    def __init__(self, processor: ConcurrentReadProcessor, interval: float) -> None:
        self.processor = processor
        self.lock = threading.Lock()
        self.streams = {name: StreamProgress(name) for name in processor._record_counter}
        enqueuer = getattr(processor, "_partition_enqueuer", None)
        self._queue: Any = getattr(enqueuer, "_queue", None)
        pool = getattr(getattr(processor, "_thread_pool_manager", None), "_threadpool", None)
        self.workers = int(getattr(pool, "_max_workers", 0))
        self.ended = threading.Event()
        self._interval = interval
        threading.Thread(target=self._tell, name="progress", daemon=True).start()

    def records(self, stream: str) -> int:
        return int(self.processor._record_counter.get(stream, 0))

    def emit(self, message: AirbyteMessage) -> None:
        if self._queue is not None:
            with contextlib.suppress(Exception):  # full for a second: the line is dropped
                self._queue.put(message, timeout=1)

    def estimate(self, progress: StreamProgress) -> AirbyteMessage | None:
        """An ESTIMATE trace if the stream's row estimate is new."""
        records = self.records(progress.name)
        with self.lock:
            rows = progress.row_estimate(records, self.workers)
            if rows is None or rows == progress.estimated or progress.done:
                return None
            progress.estimated = rows
        return _estimate_message(progress.name, rows)

    def _tell(self) -> None:
        while not self.ended.wait(self._interval):
            if PROGRESS.current is not self or all(p.done for p in self.streams.values()):
                return
            with _bookkeeping():
                self._tell_each(time.monotonic())

    def _tell_each(self, now: float) -> None:
        for progress in list(self.streams.values()):
            if progress.started is None or progress.done:
                continue
            self.emit(_log_message(progress.progress_line(self.records(progress.name), now)))
            estimate = self.estimate(progress)
            if estimate is not None:
                self.emit(estimate)


class _Progress:
    """Shared by every copy of this module in the process (the platform's runner may load
    it twice): the sync being read, and which stream each thread is working for."""

    def __init__(self) -> None:
        self.on = True  # off once counting has failed
        self.current: _Sync | None = None
        self.local = threading.local()

    def stream(self) -> "tuple[_Sync, StreamProgress] | None":
        sync = self.current
        progress = sync.streams.get(getattr(self.local, "stream", None) or "") if sync else None
        return (sync, progress) if sync is not None and progress is not None else None


PROGRESS: _Progress = ConcurrentReadProcessor.__dict__.get("_source_customers_progress") \
    or _Progress()


def count_request() -> None:
    found = PROGRESS.stream()
    if found:
        with found[0].lock:
            found[1].requests += 1


def count_wait(seconds: float, cause: str | None = None) -> None:
    """Time spent waiting on a rate limit or a backoff; with `cause`, a retry's wait."""
    found = PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.waited += max(0.0, seconds)
            if cause is not None:
                progress.retries[cause] = progress.retries.get(cause, 0) + 1


def count_skip(cause: str) -> None:
    found = PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.skips[cause] = progress.skips.get(cause, 0) + 1


def expect_partitions(partitions: int) -> None:
    """The stream this thread generates partitions for will have `partitions` of them: an
    ESTIMATE trace says so before any is read."""
    found = PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.expected = partitions if progress.expected is None else progress.expected
        with _bookkeeping():
            estimate = sync.estimate(progress)
            if estimate is not None:
                sync.emit(estimate)


def _routed(stream: Any) -> bool:
    """Whether the stream's partitions come from a partition router that counts something
    (a parent stream's records, Okendo's addresses), with or without a per-partition cursor
    around it."""
    slicer = getattr(getattr(stream, "_stream_partition_generator", None), "_stream_slicer", None)
    router = getattr(slicer, "_partition_router", slicer)
    # A plain list of values (Okendo's review statuses, each a paged list) tells nothing of
    # how many records there are.
    return isinstance(router, PartitionRouter) and type(router) is not ListPartitionRouter


@contextlib.contextmanager
def _bookkeeping() -> Iterator[None]:
    """Where the hooks count: a count that fails (an internal the checks could not see has
    changed) turns progress off for the rest of the process, and the sync goes on as the CDK
    runs it."""
    try:
        yield
    except Exception as error:  # whatever it is, the sync must not see it
        if PROGRESS.on:
            PROGRESS.on, PROGRESS.current = False, None
            logging.getLogger("airbyte").warning(
                "source-customers: progress lines and estimates are off for this sync: "
                f"counting them failed ({type(error).__name__}: {error}). Records are read "
                "as before.")


def _progress_of(reader: ConcurrentReadProcessor, stream: str
                 ) -> tuple[_Sync, StreamProgress] | None:
    sync = PROGRESS.current
    progress = sync.streams.get(stream) if sync and sync.processor is reader else None
    return (sync, progress) if sync is not None and progress is not None else None


def install_progress() -> None:
    """Hooks into the CDK's concurrent read, once per process: where partitions are
    generated and read (which stream a thread works for), where a stream starts and ends,
    and where the API budget makes a request wait. Nothing runs per record."""
    processor = ConcurrentReadProcessor
    if processor.__dict__.get("_source_customers_progress") is not None:
        return
    processor._source_customers_progress = PROGRESS  # type: ignore[attr-defined]
    cdk_init, cdk_on_partition = processor.__init__, processor.on_partition
    cdk_generated = processor.on_partition_generation_completed
    cdk_complete = processor.on_partition_complete_sentinel
    cdk_stream_done = processor._on_stream_is_done
    cdk_generate = PartitionEnqueuer.generate_partitions
    cdk_read = PartitionReader.process_partition
    cdk_acquire = APIBudget._do_acquire

    def init(self: ConcurrentReadProcessor, *args: Any, **kwargs: Any) -> None:
        cdk_init(self, *args, **kwargs)
        with _bookkeeping():
            if PROGRESS.current is not None:
                PROGRESS.current.ended.set()
            if PROGRESS.on:
                PROGRESS.current = _Sync(self, progress_seconds())

    def generate(enqueuer: PartitionEnqueuer, stream: Any) -> None:
        with _bookkeeping():
            sync = PROGRESS.current
            progress = sync.streams.get(stream.name) if sync else None
            if progress is not None and progress.started is None:
                progress.started = time.monotonic()
            PROGRESS.local.stream = stream.name
        try:
            cdk_generate(enqueuer, stream)
        finally:
            PROGRESS.local.stream = None

    def read(reader: PartitionReader, partition: Any, cursor: Any) -> None:
        with _bookkeeping():
            PROGRESS.local.stream = partition.stream_name()
        try:
            cdk_read(reader, partition, cursor)
        finally:
            PROGRESS.local.stream = None

    def on_partition(self: ConcurrentReadProcessor, partition: Any) -> None:
        with _bookkeeping():
            found = _progress_of(self, partition.stream_name())
            if found:
                with found[0].lock:
                    found[1].partitions += 1
        cdk_on_partition(self, partition)

    def generated(self: ConcurrentReadProcessor, sentinel: Any) -> Iterator[AirbyteMessage]:
        estimate = None
        with _bookkeeping():
            found = _progress_of(self, sentinel.stream.name)
            # A partition router's partitions are known things (a child stream's are its
            # parent's records, now all listed); a stream paged, or windowed by date, has
            # no count to tell before it is read.
            if found and (found[1].expected is not None or _routed(sentinel.stream)):
                sync, progress = found
                with sync.lock:
                    progress.expected = progress.partitions
                estimate = sync.estimate(progress)
        if estimate is not None:
            yield estimate
        yield from cdk_generated(self, sentinel)

    def complete(self: ConcurrentReadProcessor, sentinel: Any) -> Iterator[AirbyteMessage]:
        with _bookkeeping():
            found = _progress_of(self, sentinel.partition.stream_name())
            if found:
                with found[0].lock:
                    found[1].partitions_read += 1
        yield from cdk_complete(self, sentinel)

    def stream_done(self: ConcurrentReadProcessor, stream: str) -> Iterator[AirbyteMessage]:
        yield from cdk_stream_done(self, stream)
        summary = None
        with _bookkeeping():
            found = _progress_of(self, stream)
            if found:
                sync, progress = found
                with sync.lock:
                    progress.done = True
                failed = bool(self._exceptions_per_stream_name.get(stream))
                summary = _log_message(progress.summary_line(
                    sync.records(stream), time.monotonic(), failed))
        if summary is not None:
            yield summary

    def acquire(budget: APIBudget, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            cdk_acquire(budget, *args, **kwargs)
        finally:
            with _bookkeeping():
                count_wait(time.monotonic() - started)

    wrappers: tuple[tuple[Any, Any], ...] = (
        (init, cdk_init), (on_partition, cdk_on_partition), (generated, cdk_generated),
        (complete, cdk_complete), (stream_done, cdk_stream_done), (generate, cdk_generate),
        (read, cdk_read), (acquire, cdk_acquire))
    for wrapper, cdk in wrappers:
        wrapper.__wrapped__ = cdk  # what the checks of a later install look at
    processor.__init__ = init  # type: ignore[method-assign]
    processor.on_partition = on_partition  # type: ignore[method-assign]
    processor.on_partition_generation_completed = generated  # type: ignore[method-assign]
    processor.on_partition_complete_sentinel = complete  # type: ignore[method-assign]
    processor._on_stream_is_done = stream_done  # type: ignore[method-assign,assignment]
    PartitionEnqueuer.generate_partitions = generate  # type: ignore[method-assign,assignment]
    PartitionReader.process_partition = read  # type: ignore[method-assign,assignment]
    APIBudget._do_acquire = acquire  # type: ignore[method-assign,assignment]


def install_retry_log() -> None:
    """Each retry's log line names its cause, and each retry and its wait are counted."""
    logger = logging.getLogger("airbyte")
    if not any(type(f).__name__ == _RetryLogNamesItsCause.__name__ for f in logger.filters):
        logger.addFilter(_RetryLogNamesItsCause())


class _RetryLogNamesItsCause(logging.Filter):
    """The CDK logs every retry with a backoff as "Rate limit exceeded", whatever the cause:
    the line is rewritten to the error handler's message, which names it. Each retry and
    its wait are counted for the stream's progress (the CDK's other retry line included)."""

    _cdk_line = "UserDefinedBackoffException: Rate limit exceeded"
    _cdk_default_line = "Caught retryable error "

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self._cdk_line):
            cause = sys.exc_info()[1]
            wait = record.msg.rpartition("Retrying in ")[2].removesuffix(" seconds.")
            record.msg, record.args = f"Retrying in {wait} s: {cause}", None
            _count_retry(cause, wait)
        elif isinstance(record.msg, str) and record.msg.startswith(self._cdk_default_line):
            wait = record.msg.rpartition("Waiting ")[2].partition(" seconds")[0]
            _count_retry(sys.exc_info()[1], wait)
        return True


def _count_retry(error: BaseException | None, wait: str) -> None:
    try:
        seconds = float(wait)
    except ValueError:
        seconds = 0.0
    count_wait(seconds, retry_cause(error))

