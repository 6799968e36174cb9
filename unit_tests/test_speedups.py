"""The entry point's speed-ups must give exactly what the CDK gives, for every input."""

from __future__ import annotations

import copy
import dataclasses
import enum
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
import requests
import yaml
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import (
    AirbyteLogMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteRecordMessage,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    Level,
    StreamDescriptor,
    Type,
)
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.interpolation.jinja import JinjaInterpolation
from airbyte_cdk.sources.types import StreamSlice
from serpyco_rs import _describe as serpyco_describe
from serpyco_rs import _main as serpyco

from integration_tests.sandbox import loke
from source_customers import serializer_schemas, speedups, vendors
from source_customers.components import answers

FORMATS = ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S%z", "%s"]
ODD_VALUES = [
    "2021-10-21T18:34:45Z", "2022-01-18T02:21:20.380Z", "2022-01-18T02:21:20.380123Z",
    "2024-02-29T23:59:59Z",  # leap day
    "2023-02-29T00:00:00Z", "2021-13-01T00:00:00Z", "2021-10-21T24:00:00Z",  # impossible
    "2021-1-5T3:04:05Z",  # strptime accepts unpadded fields; the fast path must not differ
    "2022-01-18T02:21:20.38Z", "2022-01-18T02:21:20.38012Z", "2022-01-18T02:21:20.1234567Z",
    "2021-10-21T18:34:45+00:00", "2021-10-21T18:34:45+05:30", "2021-10-21 18:34:45Z",
    "2021-10-21T18:34:45z", " 2021-10-21T18:34:45Z", "", "1634841285",
    "\uff12\uff10\uff12\uff11-10-21T18:34:45Z",  # full-width digits
]


def outcome(parse: object, value: str, fmt: str) -> tuple[str, object]:
    try:
        parsed = parse(DatetimeParser(), value, fmt)  # type: ignore[operator]
    except ValueError:
        return ("ValueError", None)
    assert isinstance(parsed, datetime)
    return ("ok", (parsed, parsed.utcoffset()))


@pytest.mark.parametrize("fmt", FORMATS)
def test_iso_fast_path_parses_every_value_exactly_as_the_cdk(fmt: str) -> None:
    seeded = [c["updatedAt"] for c in loke.Api(customers=300).customers]
    seeded += [c["statistics"]["lastSpentAt"] for c in loke.Api(customers=300).customers
               if "statistics" in c]
    for value in ODD_VALUES + seeded:
        fast, cdk = outcome(speedups._parse, value, fmt), outcome(speedups._cdk_parse, value, fmt)
        assert fast == cdk, value


def test_slice_hash_is_the_cdks_computed_once() -> None:
    slices = [
        StreamSlice(partition={}, cursor_slice={}),
        StreamSlice(partition={"customer_id": "c1"}, cursor_slice={"start_time": "2024-01-01"}),
        StreamSlice(partition={"b": [1, {"x": None}], "a": "é"}, cursor_slice={},
                    extra_fields={"email": "z@example.com"}),
        StreamSlice(partition={"parent_slice": {"id": 7}, "customer_id": 7}, cursor_slice={}),
    ]
    for piece in slices:
        assert speedups._slice_hash(piece) == speedups._cdk_slice_hash(piece)
        assert speedups._slice_hash(piece) == speedups._slice_hash(piece)
    # Equal slices, whatever their key order, still hash alike.
    one = StreamSlice(partition={"a": 1, "b": 2}, cursor_slice={})
    other = StreamSlice(partition={"b": 2, "a": 1}, cursor_slice={})
    assert one == other and speedups._slice_hash(one) == speedups._slice_hash(other)


