"""Importing the CDK at a command's start, as cheaply as it can be: both commands
(`source-customers`, `destination-customers`) import it this way.

The garbage collector is off while it is imported: the import builds hundreds of thousands
of objects that live as long as the process, and each few hundred of them would set off a
collection scanning them again (an eighth of the import's CPU). The few reference cycles the
import leaves as garbage stay, frozen with the rest (under a MiB of peak memory). The
collector is on again as soon as the import is done.

`requests_cache`, which the CDK imports, imports boto3 for its DynamoDB cache backend
wherever boto3 is installed (beside PyAirbyte's Snowflake connector, or moto): a tenth of a
second of boto3, botocore and pyOpenSSL that neither command uses (the CDK caches in SQLite
or memory). boto3 is kept out while the CDK is imported, and importable again after.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

UNUSED_BY_THE_CDK = ("boto3",)


def imported(load: Callable[[], T]) -> T:
    """What `load` imports and returns, imported with the collector off, the CDK's message
    serializers built lazily, and everything imported frozen out of the collector's reach."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from source_customers import serializer_schemas

        # Before the CDK is imported: it builds its message serializers at import time.
        serializer_schemas.defer()
        loaded = _without(UNUSED_BY_THE_CDK, load)
        # The CDK, imported by now, lives as long as the process: out of the garbage
        # collector's reach, it is not scanned again by every collection.
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return loaded


def _without(modules: tuple[str, ...], load: Callable[[], T]) -> T:
    """What `load` imports, with `modules` unimportable meanwhile (their importers take an
    ImportError, as if they were not installed). Should `load` itself need one of them, it
    is loaded again with them."""
    kept_out = [name for name in modules if name not in sys.modules]
    for name in kept_out:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        return load()
    except ImportError as error:
        if error.name not in kept_out:
            raise
    finally:
        for name in kept_out:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return load()
