"""Interrupted syncs: a read killed midway and restarted from its last STATE loses nothing.

The installed CLI reads every stream of a vendor with an incremental stream (Capillary has
none), incrementally where offered, and is killed (SIGKILL, no chance to tidy up) as soon
as it has checkpointed progress: the first STATE that moves a cursor of an incremental
stream (the STATE messages before it only mark streams as started). A second read starts
from the last STATE of each stream, as the platform would. Together the two runs must hold
every record (at least once): a STATE must never promise records that were not emitted
before it. The sandbox answers slowly, so the kill lands mid-read.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from integration_tests import in_process
from integration_tests.cli import EXECUTABLE, Output, assert_same_keys, catalog_for, run
from integration_tests.sandbox import start
from integration_tests.vendors import CASES, Case

INCREMENTAL = [vendor for vendor, case in CASES.items() if case.incremental]


def moves_a_cursor(message: dict[str, Any], catalog: dict[str, Any]) -> bool:
    """Whether a STATE message holds a cursor value past the start (1970: no start_date)."""
    if message["type"] != "STATE":
        return False
    stream = message["state"]["stream"]
    (configured,) = [s for s in catalog["streams"]
                     if s["stream"]["name"] == stream["stream_descriptor"]["name"]]
    if configured["sync_mode"] != "incremental":
        return False
    (field,) = configured["cursor_field"]
    values = re.findall(rf'"{field}": "([^"]+)"', json.dumps(stream["stream_state"]))
    return any(not value.startswith("1970") for value in values)


def read_until_progress(config: dict[str, Any], catalog: dict[str, Any]) -> Output:
    """`read`, killed with SIGKILL right after its first STATE that moves a cursor."""
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: Path(folder) / f"{name}.json" for name in ("config", "catalog")}
        paths["config"].write_text(json.dumps(config))
        paths["catalog"].write_text(json.dumps(catalog))
        args = [EXECUTABLE, "read", "--config", str(paths["config"]),
                "--catalog", str(paths["catalog"])]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, cwd=folder)
        assert process.stdout is not None
        messages, lines = [], []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("{"):
                messages.append(json.loads(line))
                if moves_a_cursor(messages[-1], catalog):
                    process.send_signal(signal.SIGKILL)
                    break
        process.stdout.close()
        returncode = process.wait(timeout=60)
    return Output(returncode, "".join(lines), "", messages)


def interrupted_then_resumed(case: Case, catalog: dict[str, Any]
                             ) -> tuple[Output, Output, dict[str, list[Any]]]:
    api = case.small()
    api.latency = 0.02  # an API over the internet, not on this machine: the read takes a while
    server = start(api)
    try:
        config = case.config(api, server.url)
        first = read_until_progress(config, catalog)
        second = run("read", config, catalog, first.final_state())
        return first, second, case.expected(api, config)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Output, Output, dict[str, list[Any]]]]:
    # Discovered here, not in the threads: the CDK's entry point is not made for running
    # in several threads of one process at once. Discover sends no request.
    catalogs = {vendor: catalog_for(in_process.discover(
        CASES[vendor].config(CASES[vendor].small(), "http://127.0.0.1:9")), incremental=True)
        for vendor in INCREMENTAL}
    with ThreadPoolExecutor(len(INCREMENTAL)) as pool:
        done = pool.map(lambda v: interrupted_then_resumed(CASES[v], catalogs[v]), INCREMENTAL)
        return dict(zip(INCREMENTAL, done, strict=True))


@pytest.mark.parametrize("vendor", INCREMENTAL)
def test_a_killed_read_resumed_from_its_last_state_loses_no_record(
        runs: dict[str, tuple[Output, Output, dict[str, list[Any]]]], vendor: str) -> None:
    case = CASES[vendor]
    first, second, expected = runs[vendor]
    assert first.returncode == -signal.SIGKILL and first.states, "the read was not interrupted"
    assert second.returncode == 0, second.errors
    got_first, got_second = case.got(first), case.got(second)
    # The first run stopped short: there was something left for the second to read. (LOKE
    # checkpoints its customers once, when they are all read; its memberships come after.)
    assert sum(map(len, got_first.values())) < sum(map(len, expected.values()))
    for stream in case.keys:
        # Each record at least once; the second run alone holds no duplicate.
        assert_same_keys(list(set(got_first[stream]) | set(got_second[stream])),
                         expected[stream])
        assert len(got_second[stream]) == len(set(got_second[stream]))
