"""destination-customers: one test per behaviour of the protocol and of each vendor's writes,
HTTP mocked. The vendors' end state over real HTTP is integration_tests/test_destination.py's.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests_mock as rm
from airbyte_protocol_dataclasses.models import DestinationCatalog
from serpyco_rs import Serializer

from source_customers.destination import cli
from source_customers.destination.apply import Outcome
from source_customers.destination.errors import Refused
from source_customers.destination.objects import body, load_writes
from source_customers.destination.plan import plan
from source_customers.destination.rejected import RejectedRecords
from source_customers.destination.vendor_http import VendorHttp
from source_customers.destination.write import Writer

MALOMO = {"vendor": "malomo", "api_key": "sk_test_0123456789", "base_url": "https://malomo.test"}
CAPILLARY = {"vendor": "capillary", "base_url": "https://capillary.test",
             "credentials": {"auth_type": "basic", "username": "till", "password": "pw"}}


def catalog(mode: str, key: list[str] | None, stream: str = "segment",
            obj: str | None = "customers") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "stream": {"name": stream, "json_schema": {"properties": {"email": {}, "mobile": {}}},
                   "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": mode,
        "primary_key": [[k] for k in key or []]}
    if obj:
        entry["destination_object_name"] = obj
    return {"streams": [entry]}


def record(data: dict[str, Any], stream: str = "segment") -> bytes:
    return json.dumps({"type": "RECORD", "record": {"stream": stream, "data": data,
                                                    "emitted_at": 1}}).encode()


def state(n: int) -> bytes:
    return json.dumps({"type": "STATE", "state": {"type": "GLOBAL", "global": {
        "shared_state": {"n": n}, "stream_states": []}}}).encode()


def run_write(config: dict[str, Any], cat: dict[str, Any], lines: list[bytes],
              workers: int = 2, storage: dict[str, Any] | None = None
              ) -> tuple[list[dict[str, Any]], Writer]:
    writes = load_writes(config["vendor"])
    out: list[dict[str, Any]] = []
    streams = plan(writes, cat, VendorHttp(writes, config), bool(config.get("dry_run")))
    writer = Writer(streams, workers, RejectedRecords(storage), out.append,
                    bool(config.get("dry_run")))
    try:
        writer.run(lines)
    finally:
        writer.summary()
    return out, writer


@pytest.fixture
def malomo(requests_mock: rm.Mocker) -> Iterator[list[dict[str, Any]]]:
    """Malomo's customers list, one page; writes answered as documented."""
    customers = [{"id": "cus_1", "email": "Zoe@Example.com", "first_name": "Zoe"},
                 {"id": "cus_2", "email": "ann@example.com", "first_name": "Ann"}]
    requests_mock.get("https://malomo.test/customers",
                      [{"json": customers}, {"json": []}])
    yield customers


def test_discover_is_a_destination_catalog_of_the_protocols_models(tmp_path: Path) -> None:
    for config in (MALOMO, CAPILLARY):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        message = cli.discover(str(path))
        assert message["type"] == "DESTINATION_CATALOG"
        parsed = Serializer(DestinationCatalog).load(message["destination_catalog"])
        modes = {op.sync_mode.value for op in parsed.operations}
        assert modes == ({"append", "update", "append_dedup", "soft_delete"}
                         if config is MALOMO else {"update", "append_dedup"})


def test_capillarys_update_body_never_holds_an_identifier() -> None:
    op = load_writes("capillary").objects["customers"].operations["update"]
    assert op.update is not None
    row = {"mobile": "919812345678", "email": "z@example.com", "firstName": "Zoe",
           "lastName": None, "fields": {"tier": "gold"}}
    made = body(op.update.body, row, {"$key": "mobile", "$value": row["mobile"]})
    assert made == {"profiles": [{"firstName": "Zoe", "fields": {"tier": "gold"}}]}
    assert "919812345678" not in json.dumps(made) and "z@example.com" not in json.dumps(made)