def test_install_routes_the_cdk_through_the_speedups(monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, name in [(DatetimeParser, "parse"), (StreamSlice, "__hash__"),
                        (answers, "_json_body"), (JsonDecoder, "decode"),
                        (JinjaInterpolation, "_literal_eval")]:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back after the test
    for name in ("airbyte_message_to_string", "handle_record_counts"):  # static methods
        monkeypatch.setattr(AirbyteEntrypoint, name, AirbyteEntrypoint.__dict__[name])
    speedups.install()
    speedups.install()
    assert DatetimeParser.parse is speedups._parse
    assert StreamSlice.__hash__ is speedups._slice_hash
    assert answers._json_body is speedups._json_body_kept
    assert JsonDecoder.decode is speedups._decode
    assert JinjaInterpolation._literal_eval is speedups._literal_eval
    assert AirbyteEntrypoint.airbyte_message_to_string is speedups._message_to_string
    assert AirbyteEntrypoint.handle_record_counts is speedups._handle_record_counts
    assert DatetimeParser().parse("2021-10-21T18:34:45Z", FORMATS[0]).tzinfo is not None
    assert len({StreamSlice(partition={"a": 1}, cursor_slice={})} |
               {StreamSlice(partition={"a": 1}, cursor_slice={})}) == 1


def answer(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = 200, body
    response.headers["Content-Type"] = "application/json"
    return response


BODIES = [
    b'[{"id": 1, "tags": ["a"]}, {"id": 2, "n": null}]', b'{"id": 1}', b"[]", b"{}", b"0",
    b'"text"', b"null", b"[1, 2]", b'{"s": "\\ud800"}',  # a lone surrogate: orjson refuses it
    b"  [\n{\"id\": 1}\n]  ", "[{\"name\": \"Zo\u00eb\"}]".encode(),
    b'[{"id": 1}, {"id": 2', b"<html>502 Bad Gateway</html>", b"", b"\xff\xfe",
]


@pytest.mark.parametrize("body", BODIES)
def test_body_checked_once_decodes_exactly_as_the_cdk(body: bytes) -> None:
    checked = answer(body)
    assert speedups._json_body_kept(checked) == speedups._cdk_json_body(answer(body))
    decoder = JsonDecoder(parameters={})
    expected = list(speedups._cdk_json_decode(decoder, answer(body)))
    assert list(speedups._decode(decoder, checked)) == expected
    # Taken by the first decoding: a second one parses afresh, sharing no record with it.
    first = list(speedups._decode(decoder, checked))
    again = list(speedups._decode(decoder, checked))
    assert first == again == expected
    assert all(a is not b for a, b in zip(first, again, strict=True) if isinstance(a, dict))


def test_checked_body_is_taken_by_the_decoder_not_kept() -> None:
    response = answer(b'[{"id": 1}]')
    assert speedups._json_body_kept(response) == [{"id": 1}]
    records = list(speedups._decode(JsonDecoder(parameters={}), response))
    records[0]["customerId"] = "added by a transformation"
    assert speedups._CHECKED_BODY not in response.__dict__
    assert list(speedups._decode(JsonDecoder(parameters={}), response)) == [{"id": 1}]


@dataclasses.dataclass
class Documented:
    name: str
    """The field's own doc."""


def test_deferred_serializer_schema_is_the_one_serpyco_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serpyco, "get_json_schema", serpyco.get_json_schema)
    monkeypatch.setattr(serpyco.Serializer, "get_json_schema", serpyco.Serializer.get_json_schema)
    monkeypatch.setattr(serpyco, "describe_type", serpyco.describe_type)
    monkeypatch.setattr(serpyco_describe, "get_attributes_doc",
                        serpyco_describe.get_attributes_doc)
    kinds: list[tuple[Any, Any]] = [
        (AirbyteMessage, AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="customers", data={"id": "c1", "none": None}, emitted_at=1))),
        (AirbyteStateMessage, AirbyteStateMessage(data={"updatedAt": "2024-01-01T00:00:00Z"})),
        (ConfiguredAirbyteCatalog, ConfiguredAirbyteCatalog(streams=[])),
        (ConnectorSpecification, ConnectorSpecification(connectionSpecification={})),
        (Documented, Documented(name="n")),
    ]
    eager = [serpyco.Serializer(kind, omit_none=True) for kind, _ in kinds]
    serializer_schemas.defer()
    deferred = [serpyco.Serializer(kind, omit_none=True) for kind, _ in kinds]
    for (_, value), before, after in zip(kinds, eager, deferred, strict=True):
        assert isinstance(after.__dict__["_schema"], serializer_schemas._Deferred)
        assert after.dump(value) == before.dump(value)
        assert after.get_json_schema() == before.get_json_schema()
        assert after.get_json_schema() is after.get_json_schema()  # built once
    # The fields' docs are in the deferred schemas, as in the eager ones.
    assert "The field's own doc." in str(deferred[-1].get_json_schema())
    # Any other description of a type keeps its fields' docs.
    assert serpyco.describe_type is not serpyco_describe.describe_type
    with_docs = serpyco_describe.get_attributes_doc(AirbyteRecordMessage)
    assert with_docs == serializer_schemas._attributes_doc(AirbyteRecordMessage)  # type: ignore[misc]
    assert AirbyteMessageSerializer.dump(kinds[0][1]) == eager[0].dump(kinds[0][1])


