"""The entry point's speed-ups must give exactly what the CDK gives, for every input."""

from __future__ import annotations

from datetime import datetime

import pytest
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser

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


def test_install_routes_the_cdk_parser_through_the_fast_path() -> None:
    original = DatetimeParser.parse
    try:
        speedups.install()
        speedups.install()
        assert DatetimeParser.parse is speedups._parse
        assert DatetimeParser().parse("2021-10-21T18:34:45Z", FORMATS[0]).tzinfo is not None
    finally:
        DatetimeParser.parse = original  # type: ignore[method-assign]
