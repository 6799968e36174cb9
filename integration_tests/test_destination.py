"""destination-customers over real HTTP: the installed command writes into the sandboxes, and
each test asserts the vendor's end state by key (nothing missing, nothing extra, no
duplicates), the rejected records exactly, and the echoed STATEs; then the source reads the
change back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from integration_tests.cli import catalog_for, run
from integration_tests.sandbox import capillary, malomo, start
from integration_tests.sandbox.server import Server

EXECUTABLE = shutil.which("destination-customers", path=str(Path(sys.executable).parent)) \
    or "destination-customers"


def write(config: dict[str, Any], catalog: dict[str, Any], messages: list[dict[str, Any]],
          timeout: float = 300) -> tuple[int, list[dict[str, Any]], str]:
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, content in (("config", config), ("catalog", catalog)):
            paths[name] = Path(folder) / f"{name}.json"
            paths[name].write_text(json.dumps(content))
        done = subprocess.run(
            [EXECUTABLE, "write", "--config", str(paths["config"]), "--catalog",
             str(paths["catalog"])],
            input="".join(json.dumps(m) + "\n" for m in messages), capture_output=True,
            text=True, timeout=timeout)
    out = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, out, done.stderr


def activation(mode: str, key: list[str] | None, stream: str = "segment") -> dict[str, Any]:
    return {"streams": [{
        "stream": {"name": stream, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": mode,
        "destination_object_name": "customers", "primary_key": [[k] for k in key or []]}]}


def rec(data: dict[str, Any], stream: str = "segment") -> dict[str, Any]:
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}


def state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "segment"}, "stream_state": {"n": n}}}}


def echoed(out: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    return [(m["state"]["stream"]["stream_state"]["n"],
             m["state"]["destinationStats"]["recordCount"],
             m["state"]["destinationStats"]["rejectedRecordCount"])
            for m in out if m["type"] == "STATE"]


def rejected_lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


@pytest.fixture
def malomo_api() -> Any:
    api = malomo.Api(customers=30, page_size=10)
    server = start(api)
    yield api, server
    server.stop()


@pytest.fixture
def capillary_api() -> Any:
    api = capillary.Api(customers=30)
    server = start(api)
    yield api, server
    server.stop()


def test_malomo_append_dedup_by_email_updates_creates_and_leaves_unchanged_rows(
        malomo_api: tuple[Any, Server], tmp_path: Path) -> None:
    api, server = malomo_api
    first, second = [c for c in api.customers if c.get("email")][:2]
    rows = [
        {"email": first["email"].upper(), "first_name": "Renamed"},  # update, any letter case
        {"email": second["email"], "first_name": second.get("first_name")},  # unchanged
        {"email": "new.customer@example.com", "first_name": "New"},  # create
        {"email": "not-an-address", "first_name": "Bad"},  # Malomo refuses: rejected
        {"first_name": "No key"},  # rejected before any request
    ]
    config = {**malomo.config(server.url),
              "object_storage_config": {"storage_type": "Local", "path": str(tmp_path)}}
    code, out, stderr = write(config, activation("append_dedup", ["email"]),
                              [rec(rows[0]), rec(rows[1]), state(1), rec(rows[2]),
                               rec(rows[3]), rec(rows[4]), state(2)])
    assert code == 0, stderr + json.dumps(out[-3:])
    assert echoed(out) == [(1, 2.0, 0.0), (2, 3.0, 2.0)]
    by_email = Counter(c.get("email", "").casefold() for c in api.customers)
    assert [e for e, n in by_email.items() if n > 1 and e] == []  # no duplicates
    assert api.created == [c["id"] for c in api.customers if c.get("email") ==
                           "new.customer@example.com"]
    assert api.updated == [first["id"]] and first["first_name"] == "Renamed"
    assert api.deleted == []
    stored = rejected_lines(tmp_path)
    assert sorted((str(s.get("email")), s["rejected_reason"]) for s in stored) == [
        ("None", "no matching key"), ("not-an-address", "HTTP 400")]
    summary = out[-2]["log"]["message"] if "stored in" in out[-1]["log"]["message"] else \
        out[-1]["log"]["message"]
    assert "5 records: 1 created, 1 updated, 1 unchanged, 2 rejected" in summary


def test_malomo_soft_delete_removes_by_id_and_a_customer_already_gone_is_not_an_error(
        malomo_api: tuple[Any, Server]) -> None:
    api, server = malomo_api
    doomed = [api.customers[3]["id"], api.customers[4]["id"]]
    code, out, stderr = write(malomo.config(server.url), activation("soft_delete", ["id"]),
                              [rec({"id": doomed[0]}), rec({"id": doomed[1]}),
                               rec({"id": "00000000-0000-4000-8000-000000000000"}), state(1)])
    assert code == 0, stderr
    assert sorted(api.deleted) == sorted(doomed)
    assert not {c["id"] for c in api.customers} & set(doomed)
    assert echoed(out) == [(1, 3.0, 0.0)]


def test_a_lost_create_answer_creates_one_customer_not_two(
        malomo_api: tuple[Any, Server]) -> None:
    api, server = malomo_api
    # The listing (3 pages and an empty one) passes; the create is applied, its answer lost.
    api.set_faults(scheduled=["", "", "", "", "applied-lost"])
    code, out, stderr = write(malomo.config(server.url), activation("append_dedup", ["email"]),
                              [rec({"email": "once@example.com", "first_name": "Once"}),
                               state(1)])
    assert code == 0, stderr
    assert "applied-lost" in api.faulted
    assert [c for c in api.customers if c.get("email") == "once@example.com"] and \
        len([c for c in api.customers if c.get("email") == "once@example.com"]) == 1
    assert echoed(out) == [(1, 1.0, 0.0)]


def test_retried_answers_write_everything_once(malomo_api: tuple[Any, Server]) -> None:
    api, server = malomo_api
    api.set_faults(every=3, kinds=("429", "503", "reset"), retry_after="1")
    rows = [{"email": c["email"], "last_name": "Retried"} for c in api.customers[:8]
            if c.get("email")]
    code, out, stderr = write(malomo.config(server.url), activation("update", ["email"]),
                              [*(rec(r) for r in rows), state(1)])
    assert code == 0, stderr
    assert sorted(api.updated) == sorted({c["id"] for c in api.customers
                                          if c.get("last_name") == "Retried"})
    assert len(api.updated) == len(rows)
    assert echoed(out) == [(1, float(len(rows)), 0.0)]


def test_a_wrong_key_fails_the_sync_readably_and_check_says_so(
        malomo_api: tuple[Any, Server], tmp_path: Path) -> None:
    _, server = malomo_api
    config = malomo.config(server.url, api_key="sk_wrong_0000000000")
    (tmp_path / "c.json").write_text(json.dumps(config))
    done = subprocess.run([EXECUTABLE, "check", "--config", str(tmp_path / "c.json")],
                          capture_output=True, text=True, timeout=60)
    status = json.loads(done.stdout.splitlines()[-1])["connectionStatus"]
    assert status["status"] == "FAILED" and "HTTP 401" in status["message"]
    code, out, _ = write(config, activation("update", ["email"]),
                         [rec({"email": "a@example.com", "first_name": "A"})])
    assert code == 1
    (error,) = [m["trace"]["error"] for m in out if m["type"] == "TRACE"]
    assert "HTTP 401" in error["message"] and error["failure_type"] == "config_error"
    assert "sk_wrong_0000000000" not in json.dumps(out)


def test_capillary_update_and_append_dedup_by_mobile(capillary_api: tuple[Any, Server],
                                                     tmp_path: Path) -> None:
    api, server = capillary_api
    known = [capillary.Api.identifier(c, "mobile") for c in api.customers[:3]]
    unknown = capillary.unknown_mobiles(2)
    config = {**capillary.config(server.url),
              "object_storage_config": {"storage_type": "Local", "path": str(tmp_path)}}
    rows = [{"mobile": m, "firstName": "Gold", "extendedFields": {"gender": "F"}}
            for m in known]
    code, out, stderr = write(config, activation("update", ["mobile"]),
                              [*(rec(r) for r in rows), rec({"mobile": unknown[0],
                                                             "firstName": "X"}), state(1)])
    assert code == 0, stderr
    assert echoed(out) == [(1, 4.0, 1.0)]
    assert [s["rejected_reason"] for s in rejected_lines(tmp_path)] == [
        "customer not found (8015)"]
    assert api.added == [] and api.merges == []
    assert all(api.find("mobile", m)["profiles"][0]["firstName"] == "Gold" for m in known)

    code, out, stderr = write(capillary.config(server.url),
                              activation("append_dedup", ["mobile"]),
                              [rec({"mobile": unknown[1], "firstName": "Added"}),
                               rec({"mobile": known[0], "lastName": "Upserted"}), state(2)])
    assert code == 0, stderr
    assert len(api.added) == 1 and api.find("mobile", unknown[1]) is not None
    assert api.find("mobile", known[0])["profiles"][0]["lastName"] == "Upserted"
    assert api.merges == []
    assert echoed(out) == [(2, 2.0, 0.0)]


def test_capillary_521_is_retried_and_an_invalid_identifier_is_rejected(
        capillary_api: tuple[Any, Server]) -> None:
    api, server = capillary_api
    known = capillary.Api.identifier(api.customers[5], "mobile")
    api.set_faults(scheduled=["521", "521"])
    code, out, stderr = write(capillary.config(server.url),
                              activation("append_dedup", ["mobile"]),
                              [rec({"mobile": known, "firstName": "Busy"}),
                               rec({"mobile": "not-a-number", "firstName": "Bad"}), state(1)],)
    assert code == 0, stderr
    assert api.faulted.count("521") == 2
    assert api.find("mobile", known)["profiles"][0]["firstName"] == "Busy"
    logs = [m["log"]["message"] for m in out if m["type"] == "LOG"]
    assert any("invalid identifier (8013)" in line for line in logs), logs
    assert "not-a-number" not in json.dumps([m for m in out if m["type"] != "STATE"])
    assert api.added == [] and api.merges == []


def test_what_was_written_reads_back_through_the_source(
        malomo_api: tuple[Any, Server]) -> None:
    api, server = malomo_api
    target = api.customers[7]
    code, _, stderr = write(malomo.config(server.url), activation("update", ["id"]),
                            [rec({"id": target["id"], "last_name": "Activated"})])
    assert code == 0, stderr
    config = malomo.config(server.url)
    output = run("read", config, catalog_for(run("discover", config), "customers"))
    assert output.returncode == 0
    (read_back,) = [r for r in output.records("customers") if r["id"] == target["id"]]
    assert read_back["last_name"] == "Activated"


def test_the_destination_catalog_validates_against_the_protocol_models(
        malomo_api: tuple[Any, Server], tmp_path: Path) -> None:
    from airbyte_protocol_dataclasses.models import DestinationCatalog
    from serpyco_rs import Serializer

    _, server = malomo_api
    (tmp_path / "c.json").write_text(json.dumps(malomo.config(server.url)))
    done = subprocess.run([EXECUTABLE, "discover", "--config", str(tmp_path / "c.json")],
                          capture_output=True, text=True, timeout=60, check=True)
    (message,) = [json.loads(line) for line in done.stdout.splitlines()]
    catalog = Serializer(DestinationCatalog).load(message["destination_catalog"])
    assert {(o.object_name, o.sync_mode.value) for o in catalog.operations} == {
        ("customers", m) for m in ("append", "update", "append_dedup", "soft_delete")}

