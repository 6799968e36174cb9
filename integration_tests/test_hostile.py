"""Hostile or odd responses: what the connector does when an API misbehaves.

Each test makes a well-behaved sandbox misbehave through `api.rewrite` (which alters each
response on its way out) and reads in-process (in_process.py) over real HTTP: links to
other hosts, links that repeat, bodies that are not JSON, redirects, unknown fields, nulls.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration_tests import in_process
from integration_tests.cli import Output, assert_same_keys, catalog_for
from integration_tests.sandbox import capillary, loke, okendo
from integration_tests.sandbox.server import Request, Response, Server, VendorApi
from integration_tests.vendors import CASES, Case
from source_customers.vendors import VENDORS

Rewrite = Callable[[Request, Response], Response]


@pytest.fixture(autouse=True)
def _no_backoff_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    with in_process.recorded_sleeps(monkeypatch) as waits:
        yield waits


def records_in(body: Any) -> list[dict[str, Any]]:
    """The records a response body holds, whichever vendor sent it (none for a lookup)."""
    if isinstance(body, list):  # LOKE, Malomo
        return [item for item in body if isinstance(item, dict)]
    if not isinstance(body, dict):
        return []
    if "id" in body or "givenName" in body:  # a Capillary or an Okendo customer
        return [body]
    for key in ("profiles", "activities", "reviews", "rules"):  # Okendo's lists
        if isinstance(body.get(key), list):
            return [item for item in body[key] if isinstance(item, dict)]
    if isinstance(body.get("loyaltyCustomer"), dict):
        return [body["loyaltyCustomer"]]
    return []


def start(case: Case, serve: Callable[[VendorApi], Server],
          **config: Any) -> tuple[VendorApi, dict[str, Any]]:
    api = case.small()
    return api, {**case.config(api, serve(api).url), **config}


def decoy(serve: Callable[[VendorApi], Server]) -> tuple[VendorApi, str]:
    """An API on another host of the same machine, where no request may go."""
    other = loke.Api(customers=0)
    return other, serve(other).url.replace("127.0.0.1", "localhost")


def credentials_seen(api: VendorApi) -> list[str]:
    """The credential headers of every request `api` received."""
    names = ("authorization", "x-cap-api-oauth-token")
    return [f"{n}: {r.headers[n][:10]}..." for r in api.requests for n in names if n in r.headers]


# --- next links --------------------------------------------------------------------------

def next_link_to(where: Callable[[Request, str], str]) -> Rewrite:
    """Rewrites each next-page link (LOKE's X-Next-Page, Okendo's nextUrl) to where(link)."""
    def rewrite(request: Request, response: Response) -> Response:
        if "X-Next-Page" in response.headers:
            response.headers["X-Next-Page"] = where(request, response.headers["X-Next-Page"])
        if isinstance(response.body, dict) and response.body.get("nextUrl"):
            response.body["nextUrl"] = where(request, response.body["nextUrl"])
        return response
    return rewrite


def path_of(link: str, base_path: str) -> str:
    """A next link as an absolute path on the server (Okendo's are under its base path)."""
    if link.startswith("http"):
        link = "/" + link.split("/", 3)[3]
    return link if link.startswith(base_path + "/") else base_path + link


@pytest.mark.parametrize(("vendor", "elsewhere"), [
    ("okendo", "host"), ("okendo", "scheme"), ("loke", "scheme"),
    # LOKE's link to another host: test_loke.py, through the CLI.
])
def test_next_link_to_another_host_or_scheme_is_refused_and_sent_nothing(
        serve: Callable[[VendorApi], Server], vendor: str, elsewhere: str) -> None:
    api, config = start(CASES[vendor], serve)
    other, other_url = decoy(serve)
    base_path = okendo.BASE_PATH if vendor == "okendo" else ""
    origin = api.public_url
    target = other_url if elsewhere == "host" else origin.replace("http://", "https://")
    api.rewrite = next_link_to(lambda request, link: target + path_of(link, base_path))
    output = in_process.read(config)
    assert output.returncode != 0
    assert any("next-page link to another host or scheme" in e for e in output.errors), \
        output.errors
    assert other.requests == []
    # Nothing was asked for beyond each list's first page.
    assert not [r for r in api.requests if "after=" in r.raw_query or "lastEvaluated=" in
                r.raw_query]


@pytest.mark.parametrize(("vendor", "stream"), [("loke", "customers"),
                                               ("okendo", "customer_activities")])
def test_next_link_that_repeats_forever_stops_the_sync_with_an_error(
        serve: Callable[[VendorApi], Server], vendor: str, stream: str) -> None:
    api, config = start(CASES[vendor], serve)
    catalog = catalog_for(in_process.discover(config), stream)
    followed: list[str] = []

    def same_link_again(request: Request, link: str) -> str:
        # From the second page on, every page links to the page just read: without the
        # guard this pages forever, so the sandbox gives up after 20 and lets the sync end.
        if "after=" in request.raw_query or "lastEvaluated=" in request.raw_query:
            followed.append(request.path)
            if followed.count(request.path) > 20:
                return ""
            return request.path + "?" + request.raw_query
        return link

    api.rewrite = next_link_to(same_link_again)
    output = in_process.read(config, catalog)
    assert output.returncode != 0
    assert any("same next-page link twice" in e for e in output.errors), output.errors
    assert followed and max(map(followed.count, followed)) == 1  # no page was asked twice


# --- bodies ------------------------------------------------------------------------------

MAINTENANCE = b"<html><body>Down for maintenance</body></html>"


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_body_that_is_not_json_is_retried_then_fails_readably(
        serve: Callable[[VendorApi], Server], vendor: str, _no_backoff_waits: list[float]
) -> None:
    api, config = start(CASES[vendor], serve)
    # Every answer of the API (not its token endpoint) is a 200 holding an HTML page.
    api.rewrite = lambda request, response: (
        response if "token" in request.path else
        Response(200, raw=MAINTENANCE, headers={"Content-Type": "text/html"}))
    output = in_process.read(config)
    assert output.returncode != 0
    assert any("with a body that is not JSON" in e for e in output.errors), output.errors
    assert output.of_type("RECORD") == []
    assert len(_no_backoff_waits) >= 6  # retried before giving up


@pytest.mark.parametrize("vendor", VENDORS)
def test_unknown_fields_pass_through_unchanged(
        serve: Callable[[VendorApi], Server], vendor: str) -> None:
    case = CASES[vendor]
    api, config = start(case, serve)
    clean = in_process.read(config)
    extra = {"introducedLater": {"nested": [1, "zwei", {"drei": True}]}, "zz_flag": False}

    def add_fields(request: Request, response: Response) -> Response:
        for record in records_in(response.body):
            record.update(extra)
        return response

    api.rewrite = add_fields
    output = in_process.read(config)
    assert output.returncode == 0, output.errors
    for stream, key in case.keys.items():
        before = {tuple(r[k] for k in key): r for r in clean.records(stream)}
        after = {tuple(r[k] for k in key): r for r in output.records(stream)}
        assert after.keys() == before.keys()
        assert all(after[k] == {**before[k], **extra} for k in before), stream


# Fields each vendor's schema types as a value (string, object, number...), set to null.
NULLED = {
    "loke": ("updatedAt", "createdAt", "statistics", "email", "hasAgreedToMarketing", "name"),
    "okendo": ("date", "title", "properties", "location", "dateFirstActive", "givenName"),
    "malomo": ("updated_at", "created_at", "timestamp", "properties", "email", "label"),
    "capillary": ("profiles", "loyaltyInfo", "extendedFields", "cardDetails", "segments"),
}


@pytest.mark.parametrize("incremental", [False, True], ids=["full_refresh", "incremental"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_nulls_where_the_schema_expects_values_do_not_crash_or_lose_records(
        serve: Callable[[VendorApi], Server], vendor: str, incremental: bool) -> None:
    case = CASES[vendor]
    api, config = start(case, serve)
    catalog = catalog_for(in_process.discover(config), incremental=incremental)

    def nulls(request: Request, response: Response) -> Response:
        for n, record in enumerate(records_in(response.body)):
            if n % 3 == 0:  # every third record, the cursor field among them
                record.update(dict.fromkeys(NULLED[vendor]))
            for prop in record.get("properties") or []:  # an Okendo property's value too
                if isinstance(prop, dict):
                    prop["value"] = None
        return response

    api.rewrite = nulls
    output = in_process.read(config, catalog)
    assert output.returncode == 0, output.errors
    expected = case.expected(api, config)
    for stream, keys in case.got(output).items():
        assert_same_keys(keys, expected[stream])


# --- redirects ---------------------------------------------------------------------------

def secrets_of(api: VendorApi, config: dict[str, Any]) -> list[str]:
    """Every credential value the connector could send for `config`."""
    values = [*capillary.SECRETS, *loke.SECRETS, okendo.API_KEY,
              base64.b64encode(f"{okendo.USER_ID}:{okendo.API_KEY}".encode()).decode()]
    values += [str(t) for t in getattr(api, "tokens", {})]  # tokens the sandbox issued
    values += [str(v) for v in config.get("credentials", {}).values()]
    return [v for v in values if v and v not in ("basic", "oauth", "access_token")]


@pytest.mark.parametrize(("vendor", "auth"), [
    ("loke", "access_token"), ("loke", "client_credentials"), ("okendo", ""), ("malomo", ""),
    ("capillary", "basic"), ("capillary", "oauth")])
def test_a_redirect_to_another_host_never_carries_a_credential(
        serve: Callable[[VendorApi], Server], vendor: str, auth: str) -> None:
    case = CASES[vendor]
    api, config = start(case, serve)
    if auth == "client_credentials":
        config["credentials"] = loke.client_credentials(api.public_url)
    if auth == "oauth":
        config["credentials"] = capillary.oauth()
    other, other_url = decoy(serve)
    answered = [0]

    def redirect_the_third(request: Request, response: Response) -> Response:
        answered[0] += 1
        if answered[0] != 3:
            return response
        query = "?" + request.raw_query if request.raw_query else ""
        return Response(302, headers={"Location": other_url + request.path + query})

    api.rewrite = redirect_the_third
    output = in_process.read(config)
    if not other.requests:  # refused before anything was sent: it must say so
        assert output.returncode != 0
        assert any("redirected a request to another host" in e for e in output.errors)
    sent = [f"{r.path} {k}" for r in other.requests for k, v in r.headers.items()
            for s in secrets_of(api, config) if s in v or s in r.body.decode(errors="replace")]
    assert sent == []
    assert_clear_or_exact(case, api, config, output)


def assert_clear_or_exact(case: Case, api: VendorApi, config: dict[str, Any],
                          output: Output) -> None:
    if output.returncode != 0:
        assert output.errors and all("Traceback" not in e for e in output.errors)
        return
    expected = case.expected(api, config)
    for stream, keys in case.got(output).items():
        assert set(keys) <= set(expected[stream])
