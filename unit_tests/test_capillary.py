"""Capillary: one test per documented behaviour (docs/capillary.md)."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from airbyte_cdk.models import Status
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from conftest import check, ids, read, transcript
from source_customers.components import CapillaryTokenAuthenticator

BASE = "https://eu.api.capillarytech.com"
LOOKUP = f"{BASE}/v2/customers/lookup/customerDetails"
TOKEN_URL = f"{BASE}/v3/oauth/token/generate"
USERNAME = "store.server"
PASSWORD = "server123"
PASSWORD_MD5 = "8a16a6b70505eb1f1ff7cdc0cd5559a7"  # the worked example in docs/capillary.md
SECRET = "cap-client-secret-9f8e7d"


def config(*identifiers: str, **extra: Any) -> dict[str, Any]:
    return {"vendor": "capillary", "base_url": BASE,
            "credentials": {"auth_type": "basic", "username": USERNAME, "password": PASSWORD},
            "identifier_name": "mobile", "identifiers": list(identifiers or ["919777785205"]),
            **extra}


def oauth(**extra: Any) -> dict[str, str]:
    return {"auth_type": "oauth", "client_key": "cap-client-key", "client_secret": SECRET, **extra}


def customer(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": 565000000 + n,
            "profiles": [{"firstName": "Zoë", "lastName": "Müller", "source": "INSTORE",
                          "identifiers": [{"type": "mobile", "value": f"91977778{n:04d}"}]}],
            "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 1200.5},
            "warnings": [{"status": False, "code": 8069, "message": "Email not verified"}],
            **extra}


def body_error(code: int, message: str) -> dict[str, Any]:
    return {"errors": [{"status": False, "code": code, "message": message}], "warnings": []}


NOT_FOUND = body_error(8015, "Customer not found for the given identifiers")


def answer_by_identifier(answers: dict[str, Any]) -> Any:
    """A requests-mock callback: the lookup's answer chosen by its identifierValue."""
    def respond(request: Any, context: Any) -> Any:
        value = parse_qs(urlsplit(request.url).query)["identifierValue"][0]
        status, body = answers[value]
        context.status_code = status
        return body
    return respond


def sent_values(requests_mock: Any) -> list[str]:
    return [parse_qs(urlsplit(r.url).query)["identifierValue"][0]
            for r in requests_mock.request_history if r.url.startswith(LOOKUP)]


def test_basic_auth_sends_username_and_md5_of_the_password(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    read(config(), "customers")
    sent = requests_mock.last_request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD_MD5}".encode()).decode()


@pytest.mark.parametrize("password", ["1.50", "0x1F", "Pässwörd 7"])
def test_password_is_hashed_exactly_as_typed(requests_mock: Any, password: str) -> None:
    # Through Jinja "1.50" would become the number 1.5 and "0x1F" the number 31 before hashing.
    requests_mock.get(LOOKUP, json=customer(1))
    credentials = {"auth_type": "basic", "username": USERNAME, "password": password}
    read(config(credentials=credentials), "customers")
    digest = hashlib.md5(password.encode("utf-8")).hexdigest()
    encoded = requests_mock.last_request.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == f"{USERNAME}:{digest}"


