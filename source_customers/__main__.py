"""The `source-customers` command, also run as `python -m source_customers`."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence

# `spec` as the platform runs it: answered from the manifests alone (vendors.spec_message),
# without importing the CDK, which is most of every other command's start-up. Any other
# form of `spec` (-h, unknown options) takes the CDK's path and gets the CDK's answer.
FAST_SPEC = (["spec"], ["spec", "--debug"])


def _import_main() -> Callable[[Sequence[str]], int]:
    """Imports the CDK and the connector: `source_customers.run.main`.

    The garbage collector is off while they are imported: the import builds hundreds of
    thousands of objects that live as long as the process, and each few hundred of them
    would set off a collection scanning them again (an eighth of the import's CPU). The
    few reference cycles the import leaves as garbage stay, frozen with the rest (under a
    MiB of peak memory). The collector is on again as soon as the import is done.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from source_customers import serializer_schemas

        # Before the CDK is imported: it builds its message serializers at import time.
        serializer_schemas.defer()
        from source_customers.run import main

        # The CDK, imported by now, lives as long as the process: out of the garbage
        # collector's reach, it is not scanned again by every collection during a sync.
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return main


def run() -> None:
    args = sys.argv[1:]
    if args in FAST_SPEC:
        from source_customers.vendors import spec_message

        print(spec_message(), flush=True)
        sys.exit(0)
    main = _import_main()
    # One thread turns records into messages while others fetch them. Python hands the
    # interpreter between busy threads every 5 ms; every 20 ms makes a paged stream a tenth
    # faster and delays no request that a child stream waits on.
    sys.setswitchinterval(0.02)
    sys.exit(main(args))


if __name__ == "__main__":
    run()
