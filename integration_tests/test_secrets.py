"""Secrets: no credential, nor anything derived from one, in any output of any command.

Every command of every vendor runs as the installed CLI with debug logging on (which logs
every request's headers and every response's body), on success and on the failure paths:
wrong credentials, a 429 and then a 401 in the middle of a read, a token endpoint that errs.
All of stdout and stderr is searched for every secret the sandbox knows, the tokens it
issued, and the values derived from them (Capillary's md5 password, the Basic headers).
The runs share one pool of processes (see `outputs`); each has a sandbox of its own.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from integration_tests import in_process
from integration_tests.cli import Output, catalog_for, run
from integration_tests.sandbox import capillary, loke, malomo, okendo, start
from integration_tests.vendors import CASES
from source_customers.vendors import VENDORS

DEBUG = {**os.environ, "LOG_LEVEL": "debug"}
URL = "http://127.0.0.1:9"  # for discover, which sends no request
WRONG = "wrong-Sëcret-0a1b2c3d"  # the wrong credential every failure path is given
# A read meets a 429 (retried, logged with its response), then a 401 partway (an error).
READ_FAULTS = ["", "429", "", "", "", "", "401"]


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = {
    "loke": [*loke.SECRETS, WRONG],
    "okendo": [okendo.API_KEY, basic(okendo.USER_ID, okendo.API_KEY), WRONG,
               basic(okendo.USER_ID, WRONG)],
    "malomo": [*malomo.SECRETS, "sk_" + WRONG],
    "capillary": [*capillary.SECRETS, WRONG, capillary.md5(WRONG),
                  capillary.basic_header(capillary.USERNAME, WRONG)],
}


@dataclass
class Run:
    vendor: str
    command: str
    credentials: Callable[[str], Any] | None = None  # url -> credentials, else the default
    change: dict[str, Any] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    output: Output | None = None
    issued: list[str] = field(default_factory=list)  # tokens the sandbox handed out

    def __call__(self, catalogs: dict[str, dict[str, Any]]) -> Run:
        case = CASES[self.vendor]
        api = case.small()
        server = start(api)
        try:
            config = {**case.config(api, server.url), **self.change}
            if self.credentials:
                config["credentials"] = self.credentials(server.url)
            catalog = catalogs[self.vendor] if self.command == "read" else None
            api.set_faults(scheduled=list(self.faults), retry_after="1")
            self.output = run(self.command, None if self.command == "spec" else config,
                              catalog, env=DEBUG)
            self.issued = [str(t) for t in getattr(api, "tokens", {})]
        finally:
            server.stop()
        return self


def plan() -> Iterator[Run]:
    yield Run("loke", "spec")
    for vendor in VENDORS:
        yield Run(vendor, "discover")
        if vendor != "loke":  # LOKE's read is the client_credentials one below
            yield Run(vendor, "read", faults=READ_FAULTS)
    yield Run("loke", "check", lambda url: {"auth_type": "access_token", "access_token": WRONG})
    yield Run("loke", "check", lambda url: {**loke.client_credentials(url), "client_secret": WRONG})
    # The token request meets a 503 first, then the read its 429 and 401.
    yield Run("loke", "read", loke.client_credentials, faults=["503", *READ_FAULTS])
    yield Run("okendo", "check", change={"api_key": WRONG})
    yield Run("malomo", "check", change={"api_key": "sk_" + WRONG})
    yield Run("capillary", "check", lambda url: {"auth_type": "basic", "password": WRONG,
                                                 "username": capillary.USERNAME})
    yield Run("capillary", "check", lambda url: {**capillary.oauth(), "client_secret": WRONG})
    yield Run("capillary", "read", lambda url: capillary.oauth(), faults=["503", *READ_FAULTS])


@pytest.fixture(scope="module")
def outputs() -> list[Run]:
    # Discovered here, not in the threads: the CDK's entry point is not made for running
    # in several threads of one process at once.
    catalogs = {vendor: catalog_for(in_process.discover(case.config(case.small(), URL)))
                for vendor, case in CASES.items()}
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda r: r(catalogs), plan()))


def found(text: str, secrets: list[str]) -> list[str]:
    """The secrets in `text`, as written or as escaped inside JSON (shown cut short)."""
    forms = {s: {s, json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]}
             for s in secrets}
    return [s[:6] + "..." for s, written in forms.items() if any(f in text for f in written)]


@pytest.mark.parametrize("vendor", VENDORS)
def test_no_command_ever_outputs_a_secret_or_a_value_derived_from_one(
        outputs: list[Run], vendor: str) -> None:
    runs = [r for r in outputs if r.vendor == vendor and r.output is not None]
    assert {r.command for r in runs} >= {"discover", "read", "check"}
    texts = [r.output.text for r in runs if r.output]
    assert any("Making outbound API request" in t for t in texts)  # headers were logged
    assert any("401" in t for t in texts) and any("429" in t for t in texts)  # failure paths
    issued = [t for r in runs for t in r.issued]
    leaks = {f"{n}: {r.command}": found(r.output.text, SECRETS[vendor] + issued)
             for n, r in enumerate(runs) if r.output}
    assert {run: leak for run, leak in leaks.items() if leak} == {}
