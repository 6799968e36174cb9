"""Any answer (issue 13): property-based tests of every vendor against scripted APIs.

Hypothesis generates, per example, a small dataset (some records odd: a missing key, an odd
or post-dated cursor), how the connector authenticates and syncs, and a script of what the
server does with each request in turn (see integration_tests/any_answer/). The real CLI
reads every stream from it, and the outcome must meet one invariant (any_answer/oracle.py):
exactly the records, or a clear error naming an injected cause; bounded in time; protocol
output only; no secret anywhere. When every fault is transient and within the retries, the
sync must succeed.

Profiles (env HYPOTHESIS_PROFILE): "ci" (default: derandomized, a few minutes in all) and
"fuzz" (`make fuzz`: long). A failing example prints the scenario as served and the CLI's
errors; its `Scenario(...)` repr pastes into a regression test (see `check_scenario`).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from integration_tests import cli
from integration_tests.any_answer import oracle
from integration_tests.any_answer.behaviours import (
    Body,
    NextLink,
    Oddity,
    Redirect,
    Scenario,
    Status,
    Transport,
    Trickle,
    scenarios,
)
from integration_tests.any_answer.server import ScriptedServer
from integration_tests.any_answer.world import AUTHS, new_world, odd_streams
from source_customers.vendors import VENDORS

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                              HealthCheck.filter_too_much, HealthCheck.data_too_large],
}
# "ci" does not shrink a failing example (shrinking runs the CLI a hundred times more); it
# prints the example as generated. "fuzz" shrinks it to the smallest script that fails.
settings.register_profile("ci", max_examples=int(os.environ.get("ANY_ANSWER_EXAMPLES", "8")),
                          derandomize=True, print_blob=False,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate], **_COMMON)
settings.register_profile("fuzz",
                          max_examples=int(os.environ.get("ANY_ANSWER_EXAMPLES", "150")),
                          derandomize=False, print_blob=True, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_catalogs: dict[tuple[str, bool], dict[str, Any]] = {}


def catalog(vendor: str, config: dict[str, Any], incremental: bool) -> dict[str, Any]:
    """Every stream; incremental where offered, if asked (discover once per vendor)."""
    if (vendor, incremental) not in _catalogs:
        discovered = cli.run("discover", config)
        assert discovered.returncode == 0, discovered.stderr[-2000:]
        _catalogs[(vendor, incremental)] = cli.catalog_for(discovered, incremental=incremental)
    return _catalogs[(vendor, incremental)]


def check_scenario(vendor: str, scenario: Scenario) -> None:
    """Runs one scenario through the CLI; fails with a readable report if the invariant
    breaks. A regression test is `check_scenario("loke", Scenario(...))`."""
    world = new_world(vendor, scenario)
    with ScriptedServer(world, scenario.script) as server:
        world.configure(server.url)
        run = oracle.read(world.config, catalog(vendor, world.config, scenario.incremental))
    problems = oracle.judge(world, server, run)
    if problems:
        text = oracle.report(world, scenario, server, run, problems)
        findings = os.environ.get("ANY_ANSWER_FINDINGS")
        if findings:
            with open(findings, "a", encoding="utf-8") as sink:
                sink.write(text + "\n\n" + "=" * 100 + "\n\n")
        raise AssertionError(text)


@pytest.mark.parametrize("vendor", VENDORS)
@PROFILE
@given(data=st.data())
def test_any_answer_is_exact_or_a_clear_failure(vendor: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(vendor, AUTHS[vendor], odd_streams(vendor)), label="scenario")
    check_scenario(vendor, scenario)


@pytest.mark.parametrize("vendor", VENDORS)
@PROFILE
@given(data=st.data())
def test_transient_faults_within_the_retries_end_in_every_record(
        vendor: str, data: st.DataObject) -> None:
    scenario = data.draw(scenarios(vendor, AUTHS[vendor], odd_streams(vendor),
                                   transient_only=True), label="scenario")
    check_scenario(vendor, scenario)


@pytest.mark.parametrize("vendor", VENDORS)
def test_no_fault_at_all_ends_in_every_record(vendor: str) -> None:
    for auth in AUTHS[vendor]:
        check_scenario(vendor, Scenario(auth=auth, incremental=False))


# --- what the suite found, each shrunk to a scenario of its own (issue 13) ---

def test_failed_capillary_sync_quotes_no_identifier() -> None:
    # The CDK's closing error quoted the lookup URL, identifierValue included.
    check_scenario("capillary", Scenario("basic", False, (), (Status(400),)))


@pytest.mark.parametrize(("vendor", "auth", "stream", "index", "incremental"), [
    ("malomo", "api_key", "customers", 0, False),
    ("malomo", "api_key", "customer_events", 0, False),
    ("okendo", "basic", "customer_activities", 0, False),
    ("loke", "access_token", "customers", 34, False),
    ("loke", "access_token", "customers", 0, True),  # the data feed stopped at it, too
])
def test_record_dated_long_before_1970_is_kept(vendor: str, auth: str, stream: str,
                                               index: int, incremental: bool) -> None:
    check_scenario(vendor, Scenario(auth, incremental,
                                    (Oddity(stream, index, "cursor_ancient"),), ()))


@pytest.mark.parametrize("behaviour", [Transport("stall"), Trickle(0.1)])
def test_capillary_token_request_is_given_up_at_its_deadline(behaviour: Any) -> None:
    check_scenario("capillary", Scenario("oauth", False, (), (behaviour,)))


def test_loke_token_answer_without_a_token_is_retried() -> None:
    check_scenario("loke", Scenario("client_credentials", False, (), (Body("error_object"),)))


def test_loke_token_request_refused_with_400_fails_naming_the_status() -> None:
    # Found by `make fuzz` (2026-12-07), shrunk: the sync ended on "An unexpected error
    # occurred in stream customers: HTTPError".
    check_scenario("loke", Scenario("client_credentials", False, (), (Status(400),)))


def test_loke_next_link_repeating_a_redirected_page_stops_the_sync() -> None:
    # Found by `make fuzz` (2026-12-07): the first page, reached through a 307, linked back
    # to itself as asked; the link was compared with the redirected URL only, and the page
    # was read twice (2 duplicated keys).
    check_scenario("loke", Scenario("access_token", False, (), (Redirect("same"),
                                                                 NextLink("repeat"))))


def test_loke_token_request_redirected_fails_naming_the_redirect() -> None:
    # A 307 would send the client secret again, wherever it points.
    check_scenario("loke", Scenario("client_credentials", False, (), (Redirect("same"),)))


def test_capillary_token_request_meeting_408_is_retried() -> None:
    check_scenario("capillary", Scenario("oauth", False, (), (Status(408),)))


def test_loke_token_request_meeting_408_is_retried() -> None:
    check_scenario("loke", Scenario("client_credentials", False, (), (Status(408),)))


@pytest.mark.parametrize("body", ["error_object", "not_json"])
def test_capillary_token_answer_without_a_token_or_a_refusal_is_retried(body: str) -> None:
    check_scenario("capillary", Scenario("oauth", False, (), (Body(body), Body("error_object"))))


def test_capillary_token_answer_wrapped_in_another_envelope_is_retried() -> None:
    check_scenario("capillary", Scenario("oauth", False, (), (Body("wrapped"),)))


def test_capillary_token_request_redirected_fails_naming_the_redirect() -> None:
    check_scenario("capillary", Scenario("oauth", False, (), (Redirect("same"),)))
