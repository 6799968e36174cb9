"""Nothing lost under faults: every vendor's full read with ~10% of requests faulted.

The sandbox faults a seeded tenth of the requests with every kind it knows (429 with and
without Retry-After, 5xx, a proxy's HTML page, a reset connection, a server that goes
silent, a 200 whose body is cut short, a connection dropped mid-body). The read runs
in-process (see in_process.py: the retries' waits are recorded, not waited) over real HTTP;
the installed CLI meets 429s and 5xx in each vendor's own test module. The outcome must be
exactly the records the sandbox holds (what a clean read returns). With a tenth of the
requests faulted a sync is well inside the retries docs/guarantees.md promises, so it must
succeed, exactly; the clear failure is tested where the retries run out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from integration_tests import in_process
from integration_tests.cli import Output, assert_same_keys, catalog_for
from integration_tests.sandbox import capillary, loke
from integration_tests.sandbox.server import FAULT_KINDS, Server, VendorApi
from integration_tests.vendors import CASES, Case
from source_customers.vendors import VENDORS, load_manifest

RETRY_AFTER = 7  # seconds: no backoff of the manifests' own ever asks for this long
READ_TIMEOUT = 0.5  # the shipped 60 s, shortened so a silent server costs a test little
STALL = 1.5  # how long a "timeout" fault keeps the connection silent


def assert_clear_failure(output: Output) -> None:
    """A failed sync: non-zero, with an error message a user can read (no traceback)."""
    assert output.returncode != 0
    assert output.errors, "the sync failed without saying why"
    assert all(e.strip() and "Traceback" not in e for e in output.errors), output.errors


def assert_exact(case: Case, output: Output, expected: dict[str, list[Any]]) -> None:
    assert output.returncode == 0, output.errors
    got = case.got(output)
    for stream in case.keys:
        assert_same_keys(got[stream], expected[stream])


@pytest.mark.parametrize("vendor", VENDORS)
def test_full_read_with_a_tenth_of_requests_faulted_succeeds_exactly(
        serve: Callable[[VendorApi], Server], monkeypatch: pytest.MonkeyPatch,
        vendor: str) -> None:
    case = CASES[vendor]
    api = case.api()
    config = case.config(api, serve(api).url)
    api.set_faults(rate=0.1, kinds=FAULT_KINDS, retry_after=str(RETRY_AFTER), seed=11,
                   stall=STALL)
    with in_process.recorded_sleeps(monkeypatch) as waits:
        faulted = in_process.read(config, read_timeout=READ_TIMEOUT)
    api.wait_for_stalls()

    # What a clean read returns, by the vendor tests: every record the sandbox holds.
    assert_exact(case, faulted, case.expected(api, config))
    # Every kind of fault was met.
    assert set(api.faulted) == set(FAULT_KINDS), sorted(set(FAULT_KINDS) - set(api.faulted))
    # Each 429 with Retry-After was waited out for that long (the CDK adds a second).
    assert len([w for w in waits if w in (RETRY_AFTER, RETRY_AFTER + 1)]) == \
        api.faulted.count("429")
    # Each silent server was given up on by the client, not waited for until it spoke.
    assert api.abandoned == api.faulted.count("timeout")


@pytest.mark.parametrize("kind", ["503", "reset", "truncated", "timeout"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_fault_outlasting_the_retries_fails_the_sync_naming_it(
        serve: Callable[[VendorApi], Server], monkeypatch: pytest.MonkeyPatch,
        vendor: str, kind: str) -> None:
    case = CASES[vendor]
    api = case.small()
    config = case.config(api, serve(api).url)
    api.set_faults(every=1, kinds=(kind,), stall=STALL)  # every request, for ever
    with in_process.recorded_sleeps(monkeypatch) as waits:
        output = in_process.read(config, read_timeout=READ_TIMEOUT)
    api.wait_for_stalls()
    assert_clear_failure(output)
    assert not output.of_type("RECORD")
    cause = {"503": "HTTP 503", "reset": "reset", "truncated": "not JSON",
             "timeout": "timed out"}[kind]
    assert any(cause in e for e in output.errors), output.errors
    assert waits, "failed without retrying"


def _requesters(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if node.get("type") == "HttpRequester" else []
        return own + [r for value in node.values() for r in _requesters(value)]
    if isinstance(node, list):
        return [r for value in node for r in _requesters(value)]
    return []


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_request_gives_up_on_a_silent_server(vendor: str) -> None:
    manifest = load_manifest(vendor)
    # One requester, which every stream's requester extends by $ref.
    (requester,) = _requesters(manifest)
    assert requester is manifest["definitions"]["requester"]
    assert 0 < requester["connect_timeout_in_seconds"] <= 60
    assert 0 < requester["read_timeout_in_seconds"] <= 120
    assert yaml.safe_dump(manifest).count("$ref: '#/definitions/requester'") >= 1


TOKEN_FAULTS = ["reset", "truncated", "dropped", "html", "429"]
# (Capillary's token request is tried six times: five faults in a row, then it must work.)


@pytest.mark.parametrize("vendor", ["loke", "capillary"])
def test_token_request_meeting_every_fault_in_a_row_is_retried_and_the_read_is_exact(
        serve: Callable[[VendorApi], Server], monkeypatch: pytest.MonkeyPatch,
        vendor: str) -> None:
    case = CASES[vendor]
    api = case.api()
    url = serve(api).url
    credentials = loke.client_credentials(url) if vendor == "loke" else capillary.oauth()
    config = {**case.config(api, url), "credentials": credentials}
    catalog = catalog_for(in_process.discover(config), "customers")
    api.set_faults(scheduled=list(TOKEN_FAULTS), retry_after="1")  # the first requests
    with in_process.recorded_sleeps(monkeypatch):
        output = in_process.read(config, catalog)
    assert output.returncode == 0, output.errors
    token_path = urlsplit(loke.client_credentials(url)["token_url"]).path if vendor == "loke" \
        else "/v3/oauth/token/generate"
    assert [r.path for r in api.requests[:len(TOKEN_FAULTS) + 1]] == \
        [token_path] * (len(TOKEN_FAULTS) + 1)
    assert api.faulted == TOKEN_FAULTS
    assert_same_keys(output.keys("customers", "id"), case.expected(api, config)["customers"])
