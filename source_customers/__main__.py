"""The `source-customers` command, also run as `python -m source_customers`."""

from __future__ import annotations

import gc
import sys

from source_customers import serializer_schemas


def run() -> None:
    # Before the CDK is imported: it builds its message serializers at import time.
    serializer_schemas.defer()
    from source_customers.run import main

    # The CDK, imported by now, lives as long as the process: out of the garbage
    # collector's reach, it is not scanned again by every collection during a sync.
    gc.freeze()
    # One thread turns records into messages while others fetch them. Python hands the
    # interpreter between busy threads every 5 ms; every 20 ms makes a paged stream a tenth
    # faster and delays no request that a child stream waits on.
    sys.setswitchinterval(0.02)
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
