"""Importing the CDK at a command's start, as cheaply as it can be: both commands
(`source-customers`, `destination-customers`) import it this way.

The garbage collector is off while it is imported: the import builds hundreds of thousands
of objects that live as long as the process, and each few hundred of them would set off a
collection scanning them again (an eighth of the import's CPU). The few reference cycles the
import leaves as garbage stay, frozen with the rest (under a MiB of peak memory). The
collector is on again as soon as the import is done.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def imported(load: Callable[[], T]) -> T:
    """What `load` imports and returns, imported with the collector off, the CDK's message
    serializers built lazily, and everything imported frozen out of the collector's reach."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from source_customers import serializer_schemas

        # Before the CDK is imported: it builds its message serializers at import time.
        serializer_schemas.defer()
        loaded = load()
        # The CDK, imported by now, lives as long as the process: out of the garbage
        # collector's reach, it is not scanned again by every collection.
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return loaded
