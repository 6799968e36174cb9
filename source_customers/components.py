"""Custom CDK components for the vendor quirks that YAML cannot express.

This module is injected as-is into the platform's `source-declarative-manifest` runner
(`__injected_components_py`), so it imports nothing but the standard library and
`airbyte_cdk`, and every component is stateless: one retriever is shared by all threads.
"""

# No `from __future__ import annotations`: the platform's runner executes this file as a
# module it has not registered yet, and dataclasses cannot resolve string annotations there.
import base64
import contextlib
import datetime
import email.utils
import hashlib
import heapq
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import Future
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import SplitResult, quote_plus, urljoin, urlsplit

import requests
from airbyte_cdk.models import (
    AirbyteEstimateTraceMessage,
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteTraceMessage,
    EstimateType,
    FailureType,
    Level,
    StreamDescriptor,
    TraceType,
    Type,
)
from airbyte_cdk.sources.concurrent_source import concurrent_read_processor
from airbyte_cdk.sources.concurrent_source.concurrent_read_processor import (
    ConcurrentReadProcessor,
)
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.auth.oauth import DeclarativeOauth2Authenticator
from airbyte_cdk.sources.declarative.auth.token import BasicHttpAuthenticator
from airbyte_cdk.sources.declarative.decoders.composite_raw_decoder import JsonParser
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.partition_routers.list_partition_router import (
    ListPartitionRouter,
)
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import (
    BackoffStrategy,
)
from airbyte_cdk.sources.declarative.requesters.error_handlers.default_error_handler import (
    DefaultErrorHandler,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies import (
    CursorPaginationStrategy,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.concurrent.partition_enqueuer import PartitionEnqueuer
from airbyte_cdk.sources.streams.concurrent.partition_reader import PartitionReader
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.types import Config, Record, StreamSlice, StreamState
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets, filter_secrets
from airbyte_cdk.utils.datetime_helpers import AirbyteDateTime, ab_datetime_now
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

T = TypeVar("T")


@dataclass(kw_only=True)
class NextLinkPagination(CursorPaginationStrategy):
    """Follows a vendor's next-page link (LOKE's `X-Next-Page`, Okendo's `nextUrl`) safely.

    The vendors hand back either an absolute URL or a path. A path is resolved *under*
    `url_base`, because Okendo's `nextUrl` is relative to its `/enterprise` base path and a
    plain URL join drops that prefix; LOKE's absolute paths resolve the same way against its
    path-less root. The CDK follows any link it is given, so this strategy also refuses a
    link to another scheme or host (the credentials would go with it) and a link that
    repeats the page just read (the API ignored its own cursor and would loop forever).
    The resolved URL is the token; use it with `page_token_option: RequestPath`.

    The link is read from the response header `link_header` (any letter case), or else from
    `cursor_value`. A header is read without parsing the body a second time: for pages of
    1,000 records that second parse was a tenth of a sync's CPU.
    """

    cursor_value: InterpolatedString | str = ""
    link_header: str = ""
    url_base: str = ""
    vendor: str = "The API"
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._url_base = InterpolatedString.create(self.url_base, parameters=parameters)

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        page_size_override: int | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> Any | None:
        if self.link_header:
            link = response.headers.get(self.link_header)
        else:
            link = super().next_page_token(
                response,
                last_page_size,
                last_record,
                last_page_token_value,
                page_size_override=page_size_override,
                stream_slice=stream_slice,
            )
        if not link:
            return None
        base = str(self._url_base.eval(self.config)).rstrip("/")
        url = resolve_next_link(base, str(link), self.vendor)
        if url in (last_page_token_value, response.request.url):
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} returned the same next-page link twice, so paging would never "
                    "end. Stopped the sync instead of looping; no later page was read."
                ),
                internal_message=f"repeated next-page link from {response.request.url}",
                failure_type=FailureType.system_error,
            )
        return url


def resolve_next_link(base: str, link: str, vendor: str = "The API") -> str:
    """The absolute URL of `link`, which must stay on `base`'s scheme and host."""
    parts = urlsplit(link)
    base_parts = urlsplit(base)
    if parts.scheme or parts.netloc:
        if (parts.scheme, parts.netloc) != (base_parts.scheme, base_parts.netloc):
            raise _refused(f"{vendor} sent a next-page link", parts)
        return link
    path = link if link.startswith("/") else "/" + link
    base_path = base_parts.path.rstrip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        return f"{base_parts.scheme}://{base_parts.netloc}{path}"
    return base + path


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
                _progress_skip(skip_cause(response_or_exception))
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
        return _exception_resolution(answer)

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
            records = _at(body, self.records_path) if self.records_path else body
            if not isinstance(records, list):
                return self._retry(response, _unexpected(body, self.records_path, "a JSON array"))
        elif self.record_path is not None:
            record = _at(body, self.record_path) if self.record_path else body
            # A one-record answer without its key is not the record: an error object, say.
            if not isinstance(record, Mapping) or _missing_key(record, self.record_key):
                expected = "a JSON object" + "".join(f" with '{k}'" for k in self.record_key[:1])
                return self._retry(response, _unexpected(body, self.record_path, expected))
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
_LOG = logging.getLogger("airbyte")
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
    _LOG.log(level, message)
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


