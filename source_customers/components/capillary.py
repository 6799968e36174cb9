"""Capillary's quirks: Basic auth over the password's md5, an OAuth token posted as JSON
and sent in a header of its own, and identifiers (personal data) as partitions."""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import base64
import hashlib
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.partition_routers.list_partition_router import (
    ListPartitionRouter,
)
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.components.answers import (
    refuse_redirect_elsewhere,
    request_host,
    retry_after_seconds,
    unexpected,
    unreachable,
    value_at,
    vendor_errors,
)
from source_customers.masking import register_personal, register_secret
from source_customers.runtime.deadline import DEFAULT_DEADLINE_SECONDS
from source_customers.runtime.progress import expect_partitions


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
        username = value_at(self.config, self.username_path)
        password = value_at(self.config, self.password_path)
        if username is None or password is None:
            raise AirbyteTracedException(
                message="Basic authentication needs credentials.username and credentials.password.",
                failure_type=FailureType.config_error,
            )
        digest = hashlib.md5(str(password).encode("utf-8"), usedforsecurity=False).hexdigest()
        encoded = base64.b64encode(f"{username}:{digest}".encode()).decode("ascii")
        register_secret(digest)
        register_secret(encoded)
        return f"Basic {encoded}"


_TOKEN_RETRY_STATUSES = frozenset({408, 429, 461, 500, 502, 503, 504, 521})



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
        body = {"key": value_at(self.config, self.key_path),
                "secret": value_at(self.config, self.secret_path)}
        problem = ""
        for attempt in range(self.max_retries + 1):
            try:
                response = requests.post(
                    url, json=body, headers={"Accept": "application/json"},
                    timeout=(30, DEFAULT_DEADLINE_SECONDS), allow_redirects=False,
                )
            except requests.RequestException as error:
                problem = str(error)
                why = unreachable(error)
                if why is not None:
                    problem = f"Could not connect to {request_host(error)} ({why}): check base_url."
                    if self.config.get("connection_check"):  # someone is waiting: no retry
                        raise AirbyteTracedException(
                            message=problem, failure_type=FailureType.config_error) from None
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
            token = value_at(answer, ["data", "accessToken"])
            if response.ok and token:
                register_secret(str(token))
                try:
                    ttl = float(value_at(answer, ["data", "ttlSeconds"]))
                except (TypeError, ValueError):
                    ttl = self.default_ttl_seconds
                if not math.isfinite(ttl) or ttl <= 0:
                    ttl = self.default_ttl_seconds
                # Renew a tenth of the lifetime early (at most a minute), so that a request
                # sent just before the expiry does not arrive with a dead token.
                return str(token), time.monotonic() + ttl - min(60.0, ttl / 10)
            reason = vendor_errors(answer) or f"HTTP {response.status_code}"
            enveloped = isinstance(answer, Mapping) and {"data", "errors"} <= answer.keys()
            if response.ok and not enveloped:
                # Not Capillary's `{"data", "errors"}` envelope (a proxy's error object, a
                # wrapped answer): not an answer to the request, so it is asked again.
                expected = "an object with 'data.accessToken'"
                problem = f"HTTP {response.status_code}, {unexpected(answer, [], expected)}"
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
        if problem.startswith("Could not connect to "):  # the same words as a check's
            raise AirbyteTracedException(message=problem, failure_type=FailureType.config_error)
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
    numbers, e-mail addresses), masked in every output but records.

    Each value travels in a request's query string, which the CDK quotes in full in its error
    messages and debug logs, and in the partition its debug log prints (`slice:` lines).
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        register_personal(self.values)

    def stream_slices(self) -> Iterable[StreamSlice]:
        expect_partitions(len(self.values))  # one partition per value: an ESTIMATE trace
        yield from super().stream_slices()

