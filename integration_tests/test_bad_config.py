"""Bad config: every mistake fails `check` with a message naming the field, before any request.

The cases are generated from each vendor's own spec (every required field, every typed
field), so a field added to a spec is covered at once. The entry point runs in-process
(`run.main`, what the CLI calls): a refused config never reaches the network, so there is
nothing to wait for; one test runs the installed CLI to show the same message there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_tests.cli import run
from integration_tests.sandbox import VENDORS as SANDBOXES
from integration_tests.sandbox import capillary, loke, malomo
from source_customers.run import main
from source_customers.vendors import VENDORS, config_problem, load_manifest

URL = "http://127.0.0.1:9"  # nothing listens here: a config that gets through fails loudly
WRONG_TYPE = {"string": 12345, "array": "not-a-list", "integer": "four", "object": "text"}


def valid(vendor: str) -> dict[str, Any]:
    return dict(SANDBOXES[vendor].config(URL))


def spec(vendor: str) -> dict[str, Any]:
    specification: dict[str, Any] = load_manifest(vendor)["spec"]["connection_specification"]
    return specification


def without(config: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(config))
    node = changed
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return changed


def missing_fields() -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each required field of each vendor removed, nested credentials fields included."""
    for vendor in VENDORS:
        for name in spec(vendor)["required"]:
            yield vendor, without(valid(vendor), name), f"'{name}' is missing"
        credentials = spec(vendor)["properties"].get("credentials")
        for branch in (credentials or {}).get("oneOf", []):
            kind = branch["properties"]["auth_type"]["const"]
            config = {**valid(vendor), "credentials": {
                name: f"some-{name}" for name in branch["required"]}}
            config["credentials"]["auth_type"] = kind
            for name in branch["required"]:
                changed = without(config, "credentials", name)
                yield vendor, changed, f"'credentials.{name}' is missing"


def wrong_types() -> Iterator[tuple[str, dict[str, Any], str]]:
    """Each typed top-level field of each vendor given a value of another type."""
    for vendor in VENDORS:
        for name, field in spec(vendor)["properties"].items():
            if field.get("type") in WRONG_TYPE and name != "vendor":
                config = {**valid(vendor), name: WRONG_TYPE[field["type"]]}
                yield vendor, config, f"'{name}' must be of type {field['type']}"


def invalid_values() -> Iterator[tuple[str, dict[str, Any], str]]:
    """Values of the right type that are not what the field holds."""
    ok = valid
    base_url = "'base_url' must be https://..., or http:// for 127.0.0.1, localhost"
    for vendor in VENDORS:
        yield vendor, {**ok(vendor), "base_url": "http://api.example.com"}, base_url
    client = loke.client_credentials(URL)
    yield ("loke", {**ok("loke"), "credentials": {**client, "token_url": "http://auth.example.com"}},
           "'credentials.token_url' must be https://")
    yield "loke", {**ok("loke"), "organization_id": "../other"}, "'organization_id' must be letters"
    yield "loke", {**ok("loke"), "start_date": "2024-01-01"}, "'start_date' must be YYYY-MM-DD"
    yield ("loke", {**ok("loke"), "credentials": {"auth_type": "password"}},
           "'credentials.auth_type' must be one of: access_token, client_credentials")
    yield ("okendo", {**ok("okendo"), "customer_emails": ["zoe@example.com", "zoë at example"]},
           "'customer_emails[1]' must be an e-mail address (got 'zo***')")
    yield "okendo", {**ok("okendo"), "review_statuses": []}, "'review_statuses' must hold at"
    yield ("okendo", {**ok("okendo"), "review_statuses": ["approved", "spam"]},
           "'review_statuses[1]' must be one of: approved, pending, rejected")
    yield ("malomo", {**ok("malomo"), "api_key": malomo.PUBLISHABLE_KEY},
           "'api_key' must be a secret key")
    yield ("capillary", {**ok("capillary"), "identifiers": ["919845012345", " 919845012346"]},
           "'identifiers[1]' must be a value without spaces")
    yield "capillary", {**ok("capillary"), "identifiers": [""]}, "'identifiers[0]' must not be"
    yield "capillary", {**ok("capillary"), "identifier_name": "phone"}, "'identifier_name' must be"
    yield "capillary", {**ok("capillary"), "num_workers": 0}, "'num_workers' must be at least 1"