def test_absent_and_null_fields_are_never_sent(malomo: list[dict[str, Any]],
                                               requests_mock: rm.Mocker) -> None:
    put = requests_mock.put("https://malomo.test/customers/cus_2",
                            json={"id": "cus_2", "email": "ann@example.com"})
    run_write(MALOMO, catalog("update", ["id"]),
              [record({"id": "cus_2", "first_name": "Anne", "last_name": None})])
    assert put.last_request.json() == {"first_name": "Anne"}


def test_an_email_matches_whatever_its_letter_case(malomo: list[dict[str, Any]],
                                                   requests_mock: rm.Mocker) -> None:
    put = requests_mock.put("https://malomo.test/customers/cus_1", json={"id": "cus_1"})
    _, writer = run_write(MALOMO, catalog("update", ["email"]),
                          [record({"email": "zoe@EXAMPLE.com", "first_name": "Zoé"})])
    assert put.call_count == 1
    assert writer.streams["segment"].kinds == {"updated": 1}


def test_a_row_identical_to_the_customer_as_listed_sends_nothing(
        malomo: list[dict[str, Any]], requests_mock: rm.Mocker) -> None:
    put = requests_mock.put(rm.ANY, json={})
    _, writer = run_write(MALOMO, catalog("append_dedup", ["email"]),
                          [record({"email": "ann@example.com", "first_name": "Ann"})])
    assert put.call_count == 0
    assert writer.streams["segment"].kinds == {"unchanged": 1}


def test_deleting_a_customer_already_gone_is_not_an_error(
        malomo: list[dict[str, Any]], requests_mock: rm.Mocker) -> None:
    gone = requests_mock.delete("https://malomo.test/customers/cus_2", status_code=404,
                                json={"code": "not_found", "message": "Customer not found"})
    _, writer = run_write(MALOMO, catalog("soft_delete", ["id"]),
                          [record({"id": "cus_2"}), record({"id": "cus_404"})])
    assert gone.call_count == 1
    assert writer.streams["segment"].kinds == {"deleted": 2}


def test_a_malomo_refusal_rejects_the_record_and_the_sync_goes_on(
        malomo: list[dict[str, Any]], requests_mock: rm.Mocker, tmp_path: Path) -> None:
    requests_mock.post("https://malomo.test/customers", [
        {"status_code": 400, "json": {"code": "invalid", "message": "email is invalid",
                                      "request_id": "req_9", "status": 400}},
        {"json": {"id": "cus_3", "email": "new@example.com"}}])
    out, writer = run_write(MALOMO, catalog("append", None),
                            [record({"email": "not-an-address"}),
                             record({"email": "new@example.com"}), state(1)], workers=1,
                            storage={"storage_type": "Local", "path": str(tmp_path)})
    assert writer.streams["segment"].kinds == {"rejected": 1, "created": 1}
    (stored,) = (tmp_path / "segment").glob("rejected-*.jsonl")
    (line,) = [json.loads(s) for s in stored.read_text().splitlines()]
    assert line["email"] == "not-an-address" and line["rejected_reason"] == "HTTP 400"
    assert "email is invalid" in line["rejected_message"] and "req_9" in line["rejected_message"]
    (echoed,) = [m for m in out if m["type"] == "STATE"]
    assert echoed["state"]["destinationStats"] == {"recordCount": 2.0,
                                                   "rejectedRecordCount": 1.0}


def test_a_create_whose_answer_was_lost_is_looked_for_before_it_is_sent_again(
        requests_mock: rm.Mocker) -> None:
    import requests

    listed = [{"id": "cus_1", "email": "zoe@example.com"}]
    requests_mock.get("https://malomo.test/customers", [
        {"json": listed}, {"json": []},  # the listing before the create
        {"json": [*listed, {"id": "cus_9", "email": "new@example.com"}]}, {"json": []}])
    post = requests_mock.post("https://malomo.test/customers",
                              exc=requests.exceptions.ConnectionError("reset mid-answer"))
    _, writer = run_write(MALOMO, catalog("append_dedup", ["email"]),
                          [record({"email": "new@example.com"})])
    assert post.call_count == 1  # found by the listing after it: not created twice
    assert writer.streams["segment"].kinds == {"created": 1}


