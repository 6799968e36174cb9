"""The bench's write cases: `destination-customers write` into the Malomo and Capillary sandboxes.

Each case builds its input rows as Airbyte RECORD and STATE lines in a file, seeds a fresh
sandbox per tool, and streams the file into the tool's stdin (through spawn.py, for its own
peak RSS). What the tools did is checked by the vendor's end state, not by their output:
every row applied once, no duplicate e-mail, the last row for a key the one that holds.

- `malomo-write-10k`: Malomo `append_dedup` by e-mail of 10,000 rows (70% existing customers
  changed, 30% new) at 20 ms a request, the destination (10 workers) against a plain loop
  with as many threads (`python -m bench.write_baseline CONFIG ROWS 10`: list the
  customers once, then one PUT or POST per row, from a ThreadPoolExecutor of 10; its own
  module, bench/write_baseline.py, imports nothing but `requests`, as a hand-written script).
- `malomo-write-workers`: the same at 2,000 rows, both tools at each of WORKERS_SWEPT
  workers: the figures the default `num_workers` is chosen from.
- `malomo-write-mem-10k`, `-100k`, `-1m`: the destination alone, no latency, 10,000 to
  1,000,000 rows going round the same 1,000 customers (every tenth round a change, the
  others repeating what the customer holds): its peak RSS must not grow with the input.
- `capillary-write-paced`: Capillary `update` by mobile, 300 rows with `requests_per_minute`
  at two thirds of the rows (200), the sandbox answering 429 past that many requests in any
  60 s: the highest count of requests in any 60 s must stay within the budget, with no 429.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_tests.sandbox import capillary, malomo, start
from integration_tests.sandbox.server import VendorApi
from source_customers.destination.objects import DESTINATION_PROPERTIES

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SPAWN = ROOT / "bench" / "spawn.py"
DESTINATION = shutil.which("destination-customers", path=str(Path(sys.executable).parent)) \
    or "destination-customers"
STATE_EVERY = 1000  # a STATE line after every this many rows
MALOMO_WORKERS = 10  # the destination's num_workers in the Malomo cases (its default; most 20)


class WriteFailed(Exception):
    """A tool failed, or the vendor's end state is not what the rows say."""


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


