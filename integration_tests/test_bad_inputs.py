"""Inputs other than config: a bad state file, a catalog naming streams the vendor lacks,
and the command line itself. Each fails with a message naming the file, stream or field and
saying what to do (a TRACE ERROR with failure_type config_error), never with a traceback.

The installed CLI runs as a subprocess. The states the tests spoil are ones the connector
itself wrote, in a real incremental read against each vendor's sandbox.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from integration_tests.cli import EXECUTABLE, Output, catalog_for, run, sync
from integration_tests.sandbox import VENDORS as SANDBOXES
from integration_tests.sandbox import loke, malomo, okendo, start
from integration_tests.sandbox.server import Server
from source_customers.vendors import VENDORS

DEAD_URL = "http://127.0.0.1:9"  # nothing listens: a read that gets this far fails loudly
RESET = "Reset the connection's state"
STREAMS = {"loke": "customers, customer_memberships", "malomo": "customers, customer_events",
           "okendo": "customers, customer_profiles, customer_activities, reviews, "
                     "loyalty_customers, loyalty_earning_rules, loyalty_redemption_rules",
           "capillary": "customers"}
# Every incremental stream, by vendor, and its cursor field.
INCREMENTAL = [("loke", "customers", "updatedAt"), ("malomo", "customers", "updated_at"),
               ("malomo", "customer_events", "created_at"),
               ("okendo", "customer_activities", "date")]


class Synced:
    """A vendor's sandbox, its config and incremental catalog, and the state a sync left."""

    def __init__(self, vendor: str, server: Server) -> None:
        self.vendor = vendor
        self.config = SANDBOXES[vendor].config(server.url)
        self.catalog = catalog_for(run("discover", self.config), incremental=True)
        self.state = sync(self.config, incremental=True).final_state()

    def stream_state(self, stream: str, state: list[dict[str, Any]]) -> dict[str, Any]:
        (found,) = [s["stream"]["stream_state"] for s in state
                    if s["stream"]["stream_descriptor"]["name"] == stream]
        return dict(found)

    def read(self, state: Any) -> Output:
        return run("read", self.config, self.catalog, state)


