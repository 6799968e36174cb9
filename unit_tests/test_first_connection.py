"""What a check and a sync make of an address that is wrong: one test per behaviour."""

from __future__ import annotations

import socket

import pytest
import requests
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from source_customers.components.answers import _exception_resolution, _not_the_api
from source_customers.runtime.failures import plain

URL = "https://api.example.invalid/v2/customers/lookup?identifierValue=919876543210"


def failed(error: requests.RequestException) -> requests.RequestException:
    error.request = requests.Request("GET", URL).prepare()
    return error


def name_error() -> requests.ConnectionError:
    reason = NameResolutionError("api.example.invalid", None, socket.gaierror(-2, "unknown"))
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def test_a_name_that_does_not_resolve_fails_a_check_at_once_naming_base_url() -> None:
    resolution = _exception_resolution(failed(name_error()), checking=True)
    assert resolution.response_action == ResponseAction.FAIL
    assert resolution.error_message == (
        "Could not connect to api.example.invalid (the name does not resolve): check base_url.")


def test_a_sync_retries_an_unreachable_host_in_the_same_words() -> None:
    resolution = _exception_resolution(failed(name_error()), checking=False)
    assert resolution.response_action == ResponseAction.RETRY
    assert resolution.error_message == (
        "Could not connect to api.example.invalid (the name does not resolve): check base_url.")


@pytest.mark.parametrize(("error", "why"), [
    (requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(  # type: ignore[arg-type]
        None, "[Errno 111] Connection refused"))), "the connection was refused"),
    (requests.exceptions.SSLError("wrong version number"), "the TLS handshake failed"),
    (requests.exceptions.ConnectTimeout("timed out"), "it did not accept a connection in time"),
])
def test_each_way_of_not_reaching_a_host_is_named(
        error: requests.RequestException, why: str) -> None:
    message = _exception_resolution(failed(error), checking=True).error_message or ""
    assert message == f"Could not connect to api.example.invalid ({why}): check base_url."


def test_an_answer_cut_off_is_retried_by_a_check_too() -> None:
    cut = failed(requests.exceptions.ChunkedEncodingError("connection reset mid-answer"))
    assert _exception_resolution(cut, checking=True).response_action == ResponseAction.RETRY


def html_404(body: bytes, content_type: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = 404, body
    response.headers["Content-Type"] = content_type
    response.request = requests.Request("GET", URL).prepare()
    return response


def test_a_404_page_of_html_names_base_url_without_the_query() -> None:
    resolution = _not_the_api(html_404(b"<html>Not Found</html>", "text/html"), "Capillary")
    assert resolution is not None and resolution.response_action == ResponseAction.FAIL
    assert resolution.error_message == (
        "api.example.invalid answered GET /v2/customers/lookup with HTTP 404 and an HTML page, "
        "not Capillary's API: check base_url.")


@pytest.mark.parametrize("body", [b"", b'{"errors": [{"code": 8015}]}', b"null"])
def test_a_vendors_own_404_keeps_its_own_message(body: bytes) -> None:
    assert _not_the_api(html_404(body, "application/json"), "LOKE") is None


@pytest.mark.parametrize(("cdk", "cause"), [
    ("'Stream customers is not available: Could not connect to x (y): check base_url.'",
     "Could not connect to x (y): check base_url."),
    ("Exhausted available request attempts. Please see logs for more details. Exception: "
     "LOKE answered GET /x with HTTP 503", "LOKE answered GET /x with HTTP 503"),
    ("\"Stream reviews is not available: it's down\"", "it's down"),
    ("A message of our own.", "A message of our own."),
])
def test_the_cdks_words_ahead_of_a_cause_are_left_out(cdk: str, cause: str) -> None:
    assert plain(cdk) == cause
