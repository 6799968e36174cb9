"""Every place the connector reaches into what the CDK (and `requests`, `urllib3`) keep to
themselves, checked before it is used.

A feature (the request deadline, progress lines, masked output) lists the internals it
touches. Before it is installed each one is checked: that it is there and, for a function
it replaces or calls, that its parameters are the ones it was written against. When one has
moved (a CDK upgrade, or the platform's runner on another CDK), that feature alone is left
out, the connector reads exactly as before without it, and one WARN log says what is off.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import inspect
import logging
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import AirbyteLogFormatter
from airbyte_cdk.models import AirbyteMessage, Type
from airbyte_cdk.sources.concurrent_source import concurrent_read_processor
from airbyte_cdk.sources.concurrent_source.concurrent_read_processor import (
    ConcurrentReadProcessor,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.concurrent.partition_enqueuer import PartitionEnqueuer
from airbyte_cdk.sources.streams.concurrent.partition_reader import PartitionReader
from airbyte_cdk.sources.streams.http import rate_limiting
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from source_customers.masking import masked
from source_customers.runtime.deadline import install_deadline
from source_customers.runtime.failures import (
    install_failures_reported_once,
    install_no_traceback_for_given_up_requests,
    install_plain_check,
)
from source_customers.runtime.progress import install_progress, install_retry_log


@dataclass(frozen=True)
class TouchPoint:
    """One internal: `owner.name`, with what a feature relies on it to be.

    `params`: the parameters of a function the feature replaces or calls, in order.
    `set_by`: for an attribute of the owner's instances, the method that sets it.
    `text`: a text the owner's code writes (a log line a filter rewrites).
    """

    owner: Any
    name: str
    params: tuple[str, ...] | None = None
    set_by: str = ""
    text: str = ""

    def where(self) -> str:
        owner = getattr(self.owner, "__qualname__", None) or getattr(self.owner, "__name__", "?")
        return f"{owner}.{self.name}" if self.name else str(owner)

    def problem(self) -> str | None:
        """What is not as expected, or None."""
        if self.set_by:
            method: Any = getattr(self.owner, self.set_by, None)
            method = inspect.unwrap(method) if callable(method) else None
            if self.name not in _names_used(method):
                return f"{self.set_by} no longer sets it"
            return None
        if self.text:
            if not any(self.text in text for text in _texts(self.owner)):
                return f"no longer writes {self.text!r}"
            return None
        found: Any = getattr(self.owner, self.name, _MISSING)
        if found is _MISSING:
            return "it is gone"
        # A hook installed already stands for the CDK's function it wraps (`__wrapped__`).
        found = inspect.unwrap(found)
        if self.params is not None:
            try:
                params = tuple(inspect.signature(found).parameters)
            except (TypeError, ValueError):
                return "its signature cannot be read"
            if params != self.params:
                return f"its parameters are ({', '.join(params)}), not ({', '.join(self.params)})"
        return None


@dataclass(frozen=True)
class Feature:
    name: str  # what is off without it, as a user reads it
    touch_points: tuple[TouchPoint, ...]
    install: Callable[[], None]

    def problems(self) -> list[str]:
        found = ((point, point.problem()) for point in self.touch_points)
        return [f"{point.where()}: {problem}" for point, problem in found if problem]


_MISSING = object()


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _names_used(function: Any) -> set[str]:
    code = getattr(function, "__code__", None)
    return {name for c in _codes(code) for name in c.co_names} if code else set()


def _texts(module: Any) -> Iterator[str]:
    """The string constants of a module's functions, nested ones included."""
    for value in vars(module).values():
        code = getattr(inspect.unwrap(value), "__code__", None) if callable(value) else None
        if code is not None and getattr(value, "__module__", None) == module.__name__:
            for c in _codes(code):
                yield from (const for const in c.co_consts if isinstance(const, str))


def install_masked_output() -> None:
    """Every message but records and state, and every log line, is written with personal
    data masked (`masking.masked`)."""
    cdk_to_string = AirbyteEntrypoint.airbyte_message_to_string
    if not getattr(cdk_to_string, "_source_customers_masked", False):
        def to_string(airbyte_message: AirbyteMessage) -> str:
            text: str = cdk_to_string(airbyte_message)
            kind = airbyte_message.type
            return text if kind is Type.RECORD or kind is Type.STATE else masked(text)

        to_string._source_customers_masked = True  # type: ignore[attr-defined]
        to_string.__wrapped__ = cdk_to_string  # type: ignore[attr-defined]
        AirbyteEntrypoint.airbyte_message_to_string = staticmethod(  # type: ignore[method-assign]
            to_string)
    cdk_format = AirbyteLogFormatter.format
    if not getattr(cdk_format, "_source_customers_masked", False):
        def format(self: AirbyteLogFormatter, record: logging.LogRecord) -> str:
            return masked(cdk_format(self, record))

        format._source_customers_masked = True  # type: ignore[attr-defined]
        format.__wrapped__ = cdk_format  # type: ignore[attr-defined]
        AirbyteLogFormatter.format = format  # type: ignore[method-assign]