@pytest.fixture(scope="module")
def synced() -> Iterator[dict[str, Synced]]:
    apis = {"loke": loke.Api(customers=40, with_memberships=5), "malomo": malomo.Api(customers=6),
            "okendo": okendo.Api()}
    servers = {vendor: start(api) for vendor, api in apis.items()}
    try:
        yield {vendor: Synced(vendor, server) for vendor, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def assert_config_error(output: Output, *says: str) -> str:
    """One TRACE ERROR, a config error saying each of `says`; non-zero exit; nothing read."""
    assert "Traceback" not in output.text, output.text[-2000:]
    assert output.returncode != 0
    (error,) = [m["trace"]["error"] for m in output.of_type("TRACE")
                if m["trace"]["type"] == "ERROR"]
    assert error["failure_type"] == "config_error"
    for text in says:
        assert text in error["message"], error["message"]
    assert output.of_type("RECORD") == [] and output.of_type("STATE") == []
    return str(error["message"])


def spoiled(state: list[dict[str, Any]], stream: str, value: Any,
            where: str = "cursor") -> list[dict[str, Any]]:
    """`state` with `stream`'s saved cursor set to `value`: the stream's own, or that of its
    first partition (`cursor`) or its global cursor (`global`) in a per-partition state."""
    changed = copy.deepcopy(state)
    for message in changed:
        if message["stream"]["stream_descriptor"]["name"] != stream:
            continue
        blob = message["stream"]["stream_state"]
        if "states" in blob:
            blob = blob["state"] if where == "global" else blob["states"][0]["cursor"]
        (field,) = [f for _, s, f in INCREMENTAL if s == stream and f in blob]
        blob[field] = value
    return changed


def stream_state(stream: str, blob: Any) -> list[dict[str, Any]]:
    return [{"type": "STREAM", "stream": {"stream_descriptor": {"name": stream},
                                          "stream_state": blob}}]


# --- state: valid ------------------------------------------------------------------------

@pytest.mark.parametrize("vendor", ["loke", "malomo", "okendo"])
def test_a_state_the_connector_wrote_is_accepted(synced: dict[str, Synced], vendor: str) -> None:
    output = synced[vendor].read(synced[vendor].state)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert output.errors == [] and output.logs("WARN") == []
    assert "Traceback" not in output.text


@pytest.mark.parametrize(("vendor", "stream", "value"), [
    ("loke", "customers", "2024-01-01T00:00:00.123Z"),
    ("loke", "customers", "2024-01-01T00:00:00+00:00"),
    ("okendo", "customer_activities", "2024-01-01T00:00:00Z"),
])
def test_a_state_cursor_in_any_format_the_stream_reads_is_accepted(
        synced: dict[str, Synced], vendor: str, stream: str, value: str) -> None:
    output = synced[vendor].read(spoiled(synced[vendor].state, stream, value))
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert "Traceback" not in output.text


@pytest.mark.parametrize("state", [[], None, {}], ids=["empty-list", "null", "empty-object"])
def test_an_empty_state_file_means_no_state(synced: dict[str, Synced], state: Any) -> None:
    output = run("read", synced["loke"].config, catalog_for(run(
        "discover", synced["loke"].config), "customers"), state)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert output.counts()["customers"] == 40


# --- state: bad cursor values ------------------------------------------------------------

@pytest.mark.parametrize(("vendor", "stream", "where"), [
    ("loke", "customers", "cursor"), ("malomo", "customers", "cursor"),
    ("malomo", "customer_events", "cursor"), ("malomo", "customer_events", "global"),
    ("okendo", "customer_activities", "cursor"), ("okendo", "customer_activities", "global"),
])
def test_state_cursor_that_is_not_a_date_fails_naming_the_stream_and_saying_to_reset(
        synced: dict[str, Synced], vendor: str, stream: str, where: str) -> None:
    field = next(f for v, s, f in INCREMENTAL if (v, s) == (vendor, stream))
    state = spoiled(synced[vendor].state, stream, "yesterday", where)
    assert_config_error(synced[vendor].read(state), "State file",
                        f"stream '{stream}'", f"{field} = 'yesterday'", "not a date-time", RESET)


@pytest.mark.parametrize(("value", "quoted"), [
    (20240101, "20240101"), (None, "null"), ("2024-01-01", "'2024-01-01'"),
    ("2024-13-01T00:00:00Z", "'2024-13-01T00:00:00Z'"), ({"at": "now"}, "{\"at\": \"now\"}")])
def test_state_cursor_of_another_form_fails_quoting_it(synced: dict[str, Synced],
                                                       value: Any, quoted: str) -> None:
    state = spoiled(synced["loke"].state, "customers", value)
    assert_config_error(synced["loke"].read(state), f"(updatedAt = {quoted})", RESET)


def test_a_long_state_cursor_is_not_quoted_in_full(synced: dict[str, Synced]) -> None:
    value = "x" * 500
    message = assert_config_error(synced["malomo"].read(
        spoiled(synced["malomo"].state, "customer_events", value)), "stream 'customer_events'")
    assert value[:60] not in message and len(message) < 400


def test_state_cursor_error_names_the_partition(synced: dict[str, Synced]) -> None:
    state = spoiled(synced["malomo"].state, "customer_events", "yesterday")
    partition = synced["malomo"].stream_state("customer_events", state)["states"][0]["partition"]
    assert_config_error(synced["malomo"].read(state), f"'{partition['customer_id']}'")


# --- state: wrong shape ------------------------------------------------------------------

@pytest.mark.parametrize(("state", "holds"), [
    ("j", "a JSON string"), (5, "a JSON number"),
    ({"customers": {"updatedAt": "2024-01-01T00:00:00Z"}}, "a JSON object"),
], ids=["string", "number", "legacy-object"])
def test_state_file_that_is_not_a_list_fails_saying_what_it_must_hold(
        synced: dict[str, Synced], state: Any, holds: str) -> None:
    assert_config_error(synced["loke"].read(state), "State file", f"holds {holds}",
                        "must be a JSON list of Airbyte state messages", RESET)


@pytest.mark.parametrize(("state", "says"), [
    (["j"], "item 1 is a JSON string"),
    ([{"type": "LEGACY", "data": {"customers": {}}}], "item 1 is of type LEGACY"),
    ([{"type": "GLOBAL", "global": {"stream_states": []}}], "item 1 is of type GLOBAL"),
    ([*stream_state("customers", {}), {"type": "STREAM"}], "item 2 has no 'stream'"),
    ([{"type": "STREAM", "stream": {"stream_state": {}}}], "item 1 names no stream"),
], ids=["string", "legacy", "global", "no-stream", "no-name"])
def test_state_item_that_is_not_a_stream_state_fails_naming_its_position(
        synced: dict[str, Synced], state: Any, says: str) -> None:
    assert_config_error(synced["loke"].read(state), "State file", says, RESET)


@pytest.mark.parametrize(("blob", "kind"), [("j", "a JSON string"), (["j"], "a JSON array"),
                                            (7, "a JSON number")])
def test_stream_state_that_is_not_an_object_fails_naming_the_stream(
        synced: dict[str, Synced], blob: Any, kind: str) -> None:
    assert_config_error(synced["loke"].read(stream_state("customers", blob)),
                        "State file", f"the saved state of stream 'customers' is {kind}", RESET)


@pytest.mark.parametrize(("vendor", "stream"), [("malomo", "customer_events"),
                                                ("okendo", "customer_activities")])
@pytest.mark.parametrize(("key", "value"), [("states", "x"), ("states", ["x"]),
                                            ("states", [{"partition": {}, "cursor": "x"}]),
                                            ("state", "x"), ("lookback_window", "x"),
                                            ("use_global_cursor", "x")])
def test_per_partition_state_of_the_wrong_shape_fails_naming_the_stream(
        synced: dict[str, Synced], vendor: str, stream: str, key: str, value: Any) -> None:
    state = copy.deepcopy(synced[vendor].state)
    for message in state:
        if message["stream"]["stream_descriptor"]["name"] == stream:
            message["stream"]["stream_state"][key] = value
    assert_config_error(synced[vendor].read(state), "State file", f"stream '{stream}'",
                        f"'{key}'", RESET)


def test_state_of_a_stream_the_vendor_lacks_is_ignored_with_a_warning(
        synced: dict[str, Synced]) -> None:
    state = [*synced["loke"].state, *stream_state("orders", {"updatedAt": "yesterday"})]
    output = synced["loke"].read(state)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    (warning,) = output.logs("WARN")
    assert warning.startswith("State file ") and "the saved state of stream 'orders'" in warning
    assert f"is ignored: loke has no such stream (its streams: {STREAMS['loke']})" in warning
    assert "Traceback" not in output.text


# --- catalog -----------------------------------------------------------------------------

def configured(*names: str) -> dict[str, Any]:
    return {"streams": [{
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for name in names]}


@pytest.mark.parametrize("vendor", VENDORS)
def test_catalog_naming_a_stream_the_vendor_lacks_fails_listing_its_streams(vendor: str) -> None:
    output = run("read", SANDBOXES[vendor].config(DEAD_URL), configured("customers", "orders"))
    message = assert_config_error(output, "Catalog file", "stream 'orders'",
                                  f"Run discover and pick from: {STREAMS[vendor]}.")
    assert "'customers'" not in message


def test_catalog_selecting_no_stream_fails_saying_nothing_was_selected() -> None:
    output = run("read", malomo.config(DEAD_URL), {"streams": []})
    assert_config_error(output, "Catalog file", "selects no stream",
                        f"Run discover and pick from: {STREAMS['malomo']}.")


# --- the command line --------------------------------------------------------------------

def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXECUTABLE, *args], capture_output=True, text=True, timeout=60)


def assert_usage(text: str) -> None:
    for line in ("source-customers spec", "source-customers check --config CONFIG",
                 "source-customers discover --config CONFIG",
                 "source-customers read --config CONFIG --catalog CATALOG [--state STATE]"):
        assert line in text, text
    assert "Traceback" not in text


def test_no_arguments_prints_usage_and_exits_2() -> None:
    done = command()
    assert done.returncode == 2
    assert_usage(done.stdout + done.stderr)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_exits_0(flag: str) -> None:
    done = command(flag)
    assert done.returncode == 0
    assert_usage(done.stdout)
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("word", ["sync", "--config", "READ"])
def test_unknown_command_prints_usage_and_exits_2(word: str) -> None:
    done = command(word)
    assert done.returncode == 2
    assert f"unknown command {word!r}" in done.stderr
    assert_usage(done.stdout + done.stderr)