def _unexpected(body: Any, path: list[str], expected: str) -> str:
    """What came instead of `expected` at `path`, without quoting values (personal data)."""
    where = f" under '{'.'.join(path)}'" if path else ""
    if isinstance(body, Mapping):
        keys = ", ".join(f"'{k}'" for k in list(body)[:5]) or "none"
        got = f"an object with the keys {keys}"
        message = body.get("message") or _at(body, ["error", "description"])
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
        text = _at(body, path)
        if isinstance(text, str) and text:
            return text[:300]
    return _vendor_errors(body)[:300]


def _exception_resolution(error: Exception | None) -> ErrorResolution:
    """A request that got no answer: retried, naming why, unless retrying cannot help."""
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
        raise _refused("The API redirected a request", target)


def _refused(what: str, elsewhere: SplitResult) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=(
            f"{what} to another host or scheme ({elsewhere.scheme}://{elsewhere.netloc}); "
            "refused to follow it so that no credential leaves the configured base_url."
        ),
        failure_type=FailureType.system_error,
    )


# --- loke ---


@dataclass
class SharedClientCredentialsOAuthenticator(DeclarativeOauth2Authenticator):
    """LOKE's OAuth2 client_credentials token, fetched once per sync and shared by all streams.

    The CDK builds one authenticator per stream (and one more for a child stream's reader of
    its parent), each fetching a token of its own; a token is a token for the whole client,
    so this one keeps it per token endpoint and client until it expires. A token the API has
    rejected is never handed out again. A wrong client ID or secret (OAuth2's
    `invalid_client`) becomes a config error that says so, instead of the CDK's wording about
    refresh tokens, which a client_credentials grant does not have.
    """

    _tokens: ClassVar[dict[tuple[str, str, str], tuple[str, AirbyteDateTime]]] = {}
    _tokens_lock: ClassVar[threading.Lock] = threading.Lock()

    def refresh_access_token(self) -> tuple[str, AirbyteDateTime]:
        secret = hashlib.sha256(str(self.get_client_secret()).encode()).hexdigest()
        key = (str(self.get_token_refresh_endpoint()), str(self.get_client_id()), secret)
        with self._tokens_lock:
            cached = self._tokens.get(key)
            if (cached and ab_datetime_now() < cached[1]
                    and cached[0] != self._current_access_token_or_none()):
                return cached
            try:
                fresh: tuple[str, AirbyteDateTime] = super().refresh_access_token()
            except AirbyteTracedException as error:
                if error.failure_type != FailureType.config_error:
                    raise
                raise AirbyteTracedException(
                    message=(
                        "The OAuth2 token endpoint rejected the client credentials: check "
                        "credentials.client_id, credentials.client_secret and "
                        f"credentials.token_url. ({error.message})"
                    ),
                    internal_message=error.internal_message,
                    failure_type=FailureType.config_error,
                ) from error
            self._tokens[key] = fresh
            return fresh

    # The CDK retries a token request that meets 429, 5xx or a connection error, but not a
    # 408, nor a 200 whose body is cut short, not JSON, or holds no token (an error object):
    # the sync would end on a bare JSONDecodeError or "An unexpected error occurred ...".
    _broken_answer_retries: ClassVar[int] = 5

    def _make_handled_request(self) -> Any:
        for attempt in range(self._broken_answer_retries + 1):
            try:
                answer = super()._make_handled_request()
            except (requests.exceptions.JSONDecodeError,
                    requests.exceptions.ChunkedEncodingError) as error:
                problem = f"a body that is cut short or not JSON ({type(error).__name__})"
            except requests.exceptions.HTTPError as error:
                # The CDK retries 429 and 5xx only; 408 says "try again" as plainly.
                if error.response is None or error.response.status_code != 408:
                    raise
                problem = "HTTP 408"
            else:
                if isinstance(answer, Mapping) and self._extract_access_token(answer):
                    return answer
                expected = f"an object with '{self.get_access_token_name()}'"
                problem = _unexpected(answer, [], expected)
            time.sleep(2**attempt)
        raise AirbyteTracedException(
            message=(
                f"The OAuth2 token endpoint kept answering with {problem}, "
                f"{self._broken_answer_retries + 1} times. Try again later; if it persists, "
                "check credentials.token_url."
            ),
            failure_type=FailureType.transient_error,
        )


# --- capillary ---

def _at(document: Any, path: list[str]) -> Any:
    """The value at `path` in nested mappings, or None where the path breaks off."""
    for key in path:
        document = document.get(key) if isinstance(document, Mapping) else None
    return document


def _register_secret(value: str) -> None:
    """Masks `value` (a credential derived from the config) in every later log line and message."""
    if value and filter_secrets(value) != "****":
        add_to_secrets(value)


