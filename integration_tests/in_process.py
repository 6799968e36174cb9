"""Runs a vendor's shipped manifest inside the test process, against the sandbox over real HTTP.

The CLI as a subprocess is how a user runs the connector, but the CDK's retries really wait
(Retry-After, then seconds of exponential backoff), so a read that meets dozens of faults
would take minutes. In-process, `time.sleep` is replaced by a recorder (see `waits`): every
retry still happens, over real sockets, without the wait; the waits asked for are kept, so
tests can check them. Results come back as `cli.Output`, so the CLI tests' helpers apply.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from airbyte_cdk.models import (
    AirbyteMessageSerializer,
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalogSerializer,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.test import entrypoint_wrapper
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from integration_tests.cli import Output, catalog_for
from source_customers import run  # noqa: F401  run registers the components module
from source_customers.components import (
    OkendoCustomerLookup,
    SharedClientCredentialsOAuthenticator,
    answers,
)
from source_customers.runtime import hooks

# As `source-customers` does before every command: the request deadline, progress, masking.
hooks.install()
from source_customers.vendors import load_manifest  # noqa: E402  after the hooks, on purpose

_REAL_SLEEP = time.sleep


# Who sleeps to back off before a retry: the `backoff` library (under the CDK's HTTP client
# and its OAuth token requests), the CDK's Retry-After handler, and the components' own
# token requests. Any other sleep (an API budget pacing requests, a thread pool polling)
# really sleeps.
_BACKOFF_CALLERS = ("backoff.", "airbyte_cdk.sources.streams.http.", "source_customers.")


@contextmanager
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Backoff waits before a retry are recorded, not waited; the list holds them."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        caller = str(sys._getframe(1).f_globals.get("__name__", ""))
        if caller.startswith(_BACKOFF_CALLERS):
            if seconds > 0:
                waits.append(float(seconds))
        else:
            _REAL_SLEEP(seconds)

    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", sleep)
        yield waits


def manifest(vendor: str, read_timeout: float | None = None) -> dict[str, Any]:
    """The shipped manifest; with `read_timeout`, its requesters give up on a silent server
    sooner than the shipped value (which no test can afford to wait out)."""
    loaded = load_manifest(vendor)
    if read_timeout is not None:
        requester = loaded["definitions"]["requester"]
        assert "read_timeout_in_seconds" in requester, f"{vendor}: no read timeout shipped"
        requester["read_timeout_in_seconds"] = read_timeout
    return loaded


def _settle(before: set[threading.Thread], timeout: float = 60) -> None:
    """Waits for the connector work a read left running (a failed read's lookups still
    retrying) while the caller's recorded sleeps still apply: afterwards its backoff would
    really wait, and the interpreter would wait for it at exit. Idle pool workers, which do
    no work, are not waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames = sys._current_frames()
        busy = [t for t in set(threading.enumerate()) - before
                if not t.daemon and t.ident in frames and _in_connector(frames[t.ident])]
        if not busy:
            return
        busy[0].join(0.05)


def _in_connector(frame: FrameType | None) -> bool:
    while frame is not None:
        if "airbyte_cdk" in frame.f_code.co_filename or "source_customers" in \
                frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _output(result: entrypoint_wrapper.EntrypointOutput) -> Output:
    messages = [AirbyteMessageSerializer.dump(m) for m in result.get_message_iterator()]
    failed = any(m["type"] == "TRACE" and m["trace"]["type"] == "ERROR" for m in messages)
    return Output(1 if failed else 0, "", "", messages)


def discover(config: dict[str, Any]) -> Output:
    source = ConcurrentDeclarativeSource(config=config, source_config=manifest(config["vendor"]))
    with tempfile.TemporaryDirectory() as folder:
        path = entrypoint_wrapper.make_file(Path(folder) / "config.json", json.dumps(config))
        # Not the CDK's discover(): it adds --debug, which leaves debug logging on for good.
        return _output(entrypoint_wrapper._run_command(
            source, ["discover", "--config", path], expected_outcome=ExpectedOutcome.ALLOW_ANY))


def read(config: dict[str, Any], catalog: dict[str, Any] | None = None,
         state: list[dict[str, Any]] | None = None, read_timeout: float | None = None) -> Output:
    """`read` as the CLI runs it (all streams unless a catalog is given), in this process."""
    catalog = catalog or catalog_for(discover(config))
    configured = ConfiguredAirbyteCatalogSerializer.load(catalog)
    states = [AirbyteStateMessageSerializer.load(s) for s in state] if state else None
    source = ConcurrentDeclarativeSource(
        catalog=configured, config=config, state=states,
        source_config=manifest(config["vendor"], read_timeout),
    )
    # Tokens and Okendo lookups shared by every stream live for a process (one sync, for the
    # CLI): each read here is a sync of its own and starts without them.
    SharedClientCredentialsOAuthenticator._tokens.clear()
    OkendoCustomerLookup._lookups.clear()
    answers._LOGGED_ONCE.clear()
    before = set(threading.enumerate())
    result = entrypoint_wrapper.read(source, config, configured, states,
                                     expected_outcome=ExpectedOutcome.ALLOW_ANY)
    _settle(before)
    return _output(result)
