"""The package around the manifests: vendor dispatch, the combined spec, manifest validity."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser

from source_customers import inputs
from source_customers.run import main
from source_customers.vendors import VENDORS, combined_spec, load_manifest

CONTRACT_SECRETS = {"loke": [("credentials", "access_token"), ("credentials", "client_secret")],
                    "okendo": [("api_key",)], "malomo": [("api_key",)],
                    "capillary": [("credentials", "password"), ("credentials", "client_secret")]}


def messages(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_manifest_validates_against_the_cdk_schema(vendor: str) -> None:
    # Construction validates the manifest against declarative_component_schema.yaml.
    ConcurrentDeclarativeSource(source_config=load_manifest(vendor), config={"vendor": vendor})


def test_spec_needs_no_config_and_has_one_branch_per_vendor(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec"]) == 0
    (message,) = messages(capsys)
    spec = message["spec"]["connectionSpecification"]
    assert spec["properties"]["vendor"]["enum"] == list(VENDORS)
    assert [b["properties"]["vendor"]["const"] for b in spec["oneOf"]] == list(VENDORS)
    assert all("vendor" in b["required"] for b in spec["oneOf"])


@pytest.mark.parametrize("vendor", VENDORS)
def test_spec_branch_is_the_manifest_spec_with_secrets_marked(vendor: str) -> None:
    (branch,) = [b for b in combined_spec().connectionSpecification["oneOf"]
                 if b["properties"]["vendor"]["const"] == vendor]
    own = load_manifest(vendor)["spec"]["connection_specification"]
    assert set(branch["properties"]) == set(own["properties"])
    for path in CONTRACT_SECRETS[vendor]:
        node = branch["properties"][path[0]]
        for step in path[1:]:
            node = next(o["properties"][step] for o in node["oneOf"] if step in o["properties"])
        assert node.get("airbyte_secret") is True, f"{vendor}: {'.'.join(path)} is not secret"


@pytest.mark.parametrize(("config", "says"), [
    ({}, "'vendor' is missing"),
    ({"vendor": "shopify"}, "'vendor' is 'shopify'"),
    (["loke"], "is not an object"),
])
def test_config_without_a_known_vendor_fails_check_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], config: Any, says: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["check", "--config", str(path)]) == 0
    (message,) = messages(capsys)
    assert message["connectionStatus"]["status"] == "FAILED"
    assert says in message["connectionStatus"]["message"]


def test_unreadable_config_fails_read_with_a_trace_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    assert main(["read", "--config", str(path), "--catalog", str(path)]) == 1
    (message,) = messages(capsys)
    assert message["trace"]["error"]["failure_type"] == "config_error"
    assert "Could not read" in message["trace"]["error"]["message"]


def _parent_requesters(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for config in node.get("parent_stream_configs") or []:
            found.append(config["stream"]["retriever"]["requester"])
        for value in node.values():
            found += _parent_requesters(value)
    elif isinstance(node, list):
        for value in node:
            found += _parent_requesters(value)
    return found


@pytest.mark.parametrize("vendor", VENDORS)
def test_parent_streams_bypass_the_cdks_sqlite_cache(vendor: str) -> None:
    # The CDK caches parent pages in SQLite unless told not to; that cache breaks with
    # parents of several partitions and several workers (CDK issue #1150; DEVELOPMENT.md).
    resolved = ConcurrentDeclarativeSource(
        source_config=load_manifest(vendor), config={"vendor": vendor}).resolved_manifest
    for requester in _parent_requesters(resolved["streams"]):
        assert requester.get("use_cache") is False, requester.get("path")


def _budget_allows(vendor: str, config: dict[str, Any], calls: int,
                   after_429: bool = False) -> int:
    """How many of `calls` requests at once the vendor's API budget lets through."""
    import requests
    from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
        HTTPAPIBudget,
    )
    from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import (
        ModelToComponentFactory,
    )
    from airbyte_cdk.sources.streams.call_rate import CallRateLimitHit

    definition = load_manifest(vendor)["api_budget"]
    budget = ModelToComponentFactory().create_component(HTTPAPIBudget, definition, config)
    request = requests.Request("GET", "https://api.example.com/customers").prepare()
    if after_429:
        refused = requests.Response()
        refused.status_code = 429
        budget.update_from_response(request, refused)
    for allowed in range(calls):
        try:
            budget.acquire_call(request, block=False)
        except CallRateLimitHit:
            return allowed
    return calls


def test_okendo_budget_is_two_requests_a_second_unless_raised() -> None:
    assert _budget_allows("okendo", {}, 10) == 2
    assert _budget_allows("okendo", {"requests_per_second": 7}, 10) == 7


def test_capillary_budget_applies_only_a_configured_limit_per_minute() -> None:
    assert _budget_allows("capillary", {"requests_per_minute": 5}, 10) == 5
    assert _budget_allows("capillary", {}, 500) == 500
    # A 429 is retried by the error handler; it must not hold every worker for a minute.
    assert _budget_allows("capillary", {}, 10, after_429=True) == 10


def _incremental_streams() -> list[tuple[str, str, str]]:
    """(vendor, stream, cursor field) of every incremental stream, read from the manifests."""
    found = []
    for vendor in VENDORS:
        resolved = ConcurrentDeclarativeSource(
            source_config=load_manifest(vendor), config={"vendor": vendor}).resolved_manifest
        found += [(vendor, s["name"], s["incremental_sync"]["cursor_field"])
                  for s in resolved["streams"] if s.get("incremental_sync")]
    return found


def test_the_state_check_knows_every_incremental_streams_cursor() -> None:
    # If it did not, a bad saved cursor of that stream would again end in a traceback.
    streams = _incremental_streams()
    assert {(v, s) for v, s, _ in streams} >= {
        ("loke", "customers"), ("malomo", "customers"), ("malomo", "customer_events"),
        ("okendo", "customer_activities")}
    for vendor, stream, field in streams:
        found = inputs.cursor_of(vendor, stream)
        assert found is not None and found[0] == field, (vendor, stream)


@pytest.mark.parametrize(("vendor", "stream", "field"), _incremental_streams())
def test_the_state_check_accepts_each_cursor_format_the_stream_reads(
        vendor: str, stream: str, field: str) -> None:
    found = inputs.cursor_of(vendor, stream)
    assert found is not None
    moment = datetime(2024, 1, 31, 12, 0, 0, 123000, tzinfo=timezone.utc)
    for form in found[1]:
        blob = {field: DatetimeParser().format(moment, form)}
        state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                               "stream_state": blob}}]
        assert inputs.state_problem(vendor, state, "state.json", warn=print) is None, form
        blob[field] = "yesterday"
        problem = inputs.state_problem(vendor, state, "state.json", warn=print)
        assert problem and f"stream '{stream}' ({field} = 'yesterday')" in problem


@pytest.mark.parametrize(("args", "code"), [([], 2), (["--help"], 0), (["-h"], 0),
                                            (["sync"], 2)])
def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str], args: list[str],
                                   code: int) -> None:
    assert main(args) == code
    captured = capsys.readouterr()
    text = captured.out if code == 0 else captured.err
    for command in ("spec", "check --config CONFIG", "discover --config CONFIG",
                    "read --config CONFIG --catalog CATALOG [--state STATE]"):
        assert f"source-customers {command}\n" in text
    assert (captured.err if code == 0 else captured.out) == ""
