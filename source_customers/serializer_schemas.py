"""Defers the JSON schemas of the CDK's message serializers until something asks for one.

`airbyte_cdk.models` builds eight `serpyco_rs.Serializer`s when it is imported, and each
builds the JSON schema of its message type at once, reading the source of every protocol
dataclass to document its fields: 0.4 s of every command's start (`make bench`), for
schemas that neither the CDK nor this connector reads. Serializing is untouched; a
serializer's `get_json_schema()` returns the same schema, built on first use.

Must run before anything imports `airbyte_cdk` (so this module imports neither it nor
anything of this package that does). It is installed by the CLI only; if serpyco-rs no
longer has the internals it relies on, it does nothing.
"""

from __future__ import annotations

from typing import Any

from serpyco_rs import _main as serpyco


class _Deferred:
    """What a serializer holds as its schema until the schema is asked for."""

    __slots__ = ("type_info",)

    def __init__(self, type_info: Any) -> None:
        self.type_info = type_info


_build_schema = getattr(serpyco, "get_json_schema", None)


def _defer_schema(type_info: Any) -> _Deferred:
    return _Deferred(type_info)


def _schema_on_first_use(self: serpyco.Serializer[Any, Any]) -> dict[str, Any]:
    schema = self.__dict__["_schema"]
    if isinstance(schema, _Deferred):
        assert _build_schema is not None
        schema = self.__dict__["_schema"] = _build_schema(schema.type_info)
    return schema  # type: ignore[no-any-return]


def defer() -> None:
    """Serializers built from now on build their JSON schema when it is first asked for."""
    serializer = getattr(serpyco, "Serializer", None)
    if _build_schema is None or not hasattr(serializer, "get_json_schema"):
        return
    serpyco.get_json_schema = _defer_schema  # type: ignore[assignment]
    serializer.get_json_schema = _schema_on_first_use  # type: ignore[union-attr]
