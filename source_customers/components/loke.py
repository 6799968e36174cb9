"""LOKE's quirk: an OAuth2 client_credentials token the CDK would fetch once per stream."""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.oauth import DeclarativeOauth2Authenticator
from airbyte_cdk.utils.datetime_helpers import AirbyteDateTime, ab_datetime_now
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.components.answers import unexpected
from source_customers.runtime.deadline import redirects_refused


class TokenRequestRefused(AirbyteTracedException):
    """A token request refused in a way this module has already put in words."""


@dataclass
class SharedClientCredentialsOAuthenticator(DeclarativeOauth2Authenticator):
    """LOKE's OAuth2 client_credentials token, fetched once per sync and shared by all streams.

    The CDK builds one authenticator per stream (and one more for a child stream's reader of
    its parent), each fetching a token of its own; a token is a token for the whole client,
    so this one keeps it per token endpoint and client until it expires. A token the API has
    rejected is never handed out again. A wrong client ID or secret (OAuth2's
    `invalid_client`) becomes a config error that says so, instead of the CDK's wording about
    refresh tokens, which a client_credentials grant does not have. The token request follows
    no redirect: `requests` would send the body, client secret included, where it points.
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
                if error.failure_type != FailureType.config_error or \
                        isinstance(error, TokenRequestRefused):
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

    @staticmethod
    def _refused(response: requests.Response) -> TokenRequestRefused:
        """A token request refused other than as `invalid_client` (400 without that code,
        403, 404, ..., or a redirect): the config is what can fix it, so it says which keys."""
        if response.is_redirect:
            target = urlsplit(urljoin(response.url, response.headers.get("Location", "")))
            return TokenRequestRefused(
                message=(
                    f"The OAuth2 token endpoint redirected the request (HTTP "
                    f"{response.status_code}) to {target.scheme}://{target.netloc}{target.path}; "
                    "not followed, since it would send the client secret again. Check "
                    "credentials.token_url."
                ),
                internal_message=f"token request redirected with HTTP {response.status_code}",
                failure_type=FailureType.config_error,
            )
        said = ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            parts = [str(body[k]) for k in ("error", "error_description", "message")
                     if isinstance(body.get(k), (str, int))]
            said = f": {'; '.join(parts)[:200]}" if parts else ""
        return TokenRequestRefused(
            message=(
                f"The OAuth2 token endpoint answered HTTP {response.status_code}{said}. Check "
                "credentials.token_url, credentials.client_id and credentials.client_secret."
            ),
            internal_message=f"token request refused with HTTP {response.status_code}",
            failure_type=FailureType.config_error,
        )

    # The CDK retries a token request that meets 429, 5xx or a connection error, but not a
    # 408, nor a 200 whose body is cut short, not JSON, or holds no token (an error object):
    # the sync would end on a bare JSONDecodeError or "An unexpected error occurred ...".
    _broken_answer_retries: ClassVar[int] = 5

    def _make_handled_request(self) -> Any:
        for attempt in range(self._broken_answer_retries + 1):
            try:
                with redirects_refused():
                    answer = super()._make_handled_request()
            except (requests.exceptions.JSONDecodeError,
                    requests.exceptions.ChunkedEncodingError) as error:
                problem = f"a body that is cut short or not JSON ({type(error).__name__})"
            except requests.exceptions.HTTPError as error:
                # The CDK retries 429 and 5xx only; 408 says "try again" as plainly. Any
                # other refusal reached the sync as a bare "HTTPError".
                if error.response is None:
                    raise
                if error.response.status_code != 408:
                    raise self._refused(error.response) from None
                problem = "HTTP 408"
            else:
                if isinstance(answer, Mapping) and self._extract_access_token(answer):
                    return answer
                expected = f"an object with '{self.get_access_token_name()}'"
                problem = unexpected(answer, [], expected)
            time.sleep(2**attempt)
        raise AirbyteTracedException(
            message=(
                f"The OAuth2 token endpoint kept answering with {problem}, "
                f"{self._broken_answer_retries + 1} times. Try again later; if it persists, "
                "check credentials.token_url."
            ),
            failure_type=FailureType.transient_error,
        )

