"""The generic answer checks every manifest names: each answer held to the vendor's
documented shape, each status and failed request resolved with a message naming its cause,
`Retry-After` in both its forms, and redirects that would carry a credential elsewhere.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import datetime
import email.utils
import logging
import math
import socket
import threading
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders.composite_raw_decoder import JsonParser
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import (
    BackoffStrategy,
)
from airbyte_cdk.sources.declarative.requesters.error_handlers.default_error_handler import (
    DefaultErrorHandler,
)
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.runtime.progress import count_skip, retry_cause


@dataclass
class JsonBodyErrorHandler(DefaultErrorHandler):
    """The DefaultErrorHandler, holding every answer to the vendor's documented shape.

    The CDK takes any `200` for a page: a body cut short or a proxy's HTML page decodes as
    an empty page (which its paginators take for the last one), and an error object or a
    wrapped page where the API sends a bare array becomes one record without a key. Its
    default mapping retries statuses that retrying cannot fix (422, 431, ...) for minutes.
    So, after the manifest's own `response_filters`:

    - a success whose body is not JSON, or not of the shape `records_path` / `record_path`
      declare, is retried like a 5xx, and fails the sync naming the request if it persists;
    - a record without a value for each field of `record_key` fails the sync at once,
      naming the stream and the field: it could not be deduplicated;
    - 408, 429, 500, 502, 503 and 504 are retried, every other status fails at once quoting
      the vendor's message; a redirect loop fails naming it; a timeout, a reset or a body
      dropped mid-way is retried. Every retry's message names its cause.

    `records_path` is where a page holds its list of records (`[]`: the body is the list);
    `record_path` is where a one-record answer holds its object. `missing_product` names a
    product a store may not have (Okendo's Reviews, Loyalty): the API answers 403 for a
    store without it, which here means "no records", warned once per sync and product, so
    the rest of the sync goes on. Stateless but for that warning: shared by threads.
    """

    records_path: list[str] | None = None
    record_path: list[str] | None = None
    record_key: list[str] = field(default_factory=list)
    vendor: str = "The API"
    missing_product: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        name = (parameters or {}).get("name")
        self._of_stream = f" of stream '{name}'" if name else ""

    def interpret_response(
        self, response_or_exception: requests.Response | Exception | None
    ) -> ErrorResolution:
        resolution = self._resolution(response_or_exception)
        if resolution.response_action != ResponseAction.FAIL:
            if resolution.response_action == ResponseAction.IGNORE:
                count_skip(skip_cause(response_or_exception))
            return resolution
        # Raised here rather than handed back: the CDK's FAIL would build an error quoting
        # the request's URL (Capillary's identifiers are in its query) and the whole body (a
        # page of customers is personal data), and its closing error message passes that on
        # without masking anything.
        message = resolution.error_message or "The request failed."
        where = response_or_exception
        if isinstance(where, requests.Response):
            path = urlsplit(where.request.url or "").path
            message += "" if path in message else f" ({_request(where)})"
        raise AirbyteTracedException(
            message=message, internal_message=message,
            failure_type=resolution.failure_type or FailureType.system_error,
        )

    def _resolution(self, response_or_exception: requests.Response | Exception | None
                    ) -> ErrorResolution:
        answer = response_or_exception
        body: Any = NOT_JSON
        if self.missing_product and isinstance(answer, requests.Response) and (
                answer.status_code == 403):
            self._warn_missing_product(answer)
            return SUCCESS_RESOLUTION
        if isinstance(answer, requests.Response) and answer.status_code == 404:
            wrong = _not_the_api(answer, self.vendor)
            if wrong:
                return wrong
        if isinstance(answer, requests.Response) and answer.ok:
            body = _json_body(answer)
            if body is NOT_JSON:
                return self._retry(answer, (
                    f"a body that is not JSON ({len(answer.content)} bytes of "
                    f"{answer.headers.get('Content-Type') or 'no declared type'}: cut short, "
                    "or a proxy's page)"))
        for response_filter in self.response_filters or []:
            resolution = response_filter.matches(response_or_exception=answer)
            if resolution:
                retrying = resolution.response_action in _RETRYING
                if retrying and isinstance(answer, requests.Response):
                    return self._retry(answer, f"HTTP {answer.status_code}",
                                       resolution.error_message,
                                       resolution.response_action or ResponseAction.RETRY)
                return resolution
        if isinstance(answer, requests.Response):
            return self._checked(answer, body) if answer.ok else self._status(answer)
        return _exception_resolution(answer, checking=bool(self.config.get("connection_check")))

    def _warn_missing_product(self, response: requests.Response) -> None:
        log_once(
            (self.missing_product, id(self.config)),
            f"{self.vendor} refused {_request(response)} with HTTP 403: this store has no "
            f"access to {self.missing_product}, so the streams that read it are empty "
            f"({_vendor_message(response) or 'no explanation given'}). The rest of the sync "
            "goes on.",
            logging.WARNING,
        )

    def _checked(self, response: requests.Response, body: Any) -> ErrorResolution:
        """A success: its records, if it must hold any, are where and what they should be."""
        if self.records_path is not None:
            records = value_at(body, self.records_path) if self.records_path else body
            if not isinstance(records, list):
                return self._retry(response, unexpected(body, self.records_path, "a JSON array"))
        elif self.record_path is not None:
            record = value_at(body, self.record_path) if self.record_path else body
            # A one-record answer without its key is not the record: an error object, say.
            if not isinstance(record, Mapping) or _missing_key(record, self.record_key):
                expected = "a JSON object" + "".join(f" with '{k}'" for k in self.record_key[:1])
                return self._retry(response, unexpected(body, self.record_path, expected))
            return SUCCESS_RESOLUTION
        else:
            return SUCCESS_RESOLUTION
        for position, record in enumerate(records, 1):
            missing = _missing_key(record, self.record_key)
            if missing:
                return ErrorResolution(
                    response_action=ResponseAction.FAIL,
                    failure_type=FailureType.system_error,
                    error_message=(
                        f"{self.vendor} sent a record{self._of_stream} without its primary "
                        f"key '{missing}' (record {position} of {_request(response)}). Stopped "
                        "the sync rather than emit a record that cannot be deduplicated; no "
                        "later record was read."
                    ),
                )
        return SUCCESS_RESOLUTION

    def _status(self, response: requests.Response) -> ErrorResolution:
        status = response.status_code
        if status in _RETRY_STATUSES:
            action = ResponseAction.RATE_LIMITED if status == 429 else ResponseAction.RETRY
            return self._retry(response, f"HTTP {status}", _vendor_message(response), action)
        if response.is_redirect:
            problem = f"a redirect (HTTP {status}) that was not followed"
        else:
            problem = f"HTTP {status}: {_vendor_message(response) or 'no explanation given'}"
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.system_error,
            error_message=(
                f"{self.vendor} answered {_request(response)} with {problem}. Retrying cannot "
                "change that answer, so the sync stopped."
            ),
        )

    def _retry(
        self,
        response: requests.Response,
        cause: str,
        detail: str | None = None,
        action: ResponseAction = ResponseAction.RETRY,
    ) -> ErrorResolution:
        text = f"{self.vendor} answered {_request(response)} with {cause}"
        return ErrorResolution(
            response_action=action,
            failure_type=FailureType.transient_error,
            error_message=f"{text} ({detail})" if detail and detail not in text else text,
        )


SUCCESS_RESOLUTION = ErrorResolution(response_action=ResponseAction.SUCCESS)
LOG = logging.getLogger("airbyte")
# The keys of the facts logged so far: each once per sync (a sync is a process), however
# many streams or threads come across it.
_LOGGED_ONCE: set[tuple[Any, ...]] = set()
_LOGGED_ONCE_LOCK = threading.Lock()


def log_once(key: tuple[Any, ...], message: str, level: int = logging.INFO) -> None:
    """Logs `message` unless a message was already logged under `key`."""
    with _LOGGED_ONCE_LOCK:
        if key in _LOGGED_ONCE:
            return
        _LOGGED_ONCE.add(key)
    LOG.log(level, message)
_RETRYING = (ResponseAction.RETRY, ResponseAction.RATE_LIMITED)
# Statuses that say "try again"; vendors add their own with a RETRY response filter.
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NOT_JSON: Any = object()


def _json_body(response: requests.Response) -> Any:
    """The response's parsed body, or NOT_JSON; with the CDK's own parser (orjson first):
    the standard library's took a tenth of a sync's CPU."""
    parser = JsonParser()
    body = parser._parse_orjson(response.content)
    if body is None:
        body = parser._parse_json(response.content)
    if body is None and response.content.strip() != b"null":
        return NOT_JSON
    return body


def _request(response: requests.Response) -> str:
    # The path only: a query string can hold personal data (Capillary's identifierValue).
    return f"{response.request.method} {urlsplit(response.request.url or '').path}"


def unexpected(body: Any, path: list[str], expected: str) -> str:
    """What came instead of `expected` at `path`, without quoting values (personal data)."""
    where = f" under '{'.'.join(path)}'" if path else ""
    if isinstance(body, Mapping):
        keys = ", ".join(f"'{k}'" for k in list(body)[:5]) or "none"
        got = f"an object with the keys {keys}"
        message = body.get("message") or value_at(body, ["error", "description"])
        if isinstance(message, str):
            got += f" (message: {message[:200]!r})"
    elif isinstance(body, list):
        got = "a JSON array"
    else:
        got = "null" if body is None else f"a JSON {type(body).__name__}"
    return f"a body that is not the documented shape: expected {expected}{where}, got {got}"


def _missing_key(record: Any, key: list[str]) -> str | None:
    """The first field of `key` that `record` lacks (absent, null or empty), if any."""
    if not isinstance(record, Mapping):
        return key[0] if key else "(the record is not an object)"
    for name in key:
        if record.get(name) in (None, ""):
            return name
    return None


def _vendor_message(response: requests.Response) -> str:
    """The explanation in an error body, in any of the vendors' formats, else ""."""
    body = _json_body(response)
    for path in (["message"], ["error", "description"], ["error_description"], ["error"]):
        text = value_at(body, path)
        if isinstance(text, str) and text:
            return text[:300]
    return vendor_errors(body)[:300]


def _exception_resolution(error: Exception | None, checking: bool = False) -> ErrorResolution:
    """A request that got no answer: retried, naming why, unless retrying cannot help. A host
    that cannot be reached at all fails a `check` at once: someone is waiting on it, and the
    usual cause is a typo in base_url; a sync retries it, as an outage is worth waiting out."""
    if isinstance(error, requests.exceptions.TooManyRedirects):
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.system_error,
            error_message=(
                f"The API redirected a request in a loop ({error}); stopped instead of "
                "following it."),
        )
    if isinstance(error, (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                          requests.exceptions.MissingSchema)):
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.config_error,
            error_message=f"The request's URL is not usable ({error}): check base_url.",
        )
    why = unreachable(error)
    if why is not None:
        return ErrorResolution(
            response_action=ResponseAction.FAIL if checking else ResponseAction.RETRY,
            failure_type=FailureType.config_error if checking else FailureType.transient_error,
            error_message=f"Could not connect to {request_host(error)} ({why}): check base_url.",
        )
    if isinstance(error, requests.exceptions.Timeout):
        cause = "timed out"
    elif isinstance(error, requests.exceptions.ChunkedEncodingError):
        cause = "was cut off mid-answer"
    elif isinstance(error, requests.exceptions.ConnectionError):
        cause = "failed to connect or was reset"
    else:
        cause = "failed"
    return ErrorResolution(
        response_action=ResponseAction.RETRY,
        failure_type=FailureType.transient_error,
        error_message=f"The request {cause} ({type(error).__name__}: {error})",
    )