def test_capillary_8015_rejects_an_update_and_adds_in_append_dedup(
        requests_mock: rm.Mocker) -> None:
    not_found = {"errors": [{"status": False, "code": 8015,
                             "message": "Customer not found for the given identifiers"}]}
    requests_mock.put("https://capillary.test/v2/customers/lookup", json=not_found)
    add = requests_mock.post("https://capillary.test/v2/customers",
                             json={"createdId": 77, "warnings": []})
    _, updating = run_write(CAPILLARY, catalog("update", ["mobile"]),
                            [record({"mobile": "919812345678", "firstName": "Zoe"})])
    assert updating.streams["segment"].reasons == {"customer not found (8015)": 1}
    assert add.call_count == 0
    _, upserting = run_write(CAPILLARY, catalog("append_dedup", ["mobile"]),
                             [record({"mobile": "919812345678", "firstName": "Zoe"})])
    assert upserting.streams["segment"].kinds == {"created": 1}
    sent = add.last_request.json()["profiles"][0]
    assert sent["identifiers"] == [{"type": "mobile", "value": "919812345678"}]
    assert add.last_request.qs == {"source": ["instore"]}


def test_capillary_521_is_retried_and_not_a_rejection(requests_mock: rm.Mocker,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    busy = {"errors": [{"code": 521, "message": "multiple actions are running"}]}
    put = requests_mock.put("https://capillary.test/v2/customers/lookup",
                            [{"status_code": 521, "json": busy}, {"json": {"warnings": []}}])
    _, writer = run_write(CAPILLARY, catalog("update", ["mobile"]),
                          [record({"mobile": "919812345678", "firstName": "Zoe"})])
    assert put.call_count == 2 and writer.streams["segment"].kinds == {"updated": 1}


def test_a_mode_or_key_the_object_does_not_offer_fails_before_any_request(
        requests_mock: rm.Mocker) -> None:
    writes, http = load_writes("capillary"), VendorHttp(load_writes("capillary"), CAPILLARY)
    with pytest.raises(Refused, match="cannot be written in mode 'soft_delete'; it "
                                           "offers: update, append_dedup"):
        plan(writes, catalog("soft_delete", ["mobile"]), http, False)
    with pytest.raises(Refused, match=r"matching key \[firstName\] is not one"):
        plan(writes, catalog("update", ["firstName"]), http, False)
    assert not requests_mock.request_history


def test_a_classic_catalog_writes_the_object_of_the_streams_name(
        malomo: list[dict[str, Any]], requests_mock: rm.Mocker) -> None:
    requests_mock.put("https://malomo.test/customers/cus_2", json={"id": "cus_2"})
    _, writer = run_write(MALOMO, catalog("append_dedup", None, stream="customers", obj=None),
                          [record({"email": "ann@example.com", "first_name": "Annie"},
                                  stream="customers")])
    assert writer.streams["customers"].kinds == {"updated": 1}


class _Slow:
    """An applier that ends records when told, to watch STATE wait for them."""

    key: ClassVar[list[str]] = ["email"]

    def __init__(self) -> None:
        self.release = threading.Event()
        self.applied: list[str] = []

    def key_of(self, data: dict[str, Any]) -> str:
        return str(data["email"])

    def apply(self, data: dict[str, Any]) -> Outcome:
        if data.get("slow"):
            self.release.wait(5)
        self.applied.append(f"{data['email']}:{data['n']}")
        return Outcome("updated")


def test_a_state_is_echoed_only_once_every_record_before_it_has_ended() -> None:
    from source_customers.destination.write import StreamWrite

    slow = _Slow()
    out: list[dict[str, Any]] = []
    writer = Writer({"segment": StreamWrite("segment", slow)},  # type: ignore[arg-type]
                    4, RejectedRecords(None), out.append, False)

    def lines() -> Iterator[bytes]:
        yield record({"email": "a", "n": 1, "slow": True})
        yield state(1)
        yield record({"email": "b", "n": 1})
        yield state(2)
        time.sleep(0.3)  # b is done by now, a is not: no state may be out yet
        assert [m for m in out if m["type"] == "STATE"] == []
        slow.release.set()

    writer.run(lines())
    echoed = [m["state"]["global"]["shared_state"]["n"] for m in out if m["type"] == "STATE"]
    assert echoed == [1, 2]


def test_records_with_one_matching_key_are_applied_in_input_order() -> None:
    from source_customers.destination.write import StreamWrite

    slow = _Slow()
    slow.release.set()
    writer = Writer({"segment": StreamWrite("segment", slow)},  # type: ignore[arg-type]
                    8, RejectedRecords(None), lambda m: None, False)
    writer.run(record({"email": f"k{n % 3}", "n": n}) for n in range(300))
    for key in ("k0", "k1", "k2"):
        mine = [int(a.split(":")[1]) for a in slow.applied if a.startswith(f"{key}:")]
        assert mine == sorted(mine) and len(mine) == 100


def test_a_line_that_is_not_a_message_is_named_and_nothing_before_it_is_lost(
        malomo: list[dict[str, Any]], requests_mock: rm.Mocker) -> None:
    from source_customers.destination.write import BadInput

    put = requests_mock.put("https://malomo.test/customers/cus_2", json={"id": "cus_2"})
    with pytest.raises(BadInput, match="Line 3 of the input is not an Airbyte message"):
        run_write(MALOMO, catalog("update", ["id"]),
                  [record({"id": "cus_2", "first_name": "X"}), state(1), b"not json"])
    assert put.call_count == 1


def test_dry_run_sends_no_write(malomo: list[dict[str, Any]], requests_mock: rm.Mocker) -> None:
    out, writer = run_write({**MALOMO, "dry_run": True}, catalog("append_dedup", ["email"]),
                            [record({"email": "ann@example.com", "first_name": "Annie"}),
                             record({"email": "new@example.com"})])
    assert {r.method for r in requests_mock.request_history} == {"GET"}
    assert writer.streams["segment"].kinds == {"updated": 1, "created": 1}
    assert "1 would be created, 1 would be updated" in out[-1]["log"]["message"]


def test_the_cli_writes_a_sync_end_to_end(malomo: list[dict[str, Any]],
                                          requests_mock: rm.Mocker, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    requests_mock.put("https://malomo.test/customers/cus_2", json={"id": "cus_2"})
    (tmp_path / "c.json").write_text(json.dumps(MALOMO))
    (tmp_path / "k.json").write_text(json.dumps(catalog("update", ["email"])))
    lines = b"\n".join([record({"email": "ann@example.com", "first_name": "Annie"}), state(1)])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines + b"\n")))
    assert cli.main(["write", "--config", str(tmp_path / "c.json"),
                     "--catalog", str(tmp_path / "k.json")]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["type"] for m in printed] == ["STATE", "LOG"]
    assert "sk_test_0123456789" not in json.dumps(printed)