def test_command_defers_the_schemas_before_the_cdk_is_imported() -> None:
    # Deferring works only for serializers built after it: the command's module must not
    # import the CDK before it runs.
    probe = ("import sys, source_customers.__main__; "
             "assert not [m for m in sys.modules if m.startswith('airbyte_cdk')], 'imported'")
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_spec_without_the_cdk_is_the_cdks_spec_message() -> None:
    # `source-customers spec` prints vendors.spec_message() without importing the CDK; the
    # CDK's path serializes combined_spec() in an AirbyteMessage: the same bytes.
    through_cdk = orjson.dumps(AirbyteMessageSerializer.dump(
        AirbyteMessage(type=Type.SPEC, spec=vendors.combined_spec()))).decode()
    assert vendors.spec_message() == through_cdk


@pytest.mark.parametrize("args", [["spec"], ["spec", "--debug"]])
def test_spec_command_imports_no_cdk_and_prints_the_cdks_message(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    probe = ("import sys; sys.argv = ['source-customers', *sys.argv[1:]]\n"
             "from source_customers.__main__ import run\n"
             "try:\n    run()\nexcept SystemExit as done:\n    assert done.code == 0\n"
             "loaded = [m for m in sys.modules if m.startswith(('airbyte_cdk', 'jsonschema'))]\n"
             "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          check=True)
    # What the command printed before it answered `spec` by itself: run.main's answer.
    from source_customers import run

    monkeypatch.setattr(speedups, "install", lambda: None)  # no patching of this process
    assert run.main(args) == 0
    assert done.stdout == capsys.readouterr().out


@pytest.mark.parametrize("vendor", vendors.VENDORS)
def test_manifests_load_with_libyaml_exactly_as_with_safe_load(vendor: str) -> None:
    text = vendors._manifest_text(vendor)
    assert vendors.load_manifest(vendor) == yaml.safe_load(text)
    # Fresh copies: the CDK mutates what it is given.
    assert vendors.load_manifest(vendor) is not vendors.load_manifest(vendor)


def test_import_leaves_the_collector_on_and_the_cdk_frozen() -> None:
    probe = ("import gc\nfrom source_customers.__main__ import _import_main\n"
             "main = _import_main()\n"
             "assert gc.isenabled() and gc.get_freeze_count() > 100000, gc.get_freeze_count()\n"
             "assert main.__module__ == 'source_customers.run'\n")
    subprocess.run([sys.executable, "-c", probe], check=True)


class Color(enum.Enum):
    RED = "red"


RECORD_DATA: list[Any] = [
    {"id": "c1", "none": None, "nested": {"a": [1, 2.5, True, None, "é"]}, "empty": {}},
    {"deep": {"x": None, "y": [None, {"z": None}]}, "top": None, "zero": 0, "no": False,
     "blank": ""},
    {}, {"big": 2**63}, {"bigger": 2**70}, {"nan": float("nan")}, {"inf": float("inf")},
    {"when": datetime(2024, 1, 2, 3, 4, 5)}, {"day": date(2024, 1, 2)},
    {"money": Decimal("1.10")}, {"uuid": uuid.UUID(int=7)}, {"color": Color.RED},
    {"pair": (1, 2)}, {"set": {1}}, {"int_key": {1: "one"}}, {"bytes": b"x"},
    {"surrogate": "\ud800"}, {"text": "line\nbreak \"quoted\" \u2028"},
]


def cdk_output(message: AirbyteMessage) -> tuple[str, object]:
    try:
        return ("ok", speedups._cdk_message_to_string(message))
    except Exception as error:  # the CDK's own failure must be the fast path's too
        return (type(error).__name__, None)


def fast_output(message: AirbyteMessage) -> tuple[str, object]:
    try:
        return ("ok", speedups._message_to_string(message))
    except Exception as error:
        return (type(error).__name__, None)


@pytest.mark.parametrize("data", RECORD_DATA)
def test_record_message_is_written_exactly_as_the_cdk_writes_it(data: dict[str, Any]) -> None:
    assert speedups._KNOWN_FIELDS  # this CDK's messages take the fast path
    messages = [
        AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="customers", data=data, emitted_at=1700000000123)),
        AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="customers", data=data, emitted_at=1, namespace="shop")),
    ]
    for message in messages:
        assert fast_output(message) == cdk_output(message)


