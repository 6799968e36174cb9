"""The example files of integration_tests/examples/<vendor>/ still fit the connector.

Airbyte connectors ship, in `integration_tests/`, a sample config, a configured catalog, a
sample state and an invalid config. One package serves four vendors here, so each vendor
has a folder of them. Each is held to what the installed CLI does against the sandbox:

- sample_config.json: secrets are placeholders (`<...>`); with the sandbox's credentials in
  their place and `base_url` pointing at the sandbox, `check` succeeds;
- configured_catalog.json: exactly `discover`'s streams, keys and cursors, each in its best
  sync mode (scripts/examples.py regenerates it);
- sample_state.json: `read` accepts it, reads from its cursors, and ends with a state of
  the same shape;
- invalid_config.json: `check` fails before any request, with the message below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_tests.cli import Output, run, spec_branch
from integration_tests.sandbox import VENDORS, start
from scripts.sandbox import configured_catalog

EXAMPLES = Path(__file__).parent / "examples"
FILES = {"sample_config.json", "configured_catalog.json", "sample_state.json",
         "invalid_config.json"}
PLACEHOLDER = re.compile(r"^<[^<>]+>$")
INVALID = {
    "loke": "Config field 'credentials.client_secret' is missing.",
    "okendo": "Config field 'customer_emails[0]' must be an e-mail address (got 'z***@example').",
    "malomo": "Config field 'api_key' must be a secret key, starting with sk_.",
    "capillary": "Config field 'base_url' must be https://..., or http:// for 127.0.0.1, "
                 "localhost or [::1] only (got 'http://eu.api.capillarytech.com').",
}


def example(vendor: str, name: str) -> Any:
    return json.loads((EXAMPLES / vendor / name).read_text(encoding="utf-8"))


def placeholders(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The paths of `value`'s placeholder strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from placeholders(item, (*path, key))
    elif isinstance(value, str) and PLACEHOLDER.match(value):
        yield path


def secret_paths(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The paths of the fields a spec branch marks `airbyte_secret` (credential choices too)."""
    if schema.get("airbyte_secret"):
        yield path
    for key, sub in schema.get("properties", {}).items():
        yield from secret_paths(sub, (*path, key))
    for sub in schema.get("oneOf", []):
        yield from secret_paths(sub, path)


def _sandbox_urls(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _sandbox_urls(item, (*path, key))
    elif isinstance(value, str) and value.startswith("http://127.0.0.1:"):
        yield path


def filled(vendor: str, sandbox_config: dict[str, Any]) -> dict[str, Any]:
    """The sample config with the sandbox's values for its placeholders and its URLs
    (`base_url`, LOKE's `credentials.token_url`)."""
    config: dict[str, Any] = example(vendor, "sample_config.json")
    for path in [*placeholders(config), *_sandbox_urls(sandbox_config)]:
        target, source = config, sandbox_config
        for key in path[:-1]:
            target, source = target.setdefault(key, {}), source[key]
        target[path[-1]] = source[path[-1]]
    return config


@pytest.fixture(scope="module", params=sorted(VENDORS))
def sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict[str, Any]]]:
    """(vendor, the sandbox's own config) for a small sandbox of each vendor."""
    module = VENDORS[request.param]
    server = start(module.Api(**getattr(module, "SMALL", {})))
    config = module.config(server.url)
    if request.param == "loke":  # the sample config's choice: an OAuth2 client
        config["credentials"] = module.client_credentials(server.url)
    yield request.param, config
    server.stop()


def test_every_vendor_has_its_example_files() -> None:
    assert {p.name for p in EXAMPLES.iterdir() if p.is_dir()} == set(VENDORS)
    for vendor in VENDORS:
        assert {p.name for p in (EXAMPLES / vendor).iterdir()} == FILES, vendor


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_sample_config_holds_no_secret(vendor: str) -> None:
    """Every field the spec marks secret is a placeholder, and only such fields are."""
    config = example(vendor, "sample_config.json")
    secrets = set(secret_paths(spec_branch(vendor)))
    found = set(placeholders(config))
    present = set()
    for path in secrets:
        value: Any = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            present.add(path)
    assert present, f"{vendor}: the sample config has no credential"
    assert present <= found, f"{vendor}: secrets that are not placeholders: {present - found}"


def test_sample_config_passes_check(sandbox: tuple[str, dict[str, Any]]) -> None:
    vendor, sandbox_config = sandbox
    output = run("check", filled(vendor, sandbox_config))
    assert output.connection_status == {"status": "SUCCEEDED"}, output.connection_status


def test_configured_catalog_is_discover_in_best_sync_modes(
        sandbox: tuple[str, dict[str, Any]]) -> None:
    vendor, sandbox_config = sandbox
    (message,) = run("discover", sandbox_config).of_type("CATALOG")
    discovered = {s["name"]: s for s in message["catalog"]["streams"]}
    shipped = example(vendor, "configured_catalog.json")
    names = [s["stream"]["name"] for s in shipped["streams"]]
    assert sorted(names) == sorted(discovered), (
        f"{vendor}: the example catalog names {names}, discover {list(discovered)}: "
        "run `make examples`")
    for configured in shipped["streams"]:
        stream = discovered[configured["stream"]["name"]]
        incremental = "incremental" in stream["supported_sync_modes"]
        assert configured["sync_mode"] == ("incremental" if incremental else "full_refresh")
        assert configured["destination_sync_mode"] == (
            "append_dedup" if incremental else "overwrite")
        assert configured["cursor_field"] == (stream["default_cursor_field"] if incremental
                                              else [])
        assert configured["primary_key"] == stream["source_defined_primary_key"]
    assert shipped == configured_catalog(message["catalog"]), "run `make examples`"


def _shape(value: Any) -> Any:
    """A state's structure: its keys, the shape of its lists' items, not its values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_sample_state_is_read_from(sandbox: tuple[str, dict[str, Any]]) -> None:
    vendor, sandbox_config = sandbox
    config = filled(vendor, sandbox_config)
    if vendor == "okendo":
        config["requests_per_second"] = 100  # the sandbox has no rate limit
    catalog = example(vendor, "configured_catalog.json")
    state = example(vendor, "sample_state.json")
    incremental = {s["stream"]["name"]: s["cursor_field"][0] for s in catalog["streams"]
                   if s["sync_mode"] == "incremental"}
    saved = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"]
             for s in state}
    assert set(saved) == set(incremental), f"{vendor}: state for {set(saved)}"
    output: Output = run("read", config, catalog, state)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert not [m for m in output.logs("WARN") if "state" in m.lower()], output.logs("WARN")
    final = {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"]
             for s in output.final_state()}
    for stream, cursor_field in incremental.items():
        assert _shape(final[stream]) == _shape(saved[stream]), (
            f"{vendor} {stream}: the connector now saves {final[stream]}: run `make examples`")
        if "states" not in saved[stream]:  # one cursor for the stream: nothing older is read
            since = saved[stream][cursor_field]
            older = [r for r in output.records(stream) if r[cursor_field] < since]
            assert not older, f"{vendor} {stream}: {len(older)} records before {since}"


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_invalid_config_fails_check_naming_the_field(vendor: str) -> None:
    output = run("check", example(vendor, "invalid_config.json"), timeout=60)
    assert output.connection_status == {"status": "FAILED", "message": INVALID[vendor]}
