"""Personal data: configured e-mail addresses and identifiers appear in records, and in no
other output but masked, in any form they take.

Every command of Okendo and Capillary (the vendors configured with customers' addresses and
identifiers) runs as the installed CLI with `--debug` and debug logging on: the CDK then
logs each partition (`slice:` lines), each request's URL and body and each response. The
same reads run under the platform's runner with the bundled components file. Each value is
searched in every line but RECORD and STATE messages, and in stderr, as written,
URL-encoded (both ways) and JSON-escaped. The configs add an address with a `+`, whose
URL-encoded forms differ from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml

from integration_tests.cli import EXECUTABLE, Output, catalog_for, run
from integration_tests.sandbox import capillary, okendo, start

REPOSITORY = Path(__file__).resolve().parents[1]
RUNNER = shutil.which("source-declarative-manifest", path=str(Path(sys.executable).parent))
DEBUG = {**os.environ, "LOG_LEVEL": "debug", "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
PLUS_ADDRESS = "zoe.muller+vip@example.com"
FIELD = {"okendo": "customer_emails", "capillary": "identifiers"}
MODULES: dict[str, Any] = {"okendo": okendo, "capillary": capillary}
# A read meets a 429 (retried, its response logged), then a 401 partway: an error.
READ_FAULTS = ["", "429", "", "", "", "", "401"]


def forms(value: str) -> set[str]:
    """How a value can be written in a line of output, other than masked."""
    return {value, quote(value, safe=""), quote(value), quote_plus(value),
            json.dumps(value)[1:-1], json.dumps(json.dumps(value))[1:-1]}


def platform_runner(vendor: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The config as the platform's runner takes it: manifest and components inside."""
    components = (REPOSITORY / "manifests" / "components.py").read_text()
    manifest = yaml.safe_load((REPOSITORY / "manifests" / f"{vendor}.yaml").read_text())

    def inject(config: dict[str, Any]) -> dict[str, Any]:
        return {**config, "__injected_declarative_manifest": manifest,
                "__injected_components_py": components,
                "__injected_components_py_checksums": {
                    "md5": hashlib.md5(components.encode()).hexdigest()}}
    return inject


@dataclass
class Run:
    vendor: str
    command: str
    faults: list[str] = field(default_factory=list)
    runner: bool = False  # under the platform's runner, with the bundled components file
    output: Output | None = None
    values: list[str] = field(default_factory=list)

    def __call__(self) -> Run:
        module = MODULES[self.vendor]
        api = module.Api(**getattr(module, "SMALL", {}))
        server = start(api)
        try:
            config = module.config(server.url)
            if self.vendor == "capillary":  # looked up by e-mail: the address is one of them
                emails = [capillary.Api.identifier(c, "email") for c in api.customers]
                config.update(identifier_name="email",
                              identifiers=[e for e in emails if e][:10])
            config[FIELD[self.vendor]] = [*config[FIELD[self.vendor]], PLUS_ADDRESS]
            self.values = [str(v) for v in config[FIELD[self.vendor]]]
            inject = platform_runner(self.vendor) if self.runner else (lambda c: c)
            exe = [RUNNER or "source-declarative-manifest"] if self.runner else [EXECUTABLE]
            catalog = catalog_for(run("discover", inject(config), executable=exe, env=DEBUG)) \
                if self.command == "read" else None
            api.set_faults(scheduled=list(self.faults), retry_after="1")
            self.output = run(self.command, inject(config), catalog, env=DEBUG,
                              executable=exe, debug=True)
        finally:
            server.stop()
        return self


def plan() -> list[Run]:
    runs = []
    for vendor in FIELD:
        runs += [Run(vendor, "check"), Run(vendor, "discover"), Run(vendor, "read"),
                 Run(vendor, "read", faults=READ_FAULTS), Run(vendor, "read", runner=True)]
    return runs


@pytest.fixture(scope="module")
def outputs() -> list[Run]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda r: r(), plan()))


def leaks(output: Output, values: list[str]) -> dict[str, str]:
    """Each personal value found outside records and state, with the line it is in."""
    found: dict[str, str] = {}
    lines = output.stdout.splitlines() + output.stderr.splitlines()
    for line in lines:
        if line.startswith(('{"type":"RECORD"', '{"type":"STATE"')):
            continue
        for value in values:
            if value not in found and any(form in line for form in forms(value)):
                found[value] = line[:300]
    return found


@pytest.mark.parametrize("vendor", sorted(FIELD))
def test_personal_data_appears_in_no_output_but_records_even_with_debug(
        outputs: list[Run], vendor: str) -> None:
    runs = [r for r in outputs if r.vendor == vendor and r.output is not None]
    assert len(runs) == 5
    texts = "\n".join(r.output.stdout for r in runs if r.output)
    # The outputs that quoted the values before they were masked were all there.
    assert '"slice:' in texts or vendor == "okendo"  # Okendo's addresses are not partitions
    assert "Making outbound API request" in texts and "Receiving response" in texts
    assert "401" in texts and "429" in texts
    assert "z***@example.com" in texts  # the address with a `+`, masked
    found = {f"{r.command}{' (runner)' if r.runner else ''}{' (faults)' if r.faults else ''}":
             leaks(r.output, r.values) for r in runs if r.output}
    assert {run: leak for run, leak in found.items() if leak} == {}


@pytest.mark.parametrize("vendor", sorted(FIELD))
def test_records_keep_the_personal_data_they_hold(outputs: list[Run], vendor: str) -> None:
    (read,) = [r for r in outputs if r.vendor == vendor and r.command == "read"
               and not r.faults and not r.runner]
    assert read.output is not None and read.output.returncode == 0
    records = [line for line in read.output.stdout.splitlines()
               if line.startswith('{"type":"RECORD"')]
    assert any(value in line for line in records for value in read.values if len(value) >= 5)