def activation(mode: str, key: str) -> dict[str, Any]:
    return {"streams": [{
        "stream": {"name": "segment", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": mode,
        "destination_object_name": "customers", "primary_key": [[key]]}]}


def write_input(path: Path, rows: Any) -> int:
    """RECORD lines, a STATE after every STATE_EVERY and at the end; the number of rows."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for n, row in enumerate(rows, 1):
            out.write(json.dumps({"type": "RECORD", "record": {
                "stream": "segment", "data": row, "emitted_at": 1}}) + "\n")
            if n % STATE_EVERY == 0:
                out.write(json.dumps(_state(n)) + "\n")
        if n % STATE_EVERY:
            out.write(json.dumps(_state(n)) + "\n")
    return n


def _state(n: int) -> dict[str, Any]:
    return {"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": "segment"}, "stream_state": {"n": n}}}}


def measure(args: list[str], stdin: Path, folder: Path, name: str,
            cwd: Path | None = None) -> tuple[float, float, Path]:
    """Runs `args` with `stdin` streamed in: wall seconds, peak RSS (MiB), its stdout."""
    stdout, stderr = folder / f"{name}.jsonl", folder / f"{name}.stderr"
    usage = folder / f"{name}.usage.json"
    usage.unlink(missing_ok=True)
    with stdin.open("rb") as in_, stdout.open("wb") as out, stderr.open("wb") as err:
        subprocess.run([sys.executable, "-S", str(SPAWN), str(usage), *args], stdin=in_,
                       stdout=out, stderr=err, cwd=cwd or folder, check=False)
    if not usage.exists():
        raise WriteFailed(f"{name} could not be started: {stderr.read_text(errors='replace')}")
    measured = json.loads(usage.read_text())
    if measured["exit"]:
        tail = stderr.read_text(errors="replace")[-2000:]
        raise WriteFailed(f"{name} exited with {measured['exit']}; stderr ends:\n{tail}")
    return measured["wall_s"], measured["peak_rss_kib"] / 1024, stdout


def check_destination_output(stdout: Path, rows: int) -> None:
    """No error trace; the last STATE echoed counts every row's epoch, none rejected."""
    states, rejected, recorded = 0, 0.0, 0.0
    with stdout.open("rb") as lines:
        for line in lines:
            if not line.startswith(b"{"):
                continue
            message = json.loads(line)
            if message.get("type") == "TRACE" and message["trace"].get("type") == "ERROR":
                raise WriteFailed(f"destination error: {message['trace']['error']['message']}")
            if message.get("type") == "STATE":
                states += 1
                stats = message["state"].get("destinationStats", {})
                recorded += stats.get("recordCount", 0)
                rejected += stats.get("rejectedRecordCount", 0)
    if states != -(-rows // STATE_EVERY) or recorded != rows or rejected:
        raise WriteFailed(f"destination echoed {states} STATEs counting {recorded:g} records, "
                          f"{rejected:g} rejected, for {rows} rows")


def _timed(api: VendorApi) -> list[tuple[float, str, int]]:
    """Records (arrival time, path, status) of every request the sandbox receives."""
    seen: list[tuple[float, str, int]] = []
    handle = api.handle

    def timed(request: Any) -> Any:
        arrived = time.monotonic()
        response = handle(request)
        seen.append((arrived, request.path, response.status))
        return response
    api.handle = timed  # type: ignore[method-assign]
    return seen


# --- Malomo ------------------------------------------------------------------------------
def malomo_rows(api: malomo.Api, count: int) -> list[dict[str, Any]]:
    """70% existing customers (with an e-mail) changed, 30% new addresses, interleaved."""
    existing = [c for c in api.customers if c.get("email")]
    rows, used = [], 0
    for n in range(count):
        if n % 10 < 7 and used < len(existing):
            customer = existing[used]
            used += 1
            rows.append({"email": customer["email"], "first_name": f"Changed{n}",
                         "last_name": customer.get("last_name")})
        else:
            rows.append({"email": f"new.customer.{n}@bench.example.com", "first_name": "New",
                         "last_name": f"Row{n}"})
    return rows


def verify_malomo(api: malomo.Api, rows: list[dict[str, Any]],
                  before: dict[str, dict[str, Any]]) -> None:
    """Every row applied once: a POST per new address, a PUT per row that changes what its
    customer holds at that point of the input (and none for a row that changes nothing),
    every customer holding its last row's values, no duplicate e-mail. `before`: the
    customers as seeded, by case-folded e-mail."""
    by_email: dict[str, list[dict[str, Any]]] = {}
    for c in api.customers:
        if c.get("email"):
            by_email.setdefault(c["email"].casefold(), []).append(c)
    duplicated = [e for e, found in by_email.items() if len(found) > 1]
    held = {e: dict(c) for e, c in before.items()}  # what the vendor holds, row by row
    changed: Counter[str] = Counter()
    new: set[str] = set()
    for row in rows:
        e = row["email"].casefold()
        wanted = {k: v for k, v in row.items() if v is not None}
        current = held.get(e)
        if current is None:
            new.add(e)
            held[e] = wanted
        elif any(current.get(k) != v for k, v in wanted.items()):
            changed[e] += 1
            current.update(wanted)
    problems = []
    if duplicated:
        problems.append(f"{len(duplicated)} e-mails held by more than one customer")
    wrong = [e for e, want in held.items() if len(by_email.get(e, [])) != 1 or any(
        by_email[e][0].get(k) != v for k, v in want.items() if k in ("email", "first_name",
                                                                    "last_name"))]
    if wrong:
        problems.append(f"{len(wrong)} customers not as the rows leave them (e.g. {wrong[0]})")
    if sorted(api.created) != sorted(by_email[e][0]["id"] for e in new if e in by_email) \
            or len(api.created) != len(new):
        problems.append(f"{len(api.created)} customers created for {len(new)} new addresses")
    puts = Counter(cid for method, cid in api.writes if method == "PUT")
    expected_puts = Counter({by_email[e][0]["id"]: n for e, n in changed.items()
                             if e in by_email})
    if puts != expected_puts:
        problems.append(f"{sum(puts.values())} updates for "
                        f"{sum(changed.values())} rows changing an existing customer")
    if api.deleted:
        problems.append(f"{len(api.deleted)} customers deleted")
    if problems:
        raise WriteFailed("; ".join(problems))


@dataclass
class Measured:
    tool: str
    wall_s: float
    records: int
    peak_rss_mib: float
    workers: int | None = None
    extra: dict[str, Any] | None = None
    rounds_s: tuple[float, ...] = ()  # every round's wall time (wall_s is their median)
    case: str | None = None  # when a case measures several (the workers sweep): which


def malomo_case(folder: Path, customers: int, count: int, latency_ms: float,
                tools: tuple[str, ...],
                rows_of: Callable[[malomo.Api, int], list[dict[str, Any]]],
                workers: int = MALOMO_WORKERS, rounds: int = 1,
                case: str | None = None) -> list[Measured]:
    """Each tool `rounds` times, alternating (connector, baseline, connector, ...), so that
    a change in the machine's load falls on both; a fresh sandbox per run."""
    walls: dict[str, list[float]] = {tool: [] for tool in tools}
    peaks: dict[str, float] = {}
    n = 0
    for round_ in range(1, rounds + 1):
        for tool in tools:
            api = malomo.Api(customers=customers)
            rows = rows_of(api, count)
            before = {c["email"].casefold(): {k: c.get(k) for k in
                                              ("email", "first_name", "last_name")}
                      for c in api.customers if c.get("email")}
            stdin = folder / "input.jsonl"
            n = write_input(stdin, rows)
            server = start(api)
            try:
                config = {**malomo.config(server.url), "num_workers": workers}
                (folder / "config.json").write_text(json.dumps(config))
                (folder / "catalog.json").write_text(
                    json.dumps(activation("append_dedup", "email")))
                if tool == "baseline":
                    (folder / "rows.jsonl").write_text(
                        "".join(json.dumps(r) + "\n" for r in rows))
                api.latency = latency_ms / 1000
                if tool == "connector":
                    args = [DESTINATION, "write", "--config", "config.json",
                            "--catalog", "catalog.json"]
                else:
                    args = [sys.executable, "-m", "bench.write_baseline",
                            str(folder / "config.json"), str(folder / "rows.jsonl"),
                            str(workers)]
                wall, rss, stdout = measure(args, stdin, folder, tool,
                                            None if tool == "connector" else ROOT)
                api.latency = 0
            finally:
                server.stop()
            if tool == "connector":
                check_destination_output(stdout, n)
            verify_malomo(api, rows, before)
            walls[tool].append(wall)
            peaks[tool] = max(peaks.get(tool, 0.0), rss)
            of = f" (round {round_} of {rounds})" if rounds > 1 else ""
            print(f"  {tool}, {workers} workers: {n:,} rows in {wall:.2f} s, peak RSS "
                  f"{rss:.0f} MiB ({len(api.created):,} created, {len(api.updated):,} updated; "
                  f"end state checked){of}", flush=True)
    return [Measured(tool, statistics.median(walls[tool]), n, peaks[tool], workers,
                     rounds_s=tuple(walls[tool]), case=case) for tool in tools]


def cycling_rows(api: malomo.Api, count: int) -> list[dict[str, Any]]:
    """`count` rows going round the sandbox's customers with an e-mail: every tenth round
    changes each customer's first name, the other rounds repeat what it holds (nothing to
    send). Memory per input row, a request per tenth row: a million rows in minutes."""
    existing = [c for c in api.customers if c.get("email")]
    rows = []
    for n in range(count):
        customer = existing[n % len(existing)]
        round_ = n // len(existing)
        rows.append({"email": customer["email"], "first_name": f"Round{round_ - round_ % 10}"})
    return rows


# --- Capillary ---------------------------------------------------------------------------
def capillary_case(folder: Path, count: int, latency_ms: float) -> list[Measured]:
    budget = max(1, count * 2 // 3)  # requests a minute: the rows overrun one window
    api = capillary.Api(customers=count + 50, per_window=budget, rate_window=60.0)
    mobiles, seen_mobiles = [], set()
    for c in api.customers:
        m = capillary.Api.identifier(c, "mobile")
        if m and m not in seen_mobiles and api.find("mobile", m) is c:
            seen_mobiles.add(m)
            mobiles.append(m)
    mobiles = mobiles[:count]
    rows = [{"mobile": m, "firstName": f"Paced{n}"} for n, m in enumerate(mobiles)]
    stdin = folder / "input.jsonl"
    n = write_input(stdin, rows)
    seen = _timed(api)
    server = start(api)
    try:
        config = {**capillary.config(server.url), "requests_per_minute": budget}
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "catalog.json").write_text(json.dumps(activation("update", "mobile")))
        api.latency = latency_ms / 1000
        wall, rss, stdout = measure([DESTINATION, "write", "--config", "config.json",
                                     "--catalog", "catalog.json"], stdin, folder, "connector")
        api.latency = 0
    finally:
        server.stop()
    check_destination_output(stdout, n)
    wrong = [m for m, row in zip(mobiles, rows, strict=True)
             if (found := api.find("mobile", m)) is None
             or found["profiles"][0].get("firstName") != row["firstName"]]
    if wrong or len(api.updates) != n or api.added or api.merges:
        raise WriteFailed(f"{len(wrong)} rows not applied; {len(api.updates)} updates for {n} "
                          f"rows, {len(api.added)} added, {len(api.merges)} merges")
    times = sorted(t for t, path, _ in seen if path != "/v3/oauth/token/generate")
    refused = sum(1 for _, _, status in seen if status == 429)
    most = max(sum(1 for u in times[i:] if u < t + 60) for i, t in enumerate(times))
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_minute = (len(times) - 1) / span * 60 if span else float("inf")
    # The sandbox answers 429 to a request past `budget` in the 60 s before it arrived (the
    # destination retries it): the strict test is that none was needed.
    extra = {"requests": len(times), "requests_per_minute": budget,
             "most_in_60s": most, "achieved_per_minute": round(per_minute, 1),
             "refused_429": refused,
             # the shortest time between a request and the one `budget` after it (60 s: paced)
             "shortest_window_s": round(min((times[i + budget] - times[i]
                                             for i in range(len(times) - budget)),
                                            default=0.0), 3)}
    print(f"  connector: {n:,} rows in {wall:.2f} s, peak RSS {rss:.0f} MiB; {len(times)} "
          f"requests, at most {most} in any 60 s (budget {budget}), {per_minute:.0f} a minute "
          f"from first to last; {refused} answered 429 (and retried); shortest {budget + 1} "
          f"requests' span {extra['shortest_window_s']} s", flush=True)
    workers = DESTINATION_PROPERTIES["num_workers"]["default"]  # the config leaves it unset
    return [Measured("connector", wall, n, rss, workers, extra)]


# --- the cases ---------------------------------------------------------------------------
WORKERS_SWEPT = (1, 4, 10, 16, 20)  # num_workers: 1, the spec's most (20), between


def run(name: str, scale: float, latency_ms: float, rounds: int = 1) -> list[Measured]:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    if name == "malomo-write-10k":
        count = scaled(10_000, scale)
        return malomo_case(folder, count, count, latency_ms, ("connector", "baseline"),
                           malomo_rows, rounds=rounds)
    if name == "malomo-write-workers":
        count = scaled(2_000, scale)
        return [m for workers in WORKERS_SWEPT for m in malomo_case(
            folder, count, count, latency_ms, ("connector", "baseline"), malomo_rows,
            workers=workers, rounds=rounds, case=f"{name}-{workers}")]
    if name.startswith("malomo-write-mem-"):
        size = name.removeprefix("malomo-write-mem-")
        count = scaled({"10k": 10_000, "100k": 100_000, "1m": 1_000_000}[size], scale)
        return malomo_case(folder, 1_000, count, latency_ms, ("connector",), cycling_rows,
                           rounds=rounds)
    if name == "capillary-write-paced":
        return capillary_case(folder, scaled(300, scale), latency_ms)
    raise ValueError(name)
