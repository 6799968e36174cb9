"""Defers the JSON schemas of the CDK's message serializers until something asks for one.

`airbyte_cdk.models` builds eight `serpyco_rs.Serializer`s when it is imported, and each
builds the JSON schema of its message type at once, reading the source of every protocol
dataclass to document its fields: 0.4 s of every command's start (`make bench`), for
schemas that neither the CDK nor this connector reads. Serializing is untouched; a
serializer's `get_json_schema()` returns the same schema, built on first use.

The fields' docs, read from each dataclass's source (`inspect.getsource` and `ast`), go
into the schema only: a serializer's type is described without them (a twelfth of the
CDK's import), and described again, with them, when its schema is first asked for.

Must run before anything imports `airbyte_cdk` (so this module imports neither it nor
anything of this package that does). It is installed by the CLI only; if serpyco-rs no
longer has the internals it relies on, it does nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from serpyco_rs import _describe
from serpyco_rs import _main as serpyco


class _Deferred:
    """What a serializer holds as its schema until the schema is asked for."""

    __slots__ = ("resolver", "type", "type_info")

    def __init__(self, type_info: Any, described: tuple[Any, Any] | None) -> None:
        self.type_info = type_info
        # The type and custom resolver it was described from, without its fields' docs.
        self.type: Any = described[0] if described else _NOT_DESCRIBED
        self.resolver: Any = described[1] if described else None


_NOT_DESCRIBED = object()
_build_schema = getattr(serpyco, "get_json_schema", None)
_describe_type = getattr(serpyco, "describe_type", None)
_attributes_doc = getattr(_describe, "get_attributes_doc", None)
# Per thread: whether a serializer is being described (its fields' docs are left out), and
# the type and resolver last described so, for the schema built later.
_state = threading.local()


def _docs_unless_for_a_serializer(t: Any) -> Any:
    # The docs of a dataclass's fields (serpyco reads each class's source and parses it)
    # go into the JSON schema only, which is built later, from a description with them.
    if getattr(_state, "quiet", False):
        return {}
    assert _attributes_doc is not None
    return _attributes_doc(t)


def _describe_for_serializer(t: Any, meta: Any = None,
                             custom_type_resolver: Any = None) -> Any:
    assert _describe_type is not None
    _state.quiet = True
    try:
        info = _describe_type(t, meta, custom_type_resolver)
    finally:
        _state.quiet = False
    _state.last = (info, (t, custom_type_resolver) if meta is None else None)
    return info


def _defer_schema(type_info: Any) -> _Deferred:
    last = getattr(_state, "last", None)
    _state.last = None
    described = last[1] if last is not None and last[0] is type_info else None
    return _Deferred(type_info, described)


def _schema_on_first_use(self: serpyco.Serializer[Any, Any]) -> dict[str, Any]:
    schema = self.__dict__["_schema"]
    if isinstance(schema, _Deferred):
        assert _build_schema is not None and _describe_type is not None
        info = schema.type_info
        if schema.type is not _NOT_DESCRIBED:  # described again, with the fields' docs
            info = _describe_type(schema.type, None, schema.resolver)
        schema = self.__dict__["_schema"] = _build_schema(info)
    return schema  # type: ignore[no-any-return]


def defer() -> None:
    """Serializers built from now on build their JSON schema when it is first asked for."""
    serializer = getattr(serpyco, "Serializer", None)
    if _build_schema is None or not hasattr(serializer, "get_json_schema"):
        return
    serpyco.get_json_schema = _defer_schema  # type: ignore[assignment]
    serializer.get_json_schema = _schema_on_first_use  # type: ignore[union-attr]
    if _describe_type is not None and _attributes_doc is not None:
        serpyco.describe_type = _describe_for_serializer
        _describe.get_attributes_doc = _docs_unless_for_a_serializer  # type: ignore[assignment]
