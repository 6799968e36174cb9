"""The entry point's speed-ups must give exactly what the CDK gives, for every input."""

from __future__ import annotations

from datetime import datetime

import pytest
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.types import StreamSlice

from integration_tests.sandbox import loke
from source_customers import speedups

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


def test_install_routes_the_cdk_through_the_speedups() -> None:
    parse, slice_hash = DatetimeParser.parse, StreamSlice.__hash__
    try:
        speedups.install()
        speedups.install()
        assert DatetimeParser.parse is speedups._parse
        assert StreamSlice.__hash__ is speedups._slice_hash
        assert DatetimeParser().parse("2021-10-21T18:34:45Z", FORMATS[0]).tzinfo is not None
        assert len({StreamSlice(partition={"a": 1}, cursor_slice={})} |
                   {StreamSlice(partition={"a": 1}, cursor_slice={})}) == 1
    finally:
        DatetimeParser.parse = parse  # type: ignore[method-assign]
        StreamSlice.__hash__ = slice_hash  # type: ignore[method-assign]
