"""The entry point's speed-ups must give exactly what the CDK gives, for every input."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest
import requests
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteRecordMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    Type,
)
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.types import StreamSlice
from serpyco_rs import _main as serpyco

from integration_tests.sandbox import loke
from source_customers import components, serializer_schemas, speedups

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
                        (components, "_json_body"), (JsonDecoder, "decode")]:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back after the test
    speedups.install()
    speedups.install()
    assert DatetimeParser.parse is speedups._parse
    assert StreamSlice.__hash__ is speedups._slice_hash
    assert components._json_body is speedups._json_body_kept
    assert JsonDecoder.decode is speedups._decode
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


def test_deferred_serializer_schema_is_the_one_serpyco_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serpyco, "get_json_schema", serpyco.get_json_schema)
    monkeypatch.setattr(serpyco.Serializer, "get_json_schema", serpyco.Serializer.get_json_schema)
    kinds: list[tuple[Any, Any]] = [
        (AirbyteMessage, AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="customers", data={"id": "c1", "none": None}, emitted_at=1))),
        (AirbyteStateMessage, AirbyteStateMessage(data={"updatedAt": "2024-01-01T00:00:00Z"})),
        (ConfiguredAirbyteCatalog, ConfiguredAirbyteCatalog(streams=[])),
    ]
    eager = [serpyco.Serializer(kind, omit_none=True) for kind, _ in kinds]
    serializer_schemas.defer()
    deferred = [serpyco.Serializer(kind, omit_none=True) for kind, _ in kinds]
    for (_, value), before, after in zip(kinds, eager, deferred, strict=True):
        assert isinstance(after.__dict__["_schema"], serializer_schemas._Deferred)
        assert after.dump(value) == before.dump(value)
        assert after.get_json_schema() == before.get_json_schema()
        assert after.get_json_schema() is after.get_json_schema()  # built once
    assert AirbyteMessageSerializer.dump(kinds[0][1]) == eager[0].dump(kinds[0][1])


def test_command_defers_the_schemas_before_the_cdk_is_imported() -> None:
    # Deferring works only for serializers built after it: the command's module must not
    # import the CDK before it runs.
    probe = ("import sys, source_customers.__main__; "
             "assert not [m for m in sys.modules if m.startswith('airbyte_cdk')], 'imported'")
    subprocess.run([sys.executable, "-c", probe], check=True)
