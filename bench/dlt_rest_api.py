"""The peer a data engineer would configure instead: dlt's `rest_api` source, on LOKE.

    python -m bench.dlt_rest_api CONFIG WORKERS STREAM...

Reads the streams named with the same connector config, declared the way dlt's documentation
declares a REST API (a `RESTAPIConfig` dict), and writes one JSON line per record,
`{"stream", "data"}`, like the baseline: the records are dlt's, iterated from the source
(`for item in source`, no pipeline, no destination), so what is measured is fetching and
paging, not loading. A child stream is a dependent resource (`{resources.customers.id}`),
`parallelized` over WORKERS threads (dlt's `extract.workers`), as many as the connector's.

LOKE only (the bench's paged and child cases). dlt is not a dependency of the connector:
it comes with the `bench` extra (`pip install ".[bench]"`, which `make bench` does).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# dlt reads its settings from the environment when the source is iterated. No telemetry:
# the bench talks to 127.0.0.1 only.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import orjson
from dlt.sources.helpers.rest_client.paginators import BaseNextUrlPaginator
from dlt.sources.rest_api import rest_api_source
from requests import Response


class NextPageHeader(BaseNextUrlPaginator):
    """LOKE's paging: the next page's absolute URL or absolute path in `X-Next-Page`.

    dlt ships no paginator for a next link in a header of its own name (HeaderLinkPaginator
    reads RFC 8288 `Link`): its documentation's answer is a subclass like this one, whose
    base class resolves a path against the request's URL.
    """

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self._next_reference = response.headers.get("X-Next-Page") or None


def loke_source(config: dict[str, Any], streams: set[str]) -> Any:
    base = (config.get("base_url") or "https://api.loke.global").rstrip("/")
    customers_path = f"/organizations/{config['organization_id']}/customers"
    source = rest_api_source({
        "client": {
            "base_url": base,
            "auth": {"type": "bearer", "token": config["credentials"]["access_token"]},
        },
        "resource_defaults": {"write_disposition": "append"},
        "resources": [
            {
                "name": "customers",
                "endpoint": {"path": customers_path, "params": {"sort": "updated"},
                             "paginator": NextPageHeader()},
            },
            {
                "name": "customer_memberships",
                "parallelized": True,
                "include_from_parent": ["id"],
                "endpoint": {
                    "path": customers_path + "/{resources.customers.id}/memberships",
                    "paginator": NextPageHeader(),
                },
            },
        ],
    })
    return source.with_resources(*sorted(streams))


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit("usage: python -m bench.dlt_rest_api CONFIG WORKERS STREAM...")
    with open(argv[0], encoding="utf-8") as file:
        config = json.load(file)
    if config["vendor"] != "loke":
        sys.exit("bench.dlt_rest_api: LOKE only")
    os.environ["EXTRACT__WORKERS"] = str(int(argv[1]))
    out = sys.stdout.buffer
    source = loke_source(config, set(argv[2:]))
    for item in source:
        # dlt gives each item its resource's name in the item's metadata only on a pipeline;
        # here a membership is told by the parent's id dlt adds (include_from_parent).
        parent = item.pop("_customers_id", None)
        if parent is None:
            out.write(b'{"stream":"customers","data":' + orjson.dumps(item) + b"}\n")
        else:
            record = {**item, "customerId": parent}
            out.write(b'{"stream":"customer_memberships","data":' + orjson.dumps(record)
                      + b"}\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
