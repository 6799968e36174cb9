"""The plain loop the destination is measured against: Malomo `append_dedup` by e-mail with
`requests` and a thread pool, the best a hand-written peer would do.

    python -m bench.write_baseline CONFIG ROWS [WORKERS]

It imports nothing but `requests` and the standard library, as such a script would: its
start-up is part of what is measured. (It was a function of bench/writes.py, whose imports,
the CDK among them, added a second to the loop's start.)
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ACCEPT = "application/vnd.malomo+json; version=2"  # Malomo's version header


def baseline(config_path: str, rows_path: str, workers: int = 1) -> None:
    """List every customer once, then per row PUT the customer its address names (when a
    field differs) or POST a new one; with `workers` threads, the rows are handed to a
    ThreadPoolExecutor of that many, each thread with its own `requests` session. Rows are
    sent in any order, so every address must be in one row only (the bench's are)."""
    config = json.loads(Path(config_path).read_text())
    base = config["base_url"].rstrip("/")
    headers = {"Authorization": f"Bearer {config['api_key']}", "Accept": ACCEPT}
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(headers)
        return local.session  # type: ignore[no-any-return]

    by_email: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        response = session().get(f"{base}/customers",
                                 params={"next": after} if after else None, timeout=60)
        response.raise_for_status()
        page = response.json()
        if not page:
            break
        for customer in page:
            if customer.get("email"):
                by_email.setdefault(customer["email"].casefold(), customer)
        after = page[-1]["id"]

    def apply(line: str) -> None:
        row = {k: v for k, v in json.loads(line).items() if v is not None}
        key = row["email"].casefold()
        customer = by_email.get(key)
        if customer is None:
            response = session().post(f"{base}/customers", json=row, timeout=60)
            response.raise_for_status()
            by_email[key] = response.json()
        elif any(customer.get(k) != v for k, v in row.items()):
            response = session().put(f"{base}/customers/{customer['id']}", json=row,
                                     timeout=60)
            response.raise_for_status()
            by_email[key] = response.json()

    with open(rows_path, encoding="utf-8") as rows:
        lines = rows.readlines()
    if workers > 1:
        keys = [json.loads(line)["email"].casefold() for line in lines]
        if len(set(keys)) != len(keys):
            sys.exit("the threaded loop needs one row per address")
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(apply, lines):
                pass
    else:
        for line in lines:
            apply(line)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m bench.write_baseline CONFIG ROWS [WORKERS]")
    baseline(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 1)