def test_every_other_message_takes_the_cdks_path() -> None:
    messages = [
        AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO, message="hi")),
        AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(
            type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
                stream_descriptor=StreamDescriptor(name="customers")))),
        AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="customers", data={"id": 1}, emitted_at=1),
            log=AirbyteLogMessage(level=Level.INFO, message="both")),
        AirbyteMessage(type=Type.RECORD, record=None),
    ]
    for message in messages:
        assert fast_output(message) == cdk_output(message)


def test_record_counts_are_the_cdks() -> None:
    def state(name: str, namespace: str | None = None) -> AirbyteMessage:
        return AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(
            type=AirbyteStateType.STREAM, stream=AirbyteStreamState(
                stream_descriptor=StreamDescriptor(name=name, namespace=namespace))))

    def record(name: str, namespace: str | None = None) -> AirbyteMessage:
        return AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream=name, namespace=namespace, data={}, emitted_at=1))

    sequence = [record("a"), record("a"), record("b"), state("a"), record("a", "ns"),
                record("a"), state("a"), state("b"), state("a", "ns"), state("c"),
                AirbyteMessage(type=Type.LOG, log=AirbyteLogMessage(level=Level.INFO,
                                                                     message="x"))]
    counts: dict[str, defaultdict[Any, float]] = {"cdk": defaultdict(float),
                                                  "fast": defaultdict(float)}
    for original in sequence:
        copies = {name: AirbyteMessage(**vars(original)) for name in counts}
        for name in ("cdk", "fast"):
            copies[name].state = copy.deepcopy(original.state)
        out_cdk = speedups._cdk_handle_record_counts(copies["cdk"], counts["cdk"])
        out_fast = speedups._handle_record_counts(copies["fast"], counts["fast"])
        assert out_cdk is copies["cdk"] and out_fast is copies["fast"]
        assert AirbyteMessageSerializer.dump(out_fast) == AirbyteMessageSerializer.dump(out_cdk)
        assert counts["fast"] == counts["cdk"]


RENDERED = ["2024-01-01T00:00:00Z", "01GB52KA9G7WCRJK6HRE4V7BQS", "cus_123", "42", "-7", "4.5",
            "1e3", "0x1F", "1_000", "1j", "True", "False", "None", "'quoted'", '"double"',
            "[1, 2]", "{'a': 1}", "(1, [2])", "{1, 2}", "", " 12", "12 ", "\t3", "a b",
            "/customers/cus_1/events", "9999-12-31T23:59:59Z", "nan", "inf", "-0.0",
            "b'bytes'", "1 +", "((("]
VALID_TYPES: list[Any] = [None, (str,), (int,), (int, float), (dict, list), (bool,)]


@pytest.mark.parametrize("valid_types", VALID_TYPES)
def test_literal_eval_remembered_answers_are_the_cdks(valid_types: Any) -> None:
    interpolation = JinjaInterpolation()
    speedups._LITERALS.clear()
    def outcome(function: Any, text: str) -> tuple[str, Any, type]:
        try:
            value = function(interpolation, text, valid_types)
        except Exception as error:
            return ("error", type(error), type(None))
        return ("ok", value, type(value))

    for _ in range(3):  # first seen, then remembered
        for text in RENDERED:
            fast = outcome(speedups._literal_eval, text)
            assert fast == outcome(speedups._cdk_literal_eval, text), text
    # A value its receiver could change is new every time.
    first = speedups._literal_eval(interpolation, "[1, 2]", None)
    first.append(3)
    assert speedups._literal_eval(interpolation, "[1, 2]", None) == [1, 2]


def test_literal_eval_table_stays_bounded() -> None:
    interpolation = JinjaInterpolation()
    for n in range(speedups._LITERALS_MOST * 2 + 5):
        assert speedups._literal_eval(interpolation, f"id_{n}", None) == f"id_{n}"
    assert len(speedups._LITERALS) <= speedups._LITERALS_MOST
    assert speedups._literal_eval(interpolation, "id_1", None) == "id_1"
    assert speedups._literal_eval(interpolation, None, None) is None
