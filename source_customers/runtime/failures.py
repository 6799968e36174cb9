"""A failure said once, in the user's words first.

The CDK wraps a cause in its own words ("Stream customers is not available: ...",
"Exhausted available request attempts. Please see logs for more details. Exception: ...",
a `check` message in Python's quotes), repeats one error for every partition that meets it,
and logs a traceback after an error the connector raised on purpose. These hooks, which
`runtime/hooks.py` installs after checking what they touch, leave the cause alone.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import ast
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from airbyte_cdk.logger import AirbyteLogFormatter
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, Status, StreamDescriptor
from airbyte_cdk.sources.concurrent_source import concurrent_read_processor
from airbyte_cdk.sources.concurrent_source.concurrent_read_processor import (
    ConcurrentReadProcessor,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# What the CDK puts ahead of a cause; each is taken off the front of a message.
_CDK_PREFIXES = re.compile(
    r"^(?:Stream \S+ is not available: "
    r"|Encountered an error while checking availability of stream \S+\. Error: "
    r"|Exhausted available request attempts\. Please see logs for more details\. Exception: )+")


def plain(message: str) -> str:
    """`message` without the CDK's words ahead of its cause, nor Python's quotes around it."""
    text = message.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:  # a `check` message is the repr() of its text
            unquoted = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            unquoted = None
        if isinstance(unquoted, str):
            text = unquoted
    return _CDK_PREFIXES.sub("", text)


def failed_streams_message(stream_failures: Mapping[str, list[Exception]]) -> str:
    """The closing error of a failed sync: the streams, not their errors again (each was
    reported as its stream failed)."""
    return (
        "During the sync, the following streams did not sync successfully: "
        f"{', '.join(stream_failures)}. Each stream's error is reported above."
    )


def install_failures_reported_once() -> None:
    """A failed sync says each cause once: the same error from another partition or stream
    is counted, not repeated; an error the connector raised on purpose, or a request given
    up after its retries, is reported by its ERROR trace alone, in its own words (the CDK
    would log it again with a traceback); the closing error names the streams that failed,
    not their errors again."""
    processor = ConcurrentReadProcessor
    if processor.__dict__.get("_source_customers_failures") is not None:
        return
    processor._source_customers_failures = True  # type: ignore[attr-defined]
    cdk_on_exception = processor.on_exception

    def on_exception(self: ConcurrentReadProcessor, exception: Any) -> Iterator[AirbyteMessage]:
        error = exception.exception
        if isinstance(error, AirbyteTracedException) and error.message:
            error.message = plain(error.message)
        message = str(getattr(error, "message", None) or error)
        seen: set[str] = self.__dict__.setdefault("_source_customers_errors", set())
        if message in seen:
            self._flag_exception(exception.stream_name, error)
            return
        seen.add(message)
        if not isinstance(error, AirbyteTracedException):
            yield from cdk_on_exception(self, exception)  # a bug keeps the CDK's traceback
            return
        self._flag_exception(exception.stream_name, error)
        yield error.as_airbyte_message(
            stream_descriptor=StreamDescriptor(name=exception.stream_name))

    on_exception.__wrapped__ = cdk_on_exception  # type: ignore[attr-defined]
    processor.on_exception = on_exception  # type: ignore[method-assign]
    concurrent_read_processor.generate_failed_streams_error_message = failed_streams_message


def install_plain_check() -> None:
    """A failed `check` says its cause, not the CDK's words around it."""
    cdk_check = ConcurrentDeclarativeSource.check
    if getattr(cdk_check, "_source_customers_plain", False):
        return

    def check(self: ConcurrentDeclarativeSource, logger: logging.Logger, config: Any
              ) -> AirbyteConnectionStatus:
        status = cdk_check(self, logger, config)
        if status.status == Status.FAILED and isinstance(status.message, str):
            status.message = plain(status.message)
        return status

    check._source_customers_plain = True  # type: ignore[attr-defined]
    check.__wrapped__ = cdk_check  # type: ignore[attr-defined]
    ConcurrentDeclarativeSource.check = check  # type: ignore[method-assign]


_GIVEN_UP = "Retries exhausted with backoff exception."


def install_no_traceback_for_given_up_requests() -> None:
    """The CDK logs a request given up after its retries with a Python traceback; the ERROR
    trace that follows says why, so the line keeps its text and loses the traceback."""
    cdk_format = AirbyteLogFormatter.format
    if getattr(cdk_format, "_source_customers_no_traceback", False):
        return

    def format(self: AirbyteLogFormatter, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.msg, str) and record.msg.startswith(_GIVEN_UP):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None, "stack_info": None})
        return cdk_format(self, record)

    format._source_customers_no_traceback = True  # type: ignore[attr-defined]
    format.__wrapped__ = cdk_format  # type: ignore[attr-defined]
    AirbyteLogFormatter.format = format  # type: ignore[method-assign]
