"""Measured speed-ups of CDK internals, installed by the `source-customers` entry point.

Under the platform's `source-declarative-manifest` runner they are absent, and the
connector is as correct there, only slower. Each one is checked against the CDK's own
behaviour in `unit_tests/test_speedups.py`; `make bench` measures what it buys.
"""

from __future__ import annotations

import re
from collections.abc import Generator, MutableMapping
from datetime import datetime
from typing import Any

import requests
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.types import StreamSlice

from source_customers import components

# The cursor formats the manifests declare whose strings `fromisoformat` reads exactly as
# `strptime` does, with the shape a string must have to take the fast path.
_SECONDS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
_ISO_UTC_SHAPES = {
    "%Y-%m-%dT%H:%M:%SZ": re.compile(_SECONDS + "Z"),
    "%Y-%m-%dT%H:%M:%S.%fZ": re.compile(_SECONDS + r"\.([0-9]{3}|[0-9]{6})Z"),
}


_cdk_parse = DatetimeParser.parse


def _parse(self: DatetimeParser, date: str | int, format: str) -> datetime:
    shape = _ISO_UTC_SHAPES.get(format)
    if shape is not None and isinstance(date, str) and shape.fullmatch(date):
        try:
            return datetime.fromisoformat(date)
        except ValueError:  # a well-shaped impossible date gets the CDK's error
            pass
    return _cdk_parse(self, date, format)


_cdk_slice_hash = StreamSlice.__hash__


def _slice_hash(self: StreamSlice) -> int:
    # A StreamSlice cannot change after it is built (it refuses item assignment and keeps
    # its own copy of the mapping it hashes), so its hash can be kept.
    cached: int | None = self.__dict__.get("_speedups_hash")
    if cached is None:
        cached = self.__dict__["_speedups_hash"] = _cdk_slice_hash(self)
    return cached


# The body JsonBodyErrorHandler's check parsed, kept on its response for the decoder.
_CHECKED_BODY = "_source_customers_checked_body"
_cdk_json_body = components._json_body
_cdk_json_decode = JsonDecoder.decode


def _json_body_kept(response: requests.Response) -> Any:
    body = _cdk_json_body(response)
    if body is not components.NOT_JSON and body is not None:
        response.__dict__[_CHECKED_BODY] = body
    return body


def _decode(
    self: JsonDecoder, response: requests.Response
) -> Generator[MutableMapping[str, Any], None, None]:
    # Taken, not read: the records are the decoder's caller's to change, and a second
    # decoding of the same response must not see them.
    body = response.__dict__.pop(_CHECKED_BODY, None)
    if body is None:
        yield from _cdk_json_decode(self, response)
        return
    # What JsonDecoder yields for a body its parser has read: a list's items, any other
    # value itself, and one empty record for an empty list.
    items = body if isinstance(body, list) else [body]
    yield from items or [{}]


def install() -> None:
    """Installs the speed-ups, each measured on LOKE's 100,000 customers (`make bench`).

    - ISO-8601 UTC cursor values are parsed with `datetime.fromisoformat` instead of
      `strptime`. The CDK parses every record's cursor value twice (to filter and to advance
      the state), each time with `strptime`, which takes a lock and re-reads the locale: a
      third of the sync's CPU. Strings of any other shape, and every other format, go to the
      CDK's parser unchanged.
    - A stream slice's hash is computed once. The CDK looks each record's slice up in a dict
      to advance the cursor, and hashes the slice by JSON-encoding it, every time: a tenth of
      the sync's CPU.
    - A response's body is parsed once. The not-JSON check of `JsonBodyErrorHandler` parses
      every successful answer, and the CDK's JSON decoder parsed it again for the records:
      the check now keeps the body it parsed on the response, and the decoder takes it.
    """
    DatetimeParser.parse = _parse  # type: ignore[method-assign]
    StreamSlice.__hash__ = _slice_hash  # type: ignore[method-assign]
    components._json_body = _json_body_kept
    JsonDecoder.decode = _decode  # type: ignore[method-assign]