def test_progress_is_told_while_a_write_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from source_customers.destination.write import StreamWrite
    from source_customers.runtime.progress import PROGRESS_SECONDS_VARIABLE

    monkeypatch.setenv(PROGRESS_SECONDS_VARIABLE, "0.05")

    class Paced(_Slow):
        def apply(self, data: dict[str, Any]) -> Outcome:
            threading.Event().wait(0.01)  # the suite's time.sleep does not wait
            return super().apply(data)

    paced = Paced()
    out: list[dict[str, Any]] = []
    writer = Writer({"segment": StreamWrite("segment", paced)},  # type: ignore[arg-type]
                    1, RejectedRecords(None), out.append, False)
    writer.run(record({"email": f"k{n}", "n": n}) for n in range(40))
    told = [m["log"]["message"] for m in out if m["type"] == "LOG"]
    assert any(line.startswith("Stream 'segment' running for ") and " updated" in line
               for line in told), told


def test_a_lingering_record_holds_back_reading_once_its_epochs_fill_the_queue() -> None:
    """One record applied slowly holds back the STATEs after it; reading stops once as many
    epochs wait as records may be in flight, instead of piling up every STATE meanwhile
    (found on Python 3.13, where a worker preempted with the oldest record let 368 pile up)."""
    from source_customers.destination.write import StreamWrite

    slow = _Slow()
    out: list[dict[str, Any]] = []
    writer = Writer({"segment": StreamWrite("segment", slow)},  # type: ignore[arg-type]
                    2, RejectedRecords(None), out.append, False)
    held: list[int] = []

    def lines() -> Iterator[bytes]:
        yield record({"email": "first", "n": -1, "slow": True})
        yield state(-1)
        for n in range(1000):
            yield record({"email": f"k{n}", "n": n})
            yield state(n)
            held.append(len(writer.epochs))

    releasing = threading.Timer(1.0, slow.release.set)
    releasing.start()
    writer.run(lines())
    releasing.join()
    echoed = [m["state"]["global"]["shared_state"]["n"] for m in out if m["type"] == "STATE"]
    assert echoed == list(range(-1, 1000))
    assert max(held) <= 2 * 64 + 2