def test_lookup_sends_source_identifier_account_and_embed(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    read(config("MJ-77", identifier_name="martjackId", source="MARTJACK", account_id="100458",
                embed=["points", "mlp"]), "customers")
    assert parse_qs(urlsplit(requests_mock.last_request.url).query) == {
        "source": ["MARTJACK"], "identifierName": ["martjackId"], "identifierValue": ["MJ-77"],
        "accountId": ["100458"], "embed": ["points,mlp"]}


def test_source_defaults_to_instore_and_absent_options_are_not_sent(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    read(config("919777785205"), "customers")
    assert parse_qs(urlsplit(requests_mock.last_request.url).query) == {
        "source": ["INSTORE"], "identifierName": ["mobile"], "identifierValue": ["919777785205"]}


def test_record_is_the_customer_without_warnings_plus_the_identifier_as_a_string(
        requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    output = read(config("919777785205"), "customers")
    (record,) = [m.record.data for m in output.records]
    expected = {k: v for k, v in customer(1).items() if k != "warnings"}
    assert record == {**expected, "identifierName": "mobile", "identifierValue": "919777785205"}


def test_identifier_with_leading_zeros_stays_a_string(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    output = read(config("0012345", identifier_name="externalId"), "customers")
    assert ids(output, "customers", "identifierValue") == ["0012345"]


def test_each_identifier_is_looked_up_once(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=customer(1))
    read(config("a@example.com", "b@example.com", "a@example.com", "A@example.com",
                identifier_name="email"), "customers")
    # Exact duplicates only: Capillary may tell identifiers apart by case.
    assert sorted(sent_values(requests_mock)) == ["A@example.com", "a@example.com", "b@example.com"]


@pytest.mark.parametrize("status", [200, 400, 404])
def test_customer_not_found_8015_is_skipped_and_logged_without_the_identifier(
        requests_mock: Any, status: int) -> None:
    requests_mock.get(LOOKUP, json=answer_by_identifier({
        "919700000001": (200, customer(1)), "919700000002": (status, NOT_FOUND),
        "919700000003": (status, NOT_FOUND)}))
    output = read(config("919700000001", "919700000002", "919700000003"), "customers")
    assert ids(output, "customers", "id") == [565000001]
    assert not output.errors
    skipped = [m.log.message for m in output.logs if "code 8015" in m.log.message]
    assert len(skipped) == 2
    assert "919700000002" not in transcript(output)


@pytest.mark.parametrize("status", [200, 400])
def test_identifier_judged_invalid_8013_is_skipped_and_logged_without_the_identifier(
        requests_mock: Any, status: int) -> None:
    requests_mock.get(LOOKUP, json=answer_by_identifier({
        "919700000001": (200, customer(1)),
        "98x77": (status, body_error(8013, "Invalid mobile")),
        "919700000003": (status, NOT_FOUND)}))
    output = read(config("919700000001", "98x77", "919700000003"), "customers")
    assert ids(output, "customers", "id") == [565000001]
    assert not output.errors
    assert [m.log.message for m in output.logs if "code 8013" in m.log.message] == [
        "Skipped an identifier: Capillary judged it not a valid mobile (code 8013). Check the "
        "identifiers listed: a mobile number needs its country code, digits only."]
    assert len([m for m in output.logs if "code 8015" in m.log.message]) == 1
    assert "98x77" not in transcript(output)


def test_skip_message_names_missing_account_id_for_other_sources(requests_mock: Any) -> None:
    requests_mock.get(LOOKUP, json=NOT_FOUND)
    output = read(config(source="ECOMMERCE"), "customers")
    assert any("need account_id" in m.log.message for m in output.logs)


@pytest.mark.parametrize("status", [200, 400])
def test_other_body_error_fails_with_capillarys_code_and_message(
        requests_mock: Any, status: int) -> None:
    requests_mock.get(LOOKUP, status_code=status, json=body_error(8003, "Invalid source"))
    output = read(config(), "customers")
    assert output.records == []
    assert "8003 Invalid source" in output.get_formatted_error_message()


@pytest.mark.parametrize("status", [461, 521, 500, 503])
def test_busy_and_server_statuses_are_retried(
        requests_mock: Any, _no_backoff_sleep: list[float], status: int) -> None:
    requests_mock.get(LOOKUP, [{"status_code": status, "json": body_error(status, "busy")},
                               {"json": customer(1)}])
    assert ids(read(config(), "customers"), "customers", "id") == [565000001]
    assert _no_backoff_sleep  # waited before retrying


def test_429_is_retried_honouring_retry_after(
        requests_mock: Any, _no_backoff_sleep: list[float]) -> None:
    requests_mock.get(LOOKUP, [{"status_code": 429, "headers": {"Retry-After": "7"}},
                               {"json": customer(1)}])
    assert ids(read(config(), "customers"), "customers", "id") == [565000001]
    assert any(7 <= w <= 8 for w in _no_backoff_sleep)


def test_wrong_password_fails_check_readably_and_shows_no_credential(
        requests_mock: Any, tmp_path: Any) -> None:
    requests_mock.get(LOOKUP, status_code=401, json=body_error(401, "Invalid credentials"))
    output = check(config(), tmp_path)
    status = output.connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert "rejected the credentials" in status.message
    assert "plain password" in status.message
    text = transcript(output)
    header = base64.b64encode(f"{USERNAME}:{PASSWORD_MD5}".encode()).decode()
    for secret in (PASSWORD, PASSWORD_MD5, header):
        assert secret not in text
    assert "Traceback" not in text


def test_no_api_v2_access_fails_check_saying_so(requests_mock: Any, tmp_path: Any) -> None:
    requests_mock.get(LOOKUP, status_code=403,
                      json=body_error(1004, "API v2 access is disabled for this till"))
    status = check(config(), tmp_path).connection_status_messages[0].connectionStatus
    assert status.status == Status.FAILED
    assert "API v2 access" in status.message
    assert "1004" in status.message


def test_oauth_token_is_generated_once_and_sent_in_its_header(requests_mock: Any) -> None:
    issued = requests_mock.post(TOKEN_URL, json={
        "data": {"accessToken": "tok-1", "ttlSeconds": 3600}, "errors": None})
    requests_mock.get(LOOKUP, json=customer(1))
    read(config("1", "2", "3", credentials=oauth()), "customers")
    assert issued.call_count == 1
    assert issued.last_request.json() == {"key": "cap-client-key", "secret": SECRET}
    lookups = [r for r in requests_mock.request_history if r.method == "GET"]
    assert len(lookups) == 3
    assert all(r.headers["X-CAP-API-OAUTH-TOKEN"] == "tok-1" for r in lookups)
    assert all("Authorization" not in r.headers for r in lookups)


@pytest.mark.parametrize("status", [401, 200])
def test_wrong_client_secret_fails_check_without_traceback_or_secret(
        requests_mock: Any, tmp_path: Any, status: int) -> None:
    requests_mock.post(TOKEN_URL, status_code=status, json={
        "data": None, "errors": [{"code": 1001, "message": "Invalid client key or secret"}]})
    output = check(config(credentials=oauth()), tmp_path)
    message = output.connection_status_messages[0].connectionStatus
    assert message.status == Status.FAILED
    assert "did not issue an OAuth token (1001: Invalid client key or secret)" in message.message
    text = transcript(output)
    assert "Traceback" not in text
    assert SECRET not in text


def test_token_endpoint_busy_is_retried(requests_mock: Any) -> None:
    requests_mock.post(TOKEN_URL, [
        {"status_code": 503}, {"status_code": 461},
        {"json": {"data": {"accessToken": "tok-1", "ttlSeconds": 300}, "errors": None}}])
    requests_mock.get(LOOKUP, json=customer(1))
    assert ids(read(config(credentials=oauth()), "customers"), "customers", "id") == [565000001]


def test_oauth_token_is_renewed_before_its_ttl_runs_out(
        requests_mock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["tok-1", "tok-2"])
    requests_mock.post(TOKEN_URL, json=lambda request, context: {
        "data": {"accessToken": next(tokens), "ttlSeconds": 300}, "errors": None})
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    authenticator = CapillaryTokenAuthenticator(
        config=config(credentials=oauth()), parameters={}, token_url=TOKEN_URL)
    assert authenticator.get_auth_header() == {"X-CAP-API-OAUTH-TOKEN": "tok-1"}
    now[0] += 269  # within the lifetime less a tenth of it
    assert authenticator.token == "tok-1"
    now[0] += 2  # 29 s before the token expires
    assert authenticator.token == "tok-2"


def test_token_answer_without_a_token_is_a_config_error(requests_mock: Any) -> None:
    requests_mock.post(TOKEN_URL, json={"data": {}, "errors": None})
    authenticator = CapillaryTokenAuthenticator(
        config=config(credentials=oauth()), parameters={}, token_url=TOKEN_URL)
    with pytest.raises(AirbyteTracedException, match="did not issue an OAuth token"):
        authenticator.token  # noqa: B018


def test_missing_base_url_is_named(tmp_path: Any) -> None:
    incomplete = config()
    del incomplete["base_url"]
    message = check(incomplete, tmp_path).connection_status_messages[0].connectionStatus.message
    assert "base_url" in message

