"""destination-customers driven by PyAirbyte, as a PyAirbyte user writes to it:
`airbyte.get_destination("destination-customers", local_executable=...)` on the installed
command, then `destination.write(...)` from a source or from what a source read into a cache.

PyAirbyte sends a classic catalog: the stream's name is the object (`customers`), the write
strategy `merge` becomes `append_dedup`, and the stream's primary key (the source's, or one
set with `set_primary_key`) is the matching key. Each test asserts Malomo's end state by key.

PyAirbyte comes with the demo extra only (`make demo` installs it, or
`make .venv/.demo-installed`): without it these tests are skipped, so `make test` passes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration_tests.sandbox import malomo, start
from integration_tests.sandbox.server import Server

# Read by PyAirbyte when it is imported: no registry look-up, no telemetry, logs kept apart.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIRBYTE_LOGGING_ROOT", tempfile.mkdtemp(prefix="pyairbyte-logs-"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # Google's libraries on Python versions
    airbyte = pytest.importorskip("airbyte", reason="PyAirbyte comes with the demo extra "
                                                    "(make .venv/.demo-installed)")

BIN = Path(sys.executable).parent


def installed(name: str) -> Path:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed beside {sys.executable}: make install"
    return Path(found)


@pytest.fixture
def target() -> Iterator[tuple[malomo.Api, Server]]:
    api = malomo.Api(customers=30, page_size=10)
    server = start(api)
    yield api, server
    server.stop()


def destination(server: Server) -> Any:
    return airbyte.get_destination("destination-customers", config=malomo.config(server.url),
                                   local_executable=installed("destination-customers"))


def source(server: Server) -> Any:
    return airbyte.get_source("source-customers", config=malomo.config(server.url),
                              local_executable=installed("source-customers"),
                              streams=["customers"])


def create(server: Server, customer: dict[str, Any]) -> None:
    """A customer created as Malomo's users do, through its API."""
    request = urllib.request.Request(
        f"{server.url}/customers", data=json.dumps(customer).encode(), method="POST",
        headers={"Authorization": f"Bearer {malomo.API_KEY}", "Accept": malomo.ACCEPT,
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def snapshot(api: malomo.Api) -> dict[str, dict[str, Any]]:
    return {c["id"]: dict(c) for c in api.customers}


def test_spec_config_and_check_as_pyairbyte_reads_them(
        target: tuple[malomo.Api, Server]) -> None:
    _, server = target
    dest = destination(server)
    spec = dest.config_spec  # PyAirbyte parses the SPEC message into its own model
    assert {b["properties"]["vendor"]["const"] for b in spec["oneOf"]} == {"capillary",
                                                                           "malomo"}
    dest.validate_config()
    dest.check()
    with pytest.raises(airbyte.exceptions.AirbyteConnectorValidationFailedError):
        dest.validate_config({"vendor": "malomo", "base_url": server.url})  # no api_key


def test_rows_changed_in_the_cache_are_written_back_by_id(
        target: tuple[malomo.Api, Server], tmp_path: Path) -> None:
    """Read into DuckDB, change a segment in SQL, write the read result back: merge by the
    source's key, `id`. Only the changed customers are written; nothing is created."""
    api, server = target
    before = snapshot(api)
    cache = airbyte.caches.DuckDBCache(db_path=tmp_path / "warehouse.duckdb",
                                       cache_dir=tmp_path / "cache")
    result = source(server).read(cache=cache)
    assert len(result["customers"]) == len(api.customers)
    segment = sorted(i for i, c in before.items() if c.get("email"))[:5]
    cache.execute_sql(
        f"UPDATE {cache.schema_name}.customers SET last_name = 'Activated' WHERE id IN "
        f"({', '.join(repr(i) for i in segment)})")

    written = destination(server).write(result, write_strategy="merge")

    assert written is not None
    assert sorted(api.updated) == segment
    assert api.created == [] and api.deleted == []
    after = snapshot(api)
    assert after.keys() == before.keys()
    for cid, customer in after.items():
        if cid in segment:
            assert customer["last_name"] == "Activated"
            assert {k: v for k, v in customer.items() if k not in ("last_name", "updated_at")} \
                == {k: v for k, v in before[cid].items() if k not in ("last_name", "updated_at")}
        else:
            assert customer == before[cid]  # unchanged rows send nothing


def test_a_source_written_with_merge_by_email_updates_creates_and_matches_any_case(
        target: tuple[malomo.Api, Server]) -> None:
    """Another Malomo store (seeded as the target, then changed) read by source-customers
    and written with `merge` on the primary key `email` (set with PyAirbyte's
    set_primary_key): the e-mail found, in any letter case, is updated; the new one created;
    rows without an e-mail are rejected; no customer is duplicated; the rest are untouched."""
    api, server = target
    before = snapshot(api)
    other = malomo.Api(customers=30, page_size=10)  # the same seed: the same customers
    renamed, recased = [c for c in other.customers if c.get("email")][:2]
    renamed["first_name"] = "Renamed"
    recased["email"] = recased["email"].upper()  # same customer, other letter case
    other_server = start(other)
    try:
        create(other_server, {"email": "brand.new@example.com", "first_name": "Brand"})
        reader = source(other_server)
        reader.set_primary_key("customers", "email")
        destination(server).write(reader, cache=False, state_cache=False,
                                  write_strategy="merge")
    finally:
        other_server.stop()

    emails = Counter(c["email"].casefold() for c in api.customers if c.get("email"))
    assert [e for e, n in emails.items() if n > 1] == []
    (created,) = api.created
    assert snapshot(api)[created]["email"] == "brand.new@example.com"
    # The re-cased e-mail found its customer (no second one), who now has it as the row has.
    assert sorted(api.updated) == sorted([renamed["id"], recased["id"]])
    after = snapshot(api)
    assert after[renamed["id"]]["first_name"] == "Renamed"
    assert after[recased["id"]]["email"] == recased["email"]
    assert api.deleted == []
    changed = (created, renamed["id"], recased["id"])
    assert {i: c for i, c in after.items() if i not in changed} == \
        {i: c for i, c in before.items() if i not in changed}