@dataclass
class Md5BasicAuthenticator(DeclarativeAuthenticator):
    """Capillary's Basic auth, `Authorization: Basic base64(username:md5hex(password))`.

    The md5 is taken of the password exactly as configured: it is read by path, not through
    Jinja, which would turn a password such as `1.50` or `0x1F` into a number first. The md5
    and the header are registered as secrets, because the CDK's log filter knows only the plain
    password and its debug logs print the request headers.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    username_path: list[str] = field(default_factory=lambda: ["credentials", "username"])
    password_path: list[str] = field(default_factory=lambda: ["credentials", "password"])

    @property
    def auth_header(self) -> str:
        return "Authorization"

    @property
    def token(self) -> str:
        username = _at(self.config, self.username_path)
        password = _at(self.config, self.password_path)
        if username is None or password is None:
            raise AirbyteTracedException(
                message="Basic authentication needs credentials.username and credentials.password.",
                failure_type=FailureType.config_error,
            )
        digest = hashlib.md5(str(password).encode("utf-8"), usedforsecurity=False).hexdigest()
        encoded = base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")
        _register_secret(digest)
        _register_secret(encoded)
        return f"Basic {encoded}"


_TOKEN_RETRY_STATUSES = frozenset({408, 429, 461, 500, 502, 503, 504, 521})


def _vendor_errors(answer: Any) -> str:
    """Capillary's `errors` list as `code: message; ...`, or "" when the body holds none."""
    errors = answer.get("errors") if isinstance(answer, Mapping) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, Mapping)
    )


