"""Measured speed-ups of CDK internals, installed by the `source-customers` entry point.

Under the platform's `source-declarative-manifest` runner they are absent, and the
connector is as correct there, only slower. Each one is checked against the CDK's own
behaviour in `unit_tests/test_speedups.py`; `make bench` measures what it buys.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator, MutableMapping
from datetime import datetime
from typing import Any

import orjson
import requests
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type
from airbyte_cdk.sources.connector_state_manager import HashableStreamDescriptor
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.interpolation.jinja import JinjaInterpolation
from airbyte_cdk.sources.types import StreamSlice

from source_customers.components import answers
from source_customers.runtime import hooks

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
_cdk_json_body = answers._json_body
_cdk_json_decode = JsonDecoder.decode


def _json_body_kept(response: requests.Response) -> Any:
    body = _cdk_json_body(response)
    if body is not answers.NOT_JSON and body is not None:
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


_cdk_message_to_string = AirbyteEntrypoint.airbyte_message_to_string
# The fields the fast path knows, which a record message has (the others are None): with
# any other protocol version's fields, every message takes the CDK's path.
_KNOWN_FIELDS = (
    [f.name for f in dataclasses.fields(AirbyteMessage)] == [
        "type", "log", "spec", "connectionStatus", "catalog", "record", "state", "trace",
        "control"]
    and [f.name for f in dataclasses.fields(AirbyteRecordMessage)] == [
        "stream", "data", "emitted_at", "namespace", "meta", "file_reference"])


def _message_to_string(message: AirbyteMessage) -> str:
    # A plain record message is written as the CDK's serializer would dump it (fields in
    # their dataclass order, None fields left out, and so the data's own top-level None
    # values; nested ones kept), without the serializer first copying every record. Any
    # other message, or a record whose data orjson cannot write, takes the CDK's path: its
    # fallbacks and errors are unchanged.
    record: Any = message.record
    if (message.type is Type.RECORD and type(record) is AirbyteRecordMessage and _KNOWN_FIELDS
            and type(record.data) is dict and type(record.stream) is str
            and type(record.emitted_at) is int and record.namespace is None
            and record.meta is None and record.file_reference is None
            and message.log is None and message.spec is None
            and message.connectionStatus is None and message.catalog is None
            and message.state is None and message.trace is None
            and message.control is None):
        data = record.data
        if None in data.values():  # the serializer leaves out the data's own None values
            data = {key: value for key, value in data.items() if value is not None}
        try:
            return orjson.dumps({"type": "RECORD", "record": {
                "stream": record.stream, "data": data,
                "emitted_at": record.emitted_at}}).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return _cdk_message_to_string(message)


_cdk_handle_record_counts = AirbyteEntrypoint.handle_record_counts
_DESCRIPTORS: dict[tuple[str, str | None], HashableStreamDescriptor] = {}


def _handle_record_counts(message: AirbyteMessage,
                          stream_message_count: dict[HashableStreamDescriptor, float]) -> Any:
    # A record's count is kept under its stream's descriptor: one descriptor per stream,
    # kept, instead of a new frozen dataclass built and hashed for every record.
    record = message.record
    if message.type is Type.RECORD and record is not None:
        key = (record.stream, record.namespace)
        descriptor = _DESCRIPTORS.get(key)
        if descriptor is None:
            descriptor = _DESCRIPTORS[key] = HashableStreamDescriptor(
                name=record.stream, namespace=record.namespace)
        stream_message_count[descriptor] += 1.0
        return message
    return _cdk_handle_record_counts(message, stream_message_count)  # type: ignore[arg-type]


_cdk_literal_eval = JinjaInterpolation._literal_eval
# Rendered string and valid types -> what the CDK's _literal_eval made of it. Only answers
# that cannot be changed by whoever receives them are kept (a rendered "[1, 2]" gives a new
# list each time), and the table is emptied when full: it keeps the recent strings.
_LITERALS: dict[tuple[str, Any], Any] = {}
_LITERALS_MOST = 4096
_UNCHANGED = object()  # the answer is the rendered string itself
_MISSING = object()
_IMMUTABLE = (int, float, bool, type(None), str)


def _literal_eval(self: JinjaInterpolation, result: str | None, valid_types: Any) -> Any:
    # Every interpolation's rendered string goes through ast.literal_eval, which compiles it
    # (and raises SyntaxError for a plain ID or date): the same few strings over and over
    # (an AddFields value for each record of a partition, a cursor's start date for each
    # partition). The answer depends on the string and the valid types alone.
    if type(result) is not str:
        return _cdk_literal_eval(self, result, valid_types)
    key = (result, valid_types)
    try:
        known = _LITERALS.get(key, _MISSING)
    except TypeError:  # valid types that cannot be hashed
        return _cdk_literal_eval(self, result, valid_types)
    if known is _UNCHANGED:
        return result
    if known is not _MISSING:
        return known
    value = _cdk_literal_eval(self, result, valid_types)
    if value is result or type(value) in _IMMUTABLE:
        if len(_LITERALS) >= _LITERALS_MOST:
            _LITERALS.clear()
        _LITERALS[key] = _UNCHANGED if value is result else value
    return value


def install() -> None:
    """Installs the speed-ups, each measured by `make bench` (LOKE's 100,000 customers; the
    last one on Malomo's 20,000 customers and their events).

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
    - A record message is written to JSON straight from its record's data, and counted under
      its stream's descriptor, kept: the CDK's serializer copied every record into a new
      dict first, and a new descriptor was built and hashed for every record.
    - What `ast.literal_eval` makes of an interpolation's rendered string is remembered for
      the strings seen last: the CDK compiled every rendered string, for every record an
      AddFields transformation touches and every cursor built for a partition.
    """
    hooks.install(FEATURES)


def _replace(owner: Any, name: str, new: Any, cdk: Any, static: bool = False) -> None:
    new.__wrapped__ = cdk  # the checks of a later install look at the CDK's function
    setattr(owner, name, staticmethod(new) if static else new)


def _install_body_once() -> None:
    _replace(JsonDecoder, "decode", _decode, _cdk_json_decode)
    answers._json_body = _json_body_kept


def _install_record_messages() -> None:
    _replace(_ENTRY, "airbyte_message_to_string", _message_to_string, _cdk_message_to_string,
             static=True)
    _replace(_ENTRY, "handle_record_counts", _handle_record_counts, _cdk_handle_record_counts,
             static=True)


_ENTRY = AirbyteEntrypoint
FEATURES: tuple[hooks.Feature, ...] = (
    hooks.Feature(
        "a speed-up (ISO-8601 cursor values parsed without strptime)",
        (hooks.TouchPoint(DatetimeParser, "parse", ("self", "date", "format")),),
        lambda: _replace(DatetimeParser, "parse", _parse, _cdk_parse),
    ),
    hooks.Feature(
        "a speed-up (a stream slice's hash kept)",
        (hooks.TouchPoint(StreamSlice, "__hash__", ("self",)),),
        lambda: _replace(StreamSlice, "__hash__", _slice_hash, _cdk_slice_hash),
    ),
    hooks.Feature(
        "a speed-up (an answer's body parsed once)",
        (hooks.TouchPoint(JsonDecoder, "decode", ("self", "response")),),
        _install_body_once,
    ),
    hooks.Feature(
        "a speed-up (rendered interpolations remembered)",
        (hooks.TouchPoint(JinjaInterpolation, "_literal_eval", ("self", "result", "valid_types")),),
        lambda: _replace(JinjaInterpolation, "_literal_eval", _literal_eval, _cdk_literal_eval),
    ),
    hooks.Feature(
        "a speed-up (record messages written and counted without copies)",
        (hooks.TouchPoint(_ENTRY, "airbyte_message_to_string", ("airbyte_message",)),
         hooks.TouchPoint(_ENTRY, "handle_record_counts", ("message", "stream_message_count"))),
        _install_record_messages,
    ),
)