def test_an_echoed_states_epoch_is_forgotten_so_memory_does_not_grow_with_states() -> None:
    """A source may send a STATE after every record: the writer keeps only the epochs whose
    STATE is not yet echoed, not one per STATE read."""
    from source_customers.destination.write import StreamWrite

    out: list[dict[str, Any]] = []
    writer = Writer({"segment": StreamWrite("segment", _Slow())},  # type: ignore[arg-type]
                    3, RejectedRecords(None), out.append, False)
    held: list[int] = []

    def lines() -> Iterator[bytes]:
        for n in range(2000):
            yield record({"email": f"k{n % 7}", "n": n})
            yield state(n)
            held.append(len(writer.epochs))

    writer.run(lines())
    echoed = [m for m in out if m["type"] == "STATE"]
    assert [m["state"]["global"]["shared_state"]["n"] for m in echoed] == list(range(2000))
    assert all(m["state"]["destinationStats"]["recordCount"] == 1.0 for m in echoed)
    # Bounded by the records in flight (the workers' queues), not by the STATEs read.
    assert max(held) <= 3 * 64 + 2
    assert list(writer.epochs) == [2000]


def test_a_record_held_up_holds_up_only_its_own_key_not_the_records_behind_it() -> None:
    """Whichever worker is free takes the next record: a slow answer for one key leaves the
    other keys' records to the other workers, and that key's later records wait for it."""
    from source_customers.destination.write import StreamWrite

    slow = _Slow()
    out: list[dict[str, Any]] = []
    writer = Writer({"segment": StreamWrite("segment", slow)},  # type: ignore[arg-type]
                    2, RejectedRecords(None), out.append, False)
    others = [f"k{n}" for n in range(200)]  # more than the slow one's worker could queue

    def lines() -> Iterator[bytes]:
        yield record({"email": "a", "n": 1, "slow": True})
        yield record({"email": "a", "n": 2})
        for key in others:
            yield record({"email": key, "n": 1})
        yield state(1)

    runner = threading.Thread(target=writer.run, args=(lines(),))
    runner.start()
    ended = threading.Event()
    for _ in range(500):  # up to 5 s for the other keys, while 'a' is held
        if len(slow.applied) >= len(others):
            ended.set()
            break
        threading.Event().wait(0.01)
    assert ended.is_set(), slow.applied
    assert "a:2" not in slow.applied and set(slow.applied) == {f"{k}:1" for k in others}
    slow.release.set()
    runner.join(10)
    assert slow.applied[-2:] == ["a:1", "a:2"]
    assert [m["state"]["destinationStats"]["recordCount"] for m in out
            if m["type"] == "STATE"] == [202.0]


def test_answered_requests_are_not_held_by_the_request_deadline() -> None:
    """The deadline's watchdog keeps only requests still waiting for an answer: it held every
    request of the last minute, so memory grew with the rows written until a minute of them
    (about 200 bytes a request)."""
    import http.server

    import requests

    from source_customers.runtime import deadline

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    deadline.install_deadline()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        session = requests.Session()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        for _ in range(50):
            assert session.get(url, timeout=(5, 60)).json() == {}
        held = len(deadline._WATCHDOG._heap)
    finally:
        server.shutdown()
        server.server_close()
    assert held <= 1  # the last request's, dropped when the next one comes