@dataclass
class CapillaryTokenAuthenticator(DeclarativeAuthenticator):
    """Capillary's OAuth: a token from `POST token_url` with JSON `{"key", "secret"}`, sent as
    `X-CAP-API-OAUTH-TOKEN` and renewed before the `ttlSeconds` it came with run out.

    The CDK's OAuthAuthenticator posts a form and sends `Authorization: Bearer`; its
    SessionTokenAuthenticator renews only after a fixed duration written in the manifest
    (Capillary sets the lifetime per API client, down to 300 s) and debug-logs the token
    response before anything masks the token. So the token is fetched here the way the CDK's
    OAuthAuthenticator fetches its own: masked before anything is logged, retried on 408, 429, 461
    and 5xx, and a rejection is a config error quoting Capillary's code and message. The key
    and secret are read by path, not through Jinja, which could turn them into numbers. The
    token is this component's one piece of state, shared by all threads behind a lock.
    The token travels in a header of Capillary's own, which `requests` keeps on a redirect to
    any host (it strips only `Authorization`): a redirect off base_url's host and scheme is
    refused, and the token request follows no redirect (a 307 would re-send the secret).
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    token_url: str = ""
    key_path: list[str] = field(default_factory=lambda: ["credentials", "client_key"])
    secret_path: list[str] = field(default_factory=lambda: ["credentials", "client_secret"])
    header: str = "X-CAP-API-OAUTH-TOKEN"
    max_retries: int = 5
    # When a response states no lifetime: Capillary's shortest.
    default_ttl_seconds: float = 300.0

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._token_url = InterpolatedString.create(self.token_url, parameters=parameters)
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    @property
    def auth_header(self) -> str:
        return self.header

    def __call__(self, request: requests.PreparedRequest) -> Any:
        hooks = request.hooks.setdefault("response", [])
        if refuse_redirect_elsewhere not in hooks:  # called again on every retry
            hooks.append(refuse_redirect_elsewhere)
        return super().__call__(request)

    @property
    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() >= self._renew_at:
                self._token, self._renew_at = self._generate()
            return self._token

    def _generate(self) -> tuple[str, float]:
        url = str(self._token_url.eval(self.config))
        body = {"key": _at(self.config, self.key_path),
                "secret": _at(self.config, self.secret_path)}
        problem = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = requests.post(
                    url, json=body, headers={"Accept": "application/json"},
                    timeout=(30, DEFAULT_DEADLINE_SECONDS), allow_redirects=False,
                )
            except requests.RequestException as error:
                problem = str(error)
                time.sleep(2**attempt)
                continue
            if response.status_code in _TOKEN_RETRY_STATUSES:
                problem = f"HTTP {response.status_code}"
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                time.sleep(min(wait, 300.0) if wait else 2**attempt)
                continue
            if response.is_redirect:
                target = urlsplit(urljoin(url, response.headers.get("Location", "")))
                raise AirbyteTracedException(
                    message=(
                        f"Capillary's token endpoint redirected the request (HTTP "
                        f"{response.status_code}) to {target.scheme}://{target.netloc}"
                        f"{target.path}; not followed, since it would send the client secret "
                        "again. Check that base_url is your cluster's https:// root."
                    ),
                    failure_type=FailureType.config_error,
                )
            try:
                answer = response.json()
            except ValueError:
                if response.ok:  # a body cut short, or a proxy's page: not an answer, retry
                    problem = f"HTTP {response.status_code} with a body that is not JSON"
                    time.sleep(2**attempt)
                    continue
                answer = None
            token = _at(answer, ["data", "accessToken"])
            if response.ok and token:
                _register_secret(str(token))
                try:
                    ttl = float(_at(answer, ["data", "ttlSeconds"]))
                except (TypeError, ValueError):
                    ttl = self.default_ttl_seconds
                if not math.isfinite(ttl) or ttl <= 0:
                    ttl = self.default_ttl_seconds
                # Renew a tenth of the lifetime early (at most a minute), so that a request
                # sent just before the expiry does not arrive with a dead token.
                return str(token), time.monotonic() + ttl - min(60.0, ttl / 10)
            reason = _vendor_errors(answer) or f"HTTP {response.status_code}"
            enveloped = isinstance(answer, Mapping) and {"data", "errors"} <= answer.keys()
            if response.ok and not enveloped:
                # Not Capillary's `{"data", "errors"}` envelope (a proxy's error object, a
                # wrapped answer): not an answer to the request, so it is asked again.
                expected = "an object with 'data.accessToken'"
                problem = f"HTTP {response.status_code}, {_unexpected(answer, [], expected)}"
                time.sleep(2**attempt)
                continue
            raise AirbyteTracedException(
                message=(
                    f"Capillary did not issue an OAuth token ({reason}). Check "
                    "credentials.client_key and credentials.client_secret, and that the API "
                    "client belongs to the cluster in base_url."
                ),
                internal_message=f"POST {url} answered HTTP {response.status_code}",
                failure_type=FailureType.config_error,
            )
        raise AirbyteTracedException(
            message=(
                f"Capillary's token endpoint kept failing ({problem}) after "
                f"{self.max_retries + 1} attempts. Try again later."
            ),
            failure_type=FailureType.transient_error,
        )


@dataclass
class MaskedListPartitionRouter(ListPartitionRouter):
    """A ListPartitionRouter whose values are personal data (Capillary's identifiers: mobile
    numbers, e-mail addresses) and are masked in every log line and error message.

    Each value travels in a request's query string, which the CDK quotes in full in its error
    messages and debug logs. Values shorter than `min_masked_length` are left alone: masking
    "7" would mask every 7 in every message.
    """

    min_masked_length: int = 5

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        # Registered as they are: checking each against those registered first (as
        # `_register_secret` does) costs a second for 2,000 identifiers.
        for value in dict.fromkeys(str(v) for v in self.values):
            if len(value) >= self.min_masked_length:
                add_to_secrets(value)

    def stream_slices(self) -> Iterable[StreamSlice]:
        _progress_expect(len(self.values))  # one partition per value: an ESTIMATE trace
        yield from super().stream_slices()


# --- malomo ---

@dataclass
class LastItemCursorPagination(PaginationStrategy):
    """Pages a bare JSON array by a field of its last item (Malomo's `next=<last record's id>`).

    The cursor is read from the page as the API sent it, not from the last record emitted:
    a client-side incremental filter can drop every record of a page, and paging must go on
    past such a page. An empty page ends. An API that ignores the cursor answers with a page
    it already gave, which would be read forever, so a page that holds the very item it was
    asked to start after stops the sync with an error. Use it with a `page_token_option`
    that sends the token as the vendor's cursor parameter.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    cursor_field: str = "id"
    vendor: str = "The API"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        pass

    @property
    def initial_token(self) -> Any | None:
        return None

    def get_page_size(self) -> int | None:
        return None

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        page_size_override: int | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> Any | None:
        try:
            page = response.json()
        except ValueError:
            return None
        if not isinstance(page, list) or not page:
            return None
        cursors = [item.get(self.cursor_field) if isinstance(item, Mapping) else None
                   for item in page]
        if last_page_token_value is not None and str(last_page_token_value) in map(str, cursors):
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} answered the request for the records after "
                    f"{last_page_token_value!r} with a page holding that record again: the API "
                    "ignored the paging cursor, so paging would never end. Stopped the sync "
                    "instead of looping; no later page was read."
                ),
                internal_message=f"page cursor not honoured by {response.request.url}",
                failure_type=FailureType.system_error,
            )
        cursor = cursors[-1]
        if cursor is None or cursor == "":
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} sent a page whose last record has no '{self.cursor_field}', "
                    "so the next page cannot be asked for. Stopped rather than skip records."
                ),
                failure_type=FailureType.system_error,
            )
        return str(cursor)

# --- okendo ---



@dataclass
class MaskedBasicHttpAuthenticator(BasicHttpAuthenticator):
    """Okendo's Basic auth (user ID : API key), with the encoded credentials masked.

    The CDK masks the API key as configured, but its debug log prints every request's
    headers, where `Basic base64(user:key)` gives the key away to anyone who decodes it: the
    encoded value is registered as a secret before any request is sent.
    """

    @property
    def token(self) -> str:
        header = str(super().token)
        _register_secret(header.removeprefix("Basic "))
        return header


def okendo_mask_email(address: str) -> str:
    """`z***@example.com`: enough to tell log lines apart, too little to be personal data."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


@dataclass
class OkendoCustomerLookup(PartitionRouter):
    """One partition per customer, because Okendo has no customer list: each configured
    e-mail address is resolved with `POST /customer_lookup` (the `requester`).

    Every stream partitions this way, and an address is looked up once per sync, however
    many streams need it: results are shared (per API root, user and address) by all
    instances, and up to `workers` lookups run at a time, in the configured order. Addresses
    compare case-insensitively (the first spelling is kept); an address with no customer
    (Okendo's 404) is skipped, logged masked and counted in a closing log line; two
    addresses of one customer yield that customer once. The address travels in the slice's
    `extra_fields`, not its partition, so it never becomes part of saved state, and it is
    registered with the CDK's secret filter before it is sent, so the CDK's own error logs
    (which quote request bodies) show `****`.

    Without a `requester` each distinct address is a partition as it is (the loyalty
    endpoints take the address itself). `access_probe`, if given, is sent once first: an
    answer of 403 (a store without the product the stream reads; its error handler warns)
    means no partition at all, rather than one refused request per address.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    requester: Requester | None = None
    emails_field: str = "customer_emails"
    workers: int | str = 4  # may interpolate the config
    access_probe: Requester | None = None

    _lookups: ClassVar[dict[tuple[str, str, str], "Future[str | None]"]] = {}
    _lookups_lock: ClassVar[threading.Lock] = threading.Lock()

    def stream_slices(self) -> Iterable[StreamSlice]:
        addresses = [str(a) for a in self.config.get(self.emails_field) or []]
        for address in dict.fromkeys(addresses):
            # As written, and as it appears inside a JSON request body or a query string.
            for form in {address, json.dumps(address)[1:-1], quote_plus(address)}:
                add_to_secrets(form)
        distinct: dict[str, str] = {}
        for address in addresses:
            distinct.setdefault(address.casefold(), address)
        if not distinct:
            log_once(
                ("no addresses", id(self.config)),
                f"Okendo: no {self.emails_field} configured, so the per-customer streams "
                "(customers, their profiles, activities and loyalty standing) are empty; the "
                "store's reviews and loyalty rules are read all the same.",
            )
            return
        if self.requester is None:
            if self.access_probe is None or self._has_access(self.access_probe):
                for address in distinct.values():
                    yield StreamSlice(partition={}, cursor_slice={},
                                      extra_fields={"email": address})
            return
        seen_customers: set[str] = set()
        unknown = 0
        workers = int(InterpolatedString.create(str(self.workers), parameters={}).eval(self.config))
        _progress_expect(len(distinct))
        found = _in_parallel(self._customer_id, list(distinct.values()), workers)
        for address, customer_id in zip(distinct.values(), found, strict=True):
            if customer_id is None:
                unknown += 1
            elif customer_id in seen_customers:
                _LOG.info(
                    f"Okendo: {okendo_mask_email(address)} belongs to a customer already "
                    "read through another address; read it once."
                )
            else:
                seen_customers.add(customer_id)
                yield StreamSlice(
                    partition={"customer_id": customer_id},
                    cursor_slice={},
                    extra_fields={"email": address},
                )
        # One summary per sync, not one per stream.
        log_once(
            (str(self.config.get("base_url")), str(self.config.get("user_id")), *distinct),
            f"Okendo customer lookup: {len(addresses)} configured e-mail addresses, "
            f"{len(addresses) - len(distinct)} of them duplicates (looked up once), "
            f"{unknown} with no Okendo customer (skipped), {len(seen_customers)} customers found.",
        )

    @staticmethod
    def _has_access(probe: Requester) -> bool:
        response = probe.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
        return response is not None and response.status_code != 403

    def _customer_id(self, address: str) -> str | None:
        """The lookup's result, from the first stream that asked for it."""
        key = (str(self.config.get("base_url")), str(self.config.get("user_id")),
               address.casefold())
        with self._lookups_lock:
            pending = self._lookups.get(key)
            mine = pending is None
            if pending is None:
                pending = self._lookups[key] = Future()
        if mine:
            try:
                pending.set_result(self._look_up(address))
            except BaseException as error:
                pending.set_exception(error)
        return pending.result()

    def _look_up(self, address: str) -> str | None:
        assert self.requester is not None
        response = self.requester.send_request(
            stream_slice=StreamSlice(partition={}, cursor_slice={}),
            request_body_json={"email": address},
        )
        # The requester's error handler lets only 404 ("no such customer") through.
        if response is None or response.status_code == 404:
            _LOG.info(
                f"Okendo has no customer with the e-mail address {okendo_mask_email(address)} "
                "(HTTP 404); skipped it."
            )
            _progress_skip("unknown address")
            return None
        try:
            customer_id = response.json().get("customerId")
        except (ValueError, AttributeError):
            customer_id = None
        if not customer_id:
            raise AirbyteTracedException(
                message=(
                    f"Okendo answered the lookup of {okendo_mask_email(address)} with HTTP "
                    f"{response.status_code} but no customerId; stopped rather than guess."
                ),
                failure_type=FailureType.system_error,
            )
        return str(customer_id)

    def get_stream_state(self) -> Mapping[str, StreamState] | None:
        return None  # nothing to resume: the addresses come from the config

    def get_request_params(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}

    def get_request_headers(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | str:
        return {}

    def get_request_body_json(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}


def _in_parallel(work: Callable[[str], T], items: list[str], workers: int) -> Iterator[T]:
    """`work` over `items`, up to `workers` at a time, results in the items' order.

    The threads are daemons and take no new item once the results are abandoned: a sync
    that fails while lookups are still retrying with backoff ends at once instead of
    waiting for them (a ThreadPoolExecutor's threads hold the interpreter's exit).
    """
    results: list[Future[T]] = [Future() for _ in items]
    pending = iter(range(len(items)))
    lock, abandoned = threading.Lock(), threading.Event()

    stream = getattr(_PROGRESS.local, "stream", None)  # whose lookups these are

    def run() -> None:
        _PROGRESS.local.stream = stream
        while not abandoned.is_set():
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index].set_result(work(items[index]))
            except BaseException as error:  # handed to the caller, in order
                results[index].set_exception(error)

    for _ in range(max(1, min(workers, len(items)))):
        threading.Thread(target=run, name="okendo-lookup", daemon=True).start()
    try:
        for result in results:
            yield result.result()
    finally:
        abandoned.set()


@dataclass
class OkendoTypedValues(RecordTransformation):
    """Okendo sends every profile property's `value` as a string and names its real type in
    `valueType`: each property keeps `value` as sent and gains `typedValue`, the converted
    value (see `okendo_typed_value`)."""

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Config | None = None,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> None:
        for prop in record.get("properties") or []:
            if isinstance(prop, MutableMapping):
                prop["typedValue"] = okendo_typed_value(prop.get("value"), prop.get("valueType"))


def okendo_typed_value(value: Any, value_type: Any) -> Any:
    """`value` converted by `value_type`; anything that does not parse stays as it came.

    boolean: `true`/`false` (any case); number: a JSON number; string-list: a JSON array;
    location and date-components: a JSON object. Other types (string, date, image, types
    added later) and values that are not strings are returned unchanged.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if value_type == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    expected: tuple[type, ...] = {
        "number": (int, float),
        "string-list": (list,),
        "location": (dict,),
        "date-components": (dict,),
    }.get(str(value_type), ())
    if not expected:
        return value
    try:
        parsed = json.loads(text)
    except ValueError:
        return value
    if isinstance(parsed, bool) or not isinstance(parsed, expected):
        return value
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return value
    return parsed


class OkendoNewCustomersReadFromStart(StateMigration):
    """A customer whose address was just added to `customer_emails` has never been read, yet
    the CDK starts a partition it has no cursor for at the stream's global cursor, which
    would skip that customer's older activities: the saved global cursor is dropped, so such
    a customer is read from `start_date` while customers already read keep their own cursor.
    """

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        # Past the CDK's partition limit the state is one global cursor: left as it is.
        return "state" in stream_state and not stream_state.get("use_global_cursor")

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        return {k: v for k, v in stream_state.items() if k not in ("state", "lookback_window")}


# --- every request ---

# A request sent without a timeout (the CDK's OAuth token request sets none) gets this.
DEFAULT_DEADLINE_SECONDS = 60.0
_requests_send = HTTPAdapter.send
_urllib3_getresponse = HTTPConnection.getresponse


class _Deadline:
    """One request's deadline, and the socket its answer is read from."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.sock: socket.socket | None = None
        self.done = False
        self.expired = False


class _Watchdog:
    """Shuts the socket of every request still unanswered at its deadline.

    One daemon thread for the process, asleep until the earliest deadline: a request costs
    a heap push, not a thread of its own (which cost a sync a fifth of its time in handing
    the interpreter between threads).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._count = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            self._count += 1
            heapq.heappush(self._heap, (deadline.at, self._count, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                deadline.expired = True
                if deadline.sock is not None:
                    with contextlib.suppress(OSError):
                        deadline.sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
_current = threading.local()  # .deadline: the request this thread is sending, if any


def _send_within_deadline(
    adapter: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
) -> requests.Response:
    """`HTTPAdapter.send`, given up once the whole answer has taken longer than its deadline.

    `requests`' read timeout bounds the wait for each byte, not for the answer: a server
    that trickles a byte a second holds a sync forever. The deadline is the read timeout
    (`DEFAULT_DEADLINE_SECONDS` if none was set), from sending to the last byte of the body,
    which is read here (`requests` reads it after `send`). At the deadline the watchdog
    shuts the connection's socket, and the request raises `ReadTimeout`, which every retry
    loop treats as a timeout.
    """
    _progress_request()
    timeout = kwargs.get("timeout")
    if timeout is None:
        seconds = DEFAULT_DEADLINE_SECONDS
        kwargs["timeout"] = (min(30.0, seconds), seconds)
    else:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        seconds = float(read) if isinstance(read, (int, float)) else DEFAULT_DEADLINE_SECONDS
    deadline = _current.deadline = _Deadline(time.monotonic() + seconds)
    _WATCHDOG.watch(deadline)
    try:
        response = _requests_send(adapter, request, *args, **kwargs)
        if not kwargs.get("stream"):
            response.content  # noqa: B018  read within the deadline
        return response
    except requests.exceptions.RequestException:
        if not deadline.expired:
            raise
        raise requests.exceptions.ReadTimeout(
            f"no complete answer within {seconds:g} s (the request's deadline)", request=request
        ) from None
    finally:
        deadline.done, deadline.sock, _current.deadline = True, None, None


def _getresponse_watched(connection: HTTPConnection, *args: Any, **kwargs: Any) -> Any:
    """urllib3's `getresponse`, its socket handed to the watchdog first: the answer, status
    line and headers included, is read from it."""
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None and deadline.sock is None:
        deadline.sock = connection.sock
        if deadline.expired and connection.sock is not None:  # expired while connecting
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
    return _urllib3_getresponse(connection, *args, **kwargs)


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
            _progress_retry(cause, wait)
        elif isinstance(record.msg, str) and record.msg.startswith(self._cdk_default_line):
            wait = record.msg.rpartition("Waiting ")[2].partition(" seconds")[0]
            _progress_retry(sys.exc_info()[1], wait)
        return True


def _progress_retry(error: BaseException | None, wait: str) -> None:
    try:
        seconds = float(wait)
    except ValueError:
        seconds = 0.0
    _progress_wait(seconds, retry_cause(error))


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


def skip_cause(answer: requests.Response | Exception | None) -> str:
    """Why an ignored answer was skipped: the vendor's error code if it sent one (Capillary's
    `error 8015`), else its status (`HTTP 404`)."""
    if not isinstance(answer, requests.Response):
        return retry_cause(answer)
    code = _vendor_errors(_json_body(answer)).partition(":")[0]
    return f"error {code}" if code else f"HTTP {answer.status_code}"


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
        """Records the stream will have read: one per partition until a tenth of them are
        read, then the records per partition so far times the partitions expected. The
        records so far include those of the partitions being read (up to one a worker),
        each taken as half read."""
        if self.expected is None:
            return None
        if self.partitions_read < max(1, self.expected // 10):
            return self.expected
        reading = min(workers, self.partitions - self.partitions_read) / 2
        per_partition = records / (self.partitions_read + max(0.0, reading))
        return round(per_partition * max(self.expected, self.partitions_read))

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
            if _PROGRESS.current is not self or all(p.done for p in self.streams.values()):
                return
            now = time.monotonic()
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
        self.current: _Sync | None = None
        self.local = threading.local()

    def stream(self) -> "tuple[_Sync, StreamProgress] | None":
        sync = self.current
        progress = sync.streams.get(getattr(self.local, "stream", None) or "") if sync else None
        return (sync, progress) if sync is not None and progress is not None else None


_PROGRESS: _Progress = ConcurrentReadProcessor.__dict__.get("_source_customers_progress") \
    or _Progress()


def _progress_request() -> None:
    found = _PROGRESS.stream()
    if found:
        with found[0].lock:
            found[1].requests += 1


def _progress_wait(seconds: float, cause: str | None = None) -> None:
    """Time spent waiting on a rate limit or a backoff; with `cause`, a retry's wait."""
    found = _PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.waited += max(0.0, seconds)
            if cause is not None:
                progress.retries[cause] = progress.retries.get(cause, 0) + 1


def _progress_skip(cause: str) -> None:
    found = _PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.skips[cause] = progress.skips.get(cause, 0) + 1


def _progress_expect(partitions: int) -> None:
    """The stream this thread generates partitions for will have `partitions` of them: an
    ESTIMATE trace says so before any is read."""
    found = _PROGRESS.stream()
    if found:
        sync, progress = found
        with sync.lock:
            progress.expected = partitions if progress.expected is None else progress.expected
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


def failed_streams_message(stream_failures: Mapping[str, list[Exception]]) -> str:
    """The closing error of a failed sync: the streams, not their errors again (each was
    reported as its stream failed)."""
    return (
        "During the sync, the following streams did not sync successfully: "
        f"{', '.join(stream_failures)}. Each stream's error is reported above."
    )


def _install_progress() -> None:
    """Hooks into the CDK's concurrent read, once per process: where partitions are
    generated and read (which stream a thread works for), where a stream starts, ends and
    fails, and where the API budget makes a request wait. Nothing runs per record."""
    if "_source_customers_progress" in ConcurrentReadProcessor.__dict__:
        return
    processor = ConcurrentReadProcessor
    processor._source_customers_progress = _PROGRESS  # type: ignore[attr-defined]
    cdk_init, cdk_on_partition = processor.__init__, processor.on_partition
    cdk_generated = processor.on_partition_generation_completed
    cdk_complete = processor.on_partition_complete_sentinel
    cdk_on_exception, cdk_stream_done = processor.on_exception, processor._on_stream_is_done
    cdk_generate = PartitionEnqueuer.generate_partitions
    cdk_read = PartitionReader.process_partition
    cdk_acquire = APIBudget._do_acquire

    def progress_of(reader: ConcurrentReadProcessor, stream: str
                    ) -> tuple[_Sync, StreamProgress] | None:
        sync = _PROGRESS.current
        progress = sync.streams.get(stream) if sync and sync.processor is reader else None
        return (sync, progress) if sync is not None and progress is not None else None

    def init(self: ConcurrentReadProcessor, *args: Any, **kwargs: Any) -> None:
        cdk_init(self, *args, **kwargs)
        if _PROGRESS.current is not None:
            _PROGRESS.current.ended.set()
        _PROGRESS.current = _Sync(self, progress_seconds())

    def generate(enqueuer: PartitionEnqueuer, stream: Any) -> None:
        sync = _PROGRESS.current
        progress = sync.streams.get(stream.name) if sync else None
        if progress is not None and progress.started is None:
            progress.started = time.monotonic()
        _PROGRESS.local.stream = stream.name
        try:
            cdk_generate(enqueuer, stream)
        finally:
            _PROGRESS.local.stream = None

    def read(reader: PartitionReader, partition: Any, cursor: Any) -> None:
        _PROGRESS.local.stream = partition.stream_name()
        try:
            cdk_read(reader, partition, cursor)
        finally:
            _PROGRESS.local.stream = None

    def on_partition(self: ConcurrentReadProcessor, partition: Any) -> None:
        found = progress_of(self, partition.stream_name())
        if found:
            with found[0].lock:
                found[1].partitions += 1
        cdk_on_partition(self, partition)

    def generated(self: ConcurrentReadProcessor, sentinel: Any) -> Iterator[AirbyteMessage]:
        found = progress_of(self, sentinel.stream.name)
        # A partition router's partitions are known things (a child stream's are its
        # parent's records, now all listed); a stream paged, or windowed by date, has no
        # count to tell before it is read.
        if found and (found[1].expected is not None or _routed(sentinel.stream)):
            sync, progress = found
            with sync.lock:
                progress.expected = progress.partitions
            estimate = sync.estimate(progress)
            if estimate is not None:
                yield estimate
        yield from cdk_generated(self, sentinel)

    def complete(self: ConcurrentReadProcessor, sentinel: Any) -> Iterator[AirbyteMessage]:
        found = progress_of(self, sentinel.partition.stream_name())
        if found:
            with found[0].lock:
                found[1].partitions_read += 1
        yield from cdk_complete(self, sentinel)

    def stream_done(self: ConcurrentReadProcessor, stream: str) -> Iterator[AirbyteMessage]:
        yield from cdk_stream_done(self, stream)
        found = progress_of(self, stream)
        if found:
            sync, progress = found
            with sync.lock:
                progress.done = True
            failed = bool(self._exceptions_per_stream_name.get(stream))
            yield _log_message(progress.summary_line(sync.records(stream), time.monotonic(),
                                                     failed))

    def on_exception(self: ConcurrentReadProcessor, exception: Any) -> Iterator[AirbyteMessage]:
        # Every partition of a stream can fail with the same error, and so can a child
        # stream whose parent failed: reported once per sync, counted each time (the
        # closing error names every stream that failed).
        error = exception.exception
        message = str(getattr(error, "message", None) or error)
        seen: set[str] = self.__dict__.setdefault("_source_customers_errors", set())
        if message in seen:
            self._flag_exception(exception.stream_name, error)
            return
        seen.add(message)
        if not isinstance(error, AirbyteTracedException):
            yield from cdk_on_exception(self, exception)
            return
        # An error the connector raised on purpose says all there is in its ERROR trace:
        # the CDK's log line would repeat it with a Python traceback. Anything else (a bug)
        # keeps the CDK's traceback.
        self._flag_exception(exception.stream_name, error)
        yield error.as_airbyte_message(
            stream_descriptor=StreamDescriptor(name=exception.stream_name))

    def acquire(budget: APIBudget, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            cdk_acquire(budget, *args, **kwargs)
        finally:
            _progress_wait(time.monotonic() - started)

    processor.__init__ = init  # type: ignore[method-assign]
    processor.on_partition = on_partition  # type: ignore[method-assign]
    processor.on_partition_generation_completed = generated  # type: ignore[method-assign]
    processor.on_partition_complete_sentinel = complete  # type: ignore[method-assign]
    processor.on_exception = on_exception  # type: ignore[method-assign]
    processor._on_stream_is_done = stream_done  # type: ignore[method-assign,assignment]
    PartitionEnqueuer.generate_partitions = generate  # type: ignore[method-assign,assignment]
    PartitionReader.process_partition = read  # type: ignore[method-assign,assignment]
    APIBudget._do_acquire = acquire  # type: ignore[method-assign,assignment]
    concurrent_read_processor.generate_failed_streams_error_message = failed_streams_message


def _install() -> None:
    # Once per process, however often this module is loaded (the platform's runner may
    # load it under two names).
    if getattr(HTTPAdapter.send, "__name__", "") != _send_within_deadline.__name__:
        HTTPAdapter.send = _send_within_deadline  # type: ignore[method-assign,assignment]
        HTTPConnection.getresponse = _getresponse_watched  # type: ignore[method-assign,assignment]
    logger = logging.getLogger("airbyte")
    if not any(type(f).__name__ == _RetryLogNamesItsCause.__name__ for f in logger.filters):
        logger.addFilter(_RetryLogNamesItsCause())
    _install_progress()


_install()