def unreachable(error: BaseException | None) -> str | None:
    """Why no connection to the host could be made, in a user's words; None if there was one
    (an answer cut off, a read timeout) or the error is not a connection's."""
    if isinstance(error, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "it did not accept a connection in time"
    if not isinstance(error, requests.exceptions.ConnectionError):
        return None
    causes = _causes(error)
    if any(isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError"
           for c in causes):
        return "the name does not resolve"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or \
            "Connection refused" in str(error):
        return "the connection was refused"
    if any(type(c).__name__ == "NewConnectionError" for c in causes):
        return "no connection could be made"
    return None


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps: urllib3 keeps the cause as `reason` inside its own error,
    which `requests` keeps as its first argument."""
    found: list[BaseException] = []
    pending: list[Any] = [error]
    while pending and len(found) < 12:
        item = pending.pop()
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        pending += [getattr(item, "reason", None), item.__cause__, item.__context__,
                    *(a for a in item.args if isinstance(a, BaseException))]
    return found


def request_host(error: BaseException | None) -> str:
    """The host (and port, if not the scheme's own) a failed request went to: never its path
    or query, which can hold personal data."""
    request = getattr(error, "request", None)
    parts = urlsplit(getattr(request, "url", None) or "")
    return parts.netloc.rpartition("@")[2] or "the API"


def _not_the_api(response: requests.Response, vendor: str) -> ErrorResolution | None:
    """A 404 that is not the vendor's own (an HTML page, a proxy's text, where the vendor
    answers JSON or nothing): the address is wrong, which no retry and no other setting fixes.
    """
    if not response.content.strip() or _json_body(response) is not NOT_JSON:
        return None
    declared = (response.headers.get("Content-Type") or "").split(";")[0].strip()
    what = "an HTML page" if "html" in declared else \
        f"{len(response.content)} bytes of {declared or 'text of no declared type'}"
    return ErrorResolution(
        response_action=ResponseAction.FAIL,
        failure_type=FailureType.config_error,
        error_message=(
            f"{_host_of(response)} answered {_request(response)} with HTTP 404 and {what}, "
            f"not {vendor}'s API: check base_url."),
    )


def _host_of(response: requests.Response) -> str:
    return urlsplit(response.request.url or "").netloc.rpartition("@")[2] or "The API"


@dataclass
class RetryAfter(BackoffStrategy):
    """Waits as `Retry-After` asks, in either form RFC 9110 allows: seconds or an HTTP-date.

    The CDK's WaitTimeFromHeader reads seconds only, and raises on a date. A value that
    makes no sense (a word, a negative number, a date past) gives no wait, so the next
    strategy's backoff applies; a wait of `max_waiting_time_in_seconds` or more stops the
    sync rather than hold it.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    header: str = "Retry-After"
    max_waiting_time_in_seconds: float = 300

    def backoff_time(
        self, response_or_exception: requests.Response | requests.RequestException | None,
        attempt_count: int,
    ) -> float | None:
        if not isinstance(response_or_exception, requests.Response):
            return None
        wait = retry_after_seconds(response_or_exception.headers.get(self.header))
        if wait is not None and wait >= self.max_waiting_time_in_seconds:
            raise AirbyteTracedException(
                message=(
                    f"The API asked to wait {wait:.0f} s before retrying ({self.header}), "
                    f"{self.max_waiting_time_in_seconds:.0f} s or more: stopped the sync "
                    "rather than hold it. Try again later."
                ),
                failure_type=FailureType.transient_error,
            )
        return wait


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait by a `Retry-After` value; None if it names no wait in the future."""
    text = (value or "").strip()
    if text.isdigit():  # delay-seconds = 1*DIGIT
        return float(text) or None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    wait = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return math.ceil(wait) if wait > 0 else None


def refuse_redirect_elsewhere(response: requests.Response, **kwargs: Any) -> None:
    """A `requests` response hook: a redirect to another scheme or host is not followed.

    `requests` follows redirects anywhere and drops only the `Authorization` header on the
    way; a credential sent in a header of the vendor's own would go along.
    """
    if not response.is_redirect:
        return
    target = urlsplit(urljoin(response.url, response.headers.get("Location", "")))
    origin = urlsplit(response.url)
    if (target.scheme, target.netloc) != (origin.scheme, origin.netloc):
        raise refused_elsewhere("The API redirected a request", target)


def refused_elsewhere(what: str, elsewhere: SplitResult) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=(
            f"{what} to another host or scheme ({elsewhere.scheme}://{elsewhere.netloc}); "
            "refused to follow it so that no credential leaves the configured base_url."
        ),
        failure_type=FailureType.system_error,
    )



def value_at(document: Any, path: list[str]) -> Any:
    """The value at `path` in nested mappings, or None where the path breaks off."""
    for key in path:
        document = document.get(key) if isinstance(document, Mapping) else None
    return document



def vendor_errors(answer: Any) -> str:
    """Capillary's `errors` list as `code: message; ...`, or "" when the body holds none."""
    errors = answer.get("errors") if isinstance(answer, Mapping) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, Mapping)
    )



def skip_cause(answer: requests.Response | Exception | None) -> str:
    """Why an ignored answer was skipped: the vendor's error code if it sent one (Capillary's
    `error 8015`), else its status (`HTTP 404`)."""
    if not isinstance(answer, requests.Response):
        return retry_cause(answer)
    code = vendor_errors(_json_body(answer)).partition(":")[0]
    return f"error {code}" if code else f"HTTP {answer.status_code}"