def check_in_process(config: dict[str, Any], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    (status,) = [json.loads(line)["connectionStatus"] for line in out.splitlines()
                 if line.startswith('{"type":"CONNECTION_STATUS"')]
    assert "Traceback" not in out
    return dict(status)


CASES = [*missing_fields(), *wrong_types(), *invalid_values()]


@pytest.mark.parametrize(("vendor", "config", "names"), CASES,
                         ids=[f"{v}-{n.split(chr(39))[1]}" for v, _, n in CASES])
def test_bad_config_fails_check_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], vendor: str,
        config: dict[str, Any], names: str) -> None:
    status = check_in_process(config, tmp_path, capsys)
    assert status["status"] == "FAILED"
    assert f"Config field {names}" in status["message"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_valid_configs_above_are_valid(vendor: str) -> None:
    assert config_problem(vendor, valid(vendor)) is None


@pytest.mark.parametrize("url", ["https://api.example.com", "http://127.0.0.1:8080",
                                 "http://localhost", "http://[::1]:9/root"])
def test_https_anywhere_and_http_to_this_machine_are_allowed(url: str) -> None:
    assert [v for v in VENDORS if config_problem(v, {**valid(v), "base_url": url})] == []


@pytest.mark.parametrize("url", ["http://localhost.example.com", "http://127.0.0.1@example.com",
                                 "ftp://127.0.0.1", "api.example.com"])
def test_http_to_a_host_that_only_looks_local_is_refused(url: str) -> None:
    assert all(config_problem(v, {**valid(v), "base_url": url}) for v in VENDORS)


@pytest.mark.parametrize(("vendor", "config"), [
    ("loke", {**valid("loke"), "credentials": {"auth_type": "access_token", "access_token": 7}}),
    ("loke", {**valid("loke"), "credentials": "loke-sandbox-access-token-5f2c"}),
    ("capillary", {**valid("capillary"), "credentials": {
        "auth_type": "basic", "username": "u", "password": ["Sändbox-till-pass-7f3a"]}}),
    ("capillary", {**valid("capillary"), "credentials": {"auth_type": "ldap",
                                                          "password": capillary.PASSWORD}}),
])
def test_a_refused_config_never_quotes_a_credential(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], vendor: str,
        config: dict[str, Any]) -> None:
    status = check_in_process(config, tmp_path, capsys)
    assert status["status"] == "FAILED" and "Config field 'credentials" in status["message"]
    for secret in ("7", "loke-sandbox-access-token-5f2c", "Sändbox", "****"):
        assert secret not in status["message"].replace("Config field", "")


def test_the_installed_cli_fails_check_naming_the_field_before_any_request() -> None:
    output = run("check", {**valid("capillary"), "base_url": "http://eu.api.capillarytech.com"})
    assert output.returncode == 0
    assert output.connection_status["status"] == "FAILED"
    assert "Config field 'base_url' must be https://" in output.connection_status["message"]


@pytest.mark.parametrize("command", ["discover", "read"])
def test_other_commands_fail_with_a_config_error_naming_the_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    path, catalog = tmp_path / "config.json", tmp_path / "catalog.json"
    path.write_text(json.dumps(without(valid("malomo"), "api_key")))
    catalog.write_text(json.dumps({"streams": []}))
    args = [command, "--config", str(path)] + (["--catalog", str(catalog)]
                                               if command == "read" else [])
    assert main(args) == 1
    (message,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                  if line.startswith("{")]
    assert message["trace"]["error"]["failure_type"] == "config_error"
    assert "Config field 'api_key' is missing" in message["trace"]["error"]["message"]
