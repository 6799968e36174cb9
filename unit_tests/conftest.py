"""Helpers shared by the unit tests: sources built from the shipped manifests, run in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, _run_command, make_file
from airbyte_cdk.test.entrypoint_wrapper import read as cdk_read
from airbyte_cdk.test.state_builder import StateBuilder

from source_customers import (
    masking,
    run,  # noqa: F401  registers the components module
)
from source_customers.runtime import hooks

# As `source-customers` does before every command: the request deadline, progress, masking.
hooks.install()
from source_customers.vendors import load_manifest  # noqa: E402  after the hooks, on purpose


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Retries happen, but without waiting; the waits asked for are recorded."""
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", lambda seconds: waits.append(seconds))
    yield waits


def source(config: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog | None = None,
           state: list[AirbyteStateMessage] | None = None) -> ConcurrentDeclarativeSource:
    return ConcurrentDeclarativeSource(
        catalog=catalog, config=config, state=state,
        source_config=load_manifest(config["vendor"]),
    )


def catalog(*streams: str, sync_mode: SyncMode = SyncMode.full_refresh) -> ConfiguredAirbyteCatalog:
    builder = CatalogBuilder()
    for name in streams:
        builder.with_stream(ConfiguredAirbyteStreamBuilder().with_name(name).with_sync_mode(sync_mode))
    return builder.build()


def read(config: Mapping[str, Any], *streams: str, sync_mode: SyncMode = SyncMode.full_refresh,
         state: Mapping[str, Mapping[str, Any]] | None = None) -> EntrypointOutput:
    cat = catalog(*streams, sync_mode=sync_mode)
    built = StateBuilder()
    for stream, value in (state or {}).items():
        built = built.with_stream_state(stream, dict(value))
    messages = built.build() if state else None
    return cdk_read(source(config, cat, messages), dict(config), cat, messages)


def check(config: Mapping[str, Any], tmp_path: Any) -> EntrypointOutput:
    path = make_file(tmp_path / "config.json", json.dumps(config))
    return _run_command(source(config), ["check", "--config", path])


def ids(output: EntrypointOutput, stream: str, *key: str) -> list[Any]:
    rows = [m.record.data for m in output.records if m.record and m.record.stream == stream]
    return [tuple(r[k] for k in key) if len(key) > 1 else r[key[0]] for r in rows]


def transcript(output: EntrypointOutput) -> str:
    """Every message the command produced, as text: what a user or a log store would see."""
    return "\n".join(str(message) for message in output.get_message_iterator())


@pytest.fixture(autouse=True)
def _no_shared_results() -> Iterator[None]:
    """Tokens and lookups shared across streams live for a process; each test starts afresh."""
    from source_customers.components import (
        OkendoCustomerLookup,
        SharedClientCredentialsOAuthenticator,
        answers,
    )

    shared: list[dict[Any, Any]] = [SharedClientCredentialsOAuthenticator._tokens,
                                    OkendoCustomerLookup._lookups]
    answers._LOGGED_ONCE.clear()
    for results in shared:
        results.clear()
    yield
    for results in shared:
        results.clear()
    # Personal data registered by a test's config (a process is one command, one config).
    masking._PERSONAL.replacements.clear()
    masking._PERSONAL.ordered = []