_READ = ConcurrentReadProcessor
FEATURES: tuple[Feature, ...] = (
    Feature(
        "personal data masked in log lines and messages (the CDK's secret filter still "
        "masks it as ****)",
        (TouchPoint(AirbyteEntrypoint, "airbyte_message_to_string", ("airbyte_message",)),
         TouchPoint(AirbyteLogFormatter, "format", ("self", "record"))),
        install_masked_output,
    ),
    Feature(
        "the total deadline of each request (each request is bounded by its read timeout "
        "between bytes only), and LOKE's token request refusing redirects",
        (TouchPoint(HTTPAdapter, "send",
                    ("self", "request", "stream", "timeout", "verify", "cert", "proxies")),
         TouchPoint(HTTPConnection, "getresponse", ("self",))),
        install_deadline,
    ),
    Feature(
        "progress lines, estimates and the per-stream summary",
        (TouchPoint(_READ, "on_partition", ("self", "partition")),
         TouchPoint(_READ, "on_partition_generation_completed", ("self", "sentinel")),
         TouchPoint(_READ, "on_partition_complete_sentinel", ("self", "sentinel")),
         TouchPoint(_READ, "_on_stream_is_done", ("self", "stream_name")),
         TouchPoint(_READ, "_record_counter", set_by="__init__"),
         TouchPoint(_READ, "_exceptions_per_stream_name", set_by="__init__"),
         TouchPoint(_READ, "_partition_enqueuer", set_by="__init__"),
         TouchPoint(_READ, "_thread_pool_manager", set_by="__init__"),
         TouchPoint(PartitionEnqueuer, "generate_partitions", ("self", "stream")),
         TouchPoint(PartitionEnqueuer, "_queue", set_by="__init__"),
         TouchPoint(PartitionReader, "process_partition", ("self", "partition", "cursor")),
         TouchPoint(APIBudget, "_do_acquire", ("self", "request", "policy", "block", "timeout"))),
        install_progress,
    ),
    Feature(
        "each failure reported once (a failure may be repeated per partition, with a "
        "traceback)",
        (TouchPoint(_READ, "on_exception", ("self", "exception")),
         TouchPoint(_READ, "_flag_exception", ("self", "stream_name", "exception")),
         TouchPoint(concurrent_read_processor, "generate_failed_streams_error_message",
                    ("stream_failures",))),
        install_failures_reported_once,
    ),
    Feature(
        "plain check messages (a failed check's cause comes after the CDK's words)",
        (TouchPoint(ConcurrentDeclarativeSource, "check", ("self", "logger", "config")),),
        install_plain_check,
    ),
    Feature(
        "no traceback in the log line of a request given up after its retries",
        (TouchPoint(AirbyteLogFormatter, "format", ("self", "record")),),
        install_no_traceback_for_given_up_requests,
    ),
    Feature(
        "the cause in each retry's log line (the CDK's reads 'Rate limit exceeded' whatever "
        "the cause)",
        (TouchPoint(rate_limiting, "", text="UserDefinedBackoffException: Rate limit exceeded"),
         TouchPoint(rate_limiting, "", text="Caught retryable error ")),
        install_retry_log,
    ),
)


def cdk_version() -> str:
    try:
        return version("airbyte-cdk")
    except PackageNotFoundError:
        return "of unknown version"


def install(features: tuple[Feature, ...] = FEATURES) -> list[str]:
    """Installs each feature whose internals are as expected; for each other one, logs one
    WARN saying what is off and why, and returns those lines."""
    off = []
    for feature in features:
        problems = feature.problems()
        if not problems:
            feature.install()
            continue
        line = (f"source-customers: {feature.name} is off under airbyte-cdk {cdk_version()}: "
                f"{'; '.join(problems)}. Everything else works as before.")
        logging.getLogger("airbyte").warning(line)
        off.append(line)
    return off
