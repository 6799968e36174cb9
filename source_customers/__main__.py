"""The `source-customers` command, also run as `python -m source_customers`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

# `spec` as the platform runs it: answered from the manifests alone (vendors.spec_message),
# without importing the CDK, which is most of every other command's start-up. Any other
# form of `spec` (-h, unknown options) takes the CDK's path and gets the CDK's answer.
FAST_SPEC = (["spec"], ["spec", "--debug"])


def _import_main() -> Callable[[Sequence[str]], int]:
    """Imports the CDK and the connector (`source_customers.run.main`), as
    `source_customers/startup.py` says."""
    from source_customers.startup import imported

    def load() -> Callable[[Sequence[str]], int]:
        from source_customers.run import main

        return main

    return imported(load)


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
