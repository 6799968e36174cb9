"""`python -m bench`: each case's sandbox, read by the connector, the plain baseline and dlt.

The tools run as subprocesses, one after the other, against the same sandbox (served by this
process, on threads): the connector, the plain baseline, and for the LOKE paged and child
cases dlt's rest_api source (when the `bench` extra is installed). For each: wall time,
records per second and peak RSS; every record set is checked against the sandbox's own keys,
so a fast wrong answer fails loudly. The start-up case times `spec` and `check` against
Python's own start-up instead. The table and the targets are printed; each run is appended
to a JSON-lines file for comparing changes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString

from bench import writes
from bench.cases import CASES, Case, Key, key_of
from integration_tests.cli import EXECUTABLE, catalog_for, run
from integration_tests.sandbox import start
from source_customers.vendors import load_manifest

ROOT = Path(__file__).resolve().parent.parent
# dlt, the peer, comes with the `bench` extra (`make bench` installs it).
DLT_INSTALLED = importlib.util.find_spec("dlt") is not None
OUT = ROOT / "bench" / "out"  # configs and both tools' output, per case (not committed)
SPAWN = ROOT / "bench" / "spawn.py"


@dataclass
class Run:
    case: str
    tool: str  # "connector", "baseline" or "dlt"; for the start-up case "python", "spec", "check"
    latency_ms: float
    wall_s: float  # the median of its rounds
    records: int
    peak_rss_mib: float  # the highest of its rounds
    workers: int | None = None  # the connector's configured workers
    load: float = 0.0  # the machine's 1-minute load average when the case began: others' work
    rounds_s: tuple[float, ...] = ()  # every round's wall time, in the order run
    multiple: float | None = None  # start-up case: wall time over python's, round by round
    extra: dict[str, Any] | None = None  # write cases: what else was measured (pacing)

    @property
    def records_per_s(self) -> float:
        return self.records / self.wall_s if self.wall_s else 0.0


class CaseFailed(Exception):
    """A tool failed, or read other records than the sandbox holds."""


def measure(args: list[str], folder: Path, name: str, cwd: Path) -> tuple[float, float, Path]:
    """Runs `args` with stdout to `folder/name.jsonl`: wall seconds, peak RSS (MiB), stdout."""
    stdout, stderr = folder / f"{name}.jsonl", folder / f"{name}.stderr"
    usage = folder / f"{name}.usage.json"
    usage.unlink(missing_ok=True)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        # Through spawn.py, a small parent: started from this big process, the tool's peak
        # RSS would include ours (see spawn.py).
        subprocess.run([sys.executable, "-S", str(SPAWN), str(usage), *args],
                       stdout=out, stderr=err, cwd=cwd, check=False)
    if not usage.exists():
        raise CaseFailed(f"{name} could not be started: {stderr.read_text(errors='replace')}")
    measured = json.loads(usage.read_text())
    if measured["exit"]:
        tail = stderr.read_text(errors="replace")[-2000:]
        raise CaseFailed(f"{name} exited with {measured['exit']}; stderr ends:\n{tail}")
    return measured["wall_s"], measured["peak_rss_kib"] / 1024, stdout


def read_keys(path: Path, vendor: str, connector: bool) -> dict[str, list[Key]]:
    """Each stream's primary keys, in the order read; for the connector, its errors fail."""
    keys: dict[str, list[Key]] = defaultdict(list)
    with path.open("rb") as lines:
        for line in lines:
            if not line.startswith(b"{"):
                continue
            message = orjson.loads(line)
            if not connector:
                keys[message["stream"]].append(key_of(vendor, message["stream"], message["data"]))
            elif message.get("type") == "RECORD":
                record = message["record"]
                keys[record["stream"]].append(key_of(vendor, record["stream"], record["data"]))
            elif message.get("type") == "TRACE" and message["trace"].get("type") == "ERROR":
                raise CaseFailed(f"connector error: {message['trace']['error']['message']}")
    return keys


def check(tool: str, got: Mapping[str, Sequence[Key]],
          expected: Mapping[str, Sequence[Key]]) -> int:
    """The number of records read, when they are exactly the sandbox's; else CaseFailed."""
    problems = []
    for stream in sorted(got.keys() | expected.keys()):
        have, want = Counter(got.get(stream, [])), Counter(expected.get(stream, []))
        if have != want:
            missing, extra = sum((want - have).values()), sum((have - want).values())
            problems.append(f"{tool} read {sum(have.values())} {stream} records, the sandbox "
                            f"holds {sum(want.values())}: {missing} missing, "
                            f"{extra} extra or duplicated")
    if problems:
        raise CaseFailed("; ".join(problems))
    return sum(len(keys) for keys in got.values())


def workers(vendor: str, config: dict[str, Any]) -> int:
    """The connector's worker threads for this config, as its manifest resolves them."""
    level = load_manifest(vendor)["concurrency_level"]
    default = InterpolatedString.create(str(level["default_concurrency"]), parameters={})
    return min(int(default.eval(config)), int(level.get("max_concurrency") or 10**6))


def write_case(case: Case, scale: float, latency_ms: float, rounds: int) -> list[Run]:
    """A write case (bench/writes.py): each tool `rounds` times, its end state checked."""
    print(f"\n{case.name}: {case.about}", flush=True)
    load = os.getloadavg()[0]
    print(f"  scale {scale:g}; latency {latency_ms:g} ms; load average {load:.1f}", flush=True)
    try:
        measured = writes.run(case.name, scale, latency_ms, rounds)
    except writes.WriteFailed as error:
        raise CaseFailed(str(error)) from error
    return [Run(m.case or case.name, m.tool, latency_ms, m.wall_s, m.records, m.peak_rss_mib,
                m.workers, load, m.rounds_s or (m.wall_s,), extra=m.extra) for m in measured]


def run_case(case: Case, scale: float, latency_ms: float, rounds: int) -> list[Run]:
    if case.kind == "write":
        return write_case(case, scale, latency_ms, rounds)
    folder = OUT / case.name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\n{case.name}: {case.about}", flush=True)
    started = time.perf_counter()
    setup = case.setup(scale)
    server = start(setup.api)
    try:
        config = setup.config(server.url)
        (folder / "config.json").write_text(json.dumps(config))
        if case.streams:
            catalog = catalog_for(run("discover", config), *case.streams)
            (folder / "catalog.json").write_text(json.dumps(catalog))
        if setup.warm_up:
            setup.warm_up(server.url)
        n_workers = workers(case.vendor, config)
        total = sum(len(keys) for keys in setup.expected.values())
        budget = config.get("requests_per_second")  # Okendo's: the connector paces itself
        load = os.getloadavg()[0]
        print(f"  sandbox seeded in {time.perf_counter() - started:.1f} s; {total:,} records; "
              f"latency {latency_ms:g} ms; connector workers {n_workers}"
              + (f", requests_per_second {budget}" if budget else "")
              + f"; load average {load:.1f}", flush=True)
        setup.api.latency = latency_ms / 1000
        if case.kind == "startup":
            return startup_runs(case, folder, rounds, load)
        tools = [
            ("connector", [EXECUTABLE, "read", "--config", "config.json",
                           "--catalog", "catalog.json"], folder),
            ("baseline", [sys.executable, "-m", "bench.baseline", str(folder / "config.json"),
                          *case.streams], ROOT),
        ]
        if case.on_request:
            tools = tools[:1]
        if "dlt" in case.peers:
            if DLT_INSTALLED:
                # As many worker threads as the connector's (dlt's `extract.workers`).
                tools.append(("dlt", [sys.executable, "-m", "bench.dlt_rest_api",
                                      str(folder / "config.json"), str(n_workers),
                                      *case.streams], ROOT))
            else:
                print("  dlt is not installed (pip install '.[bench]', as `make bench` does): "
                      "the peer is skipped", flush=True)
        measured: dict[str, list[tuple[float, float]]] = defaultdict(list)
        records: dict[str, int] = {}
        # Rounds alternate the tools, so that a change in the machine's load falls on both.
        for round_ in range(1, rounds + 1):
            for tool, args, cwd in tools:
                wall, rss, stdout = measure(args, folder, tool, cwd)
                records[tool] = check(tool, read_keys(stdout, case.vendor, tool == "connector"),
                                      setup.expected)
                measured[tool].append((wall, rss))
                of = f" (round {round_} of {rounds})" if rounds > 1 else ""
                print(f"  {tool}: {records[tool]:,} records in {wall:.2f} s, "
                      f"peak RSS {rss:.0f} MiB{of}", flush=True)
        runs = []
        for tool, _, _ in tools:
            walls = tuple(wall for wall, _ in measured[tool])
            runs.append(Run(case.name, tool, latency_ms, statistics.median(walls),
                            records[tool], max(rss for _, rss in measured[tool]),
                            n_workers if tool == "connector" else None, load, walls))
        return runs
    finally:
        server.stop()


def speed_ratio(runs: list[Run], case: str, against: str = "baseline") -> float | None:
    """The connector's records/s over another tool's (the baseline's, or dlt's)."""
    by_tool = {r.tool: r for r in runs if r.case == case}
    if "connector" not in by_tool or against not in by_tool:
        return None
    return by_tool["connector"].records_per_s / by_tool[against].records_per_s


# The start-up case: each command's wall time as a multiple of Python importing these.
PYTHON_IMPORTS = "import requests, yaml"


def startup_runs(case: Case, folder: Path, rounds: int, load: float) -> list[Run]:
    """`spec` and `check` (against the sandbox), each timed in turn with Python's start-up.

    Rounds alternate python, spec, check, python, ...: each command's multiple of python is
    taken round by round (its wall time over that round's python), and the median kept.
    """
    tools = (
        ("python", [sys.executable, "-c", PYTHON_IMPORTS], "", None),
        ("spec", [EXECUTABLE, "spec"], "SPEC", None),
        ("check", [EXECUTABLE, "check", "--config", "config.json"], "CONNECTION_STATUS",
         "SUCCEEDED"),
    )
    measured: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for round_ in range(1, rounds + 1):
        for tool, args, kind, status in tools:
            wall, rss, stdout = measure(args, folder, tool, folder)
            if kind:
                messages = [orjson.loads(line) for line in stdout.read_bytes().splitlines()
                            if line.startswith(b"{")]
                found = [m for m in messages if m.get("type") == kind]
                if not found or (status and found[0]["connectionStatus"]["status"] != status):
                    raise CaseFailed(f"`{tool}` printed no {kind} {status or ''}: "
                                     f"{stdout.read_text(errors='replace')[-500:]}")
            measured[tool].append((wall, rss))
        print(f"  round {round_} of {rounds}: " + ", ".join(
            f"{tool} {measured[tool][-1][0]:.2f} s" for tool, _, _, _ in tools), flush=True)
    runs = []
    python_walls = [wall for wall, _ in measured["python"]]
    for tool, _, _, _ in tools:
        walls = tuple(wall for wall, _ in measured[tool])
        run_ = Run(case.name, tool, 0, statistics.median(walls), 0,
                   max(rss for _, rss in measured[tool]), None, load, walls)
        if tool != "python":
            pairs = zip(walls, python_walls, strict=True)
            run_.multiple = statistics.median(wall / python for wall, python in pairs)
        runs.append(run_)
    return runs


def rss_ratio(runs: list[Run], case: str) -> float | None:
    by_tool = {r.tool: r for r in runs if r.case == case}
    if "connector" not in by_tool or "baseline" not in by_tool:
        return None
    return by_tool["connector"].peak_rss_mib / by_tool["baseline"].peak_rss_mib


def table(runs: list[Run]) -> str:
    header = (f"{'case':<22}{'tool':<11}{'workers':>8}{'latency':>9}{'rounds':>7}{'wall s':>9}"
              f"{'records':>10}{'rec/s':>9}{'RSS MiB':>9}{'speed x':>9}{'RSS x':>7}"
              f"{'vs dlt':>8}")
    lines = [header, "-" * len(header)]
    for r in runs:
        if r.multiple is not None or r.tool == "python":
            continue  # the start-up case has a table of its own
        connector = r.tool == "connector"
        speed, rss = speed_ratio(runs, r.case), rss_ratio(runs, r.case)
        dlt = speed_ratio(runs, r.case, "dlt")
        lines.append(
            f"{r.case if connector else '':<22}{r.tool:<11}"
            f"{r.workers if r.workers is not None else '':>8}{f'{r.latency_ms:g} ms':>9}"
            f"{len(r.rounds_s):>7}{r.wall_s:>9.2f}{r.records:>10,}{r.records_per_s:>9,.0f}"
            f"{r.peak_rss_mib:>9.0f}"
            f"{f'{speed:.2f}' if connector and speed else '':>9}"
            f"{f'{rss:.2f}' if connector and rss else '':>7}"
            f"{f'{dlt:.2f}' if connector and dlt else '':>8}")
    started = [r for r in runs if r.multiple is not None or r.tool == "python"]
    if started:
        lines += ["", f"{'start-up':<22}{'command':<11}{'rounds':>7}{'wall s':>9}{'RSS MiB':>9}"
                  f"{'x python':>10}"]
        for r in started:
            lines.append(f"{'':<22}{r.tool:<11}{len(r.rounds_s):>7}{r.wall_s:>9.3f}"
                         f"{r.peak_rss_mib:>9.0f}"
                         f"{f'{r.multiple:.2f}' if r.multiple is not None else '':>10}")
    return "\n".join(lines)


def targets(runs: list[Run], scale: float) -> list[str]:
    """The issue's targets, each PASS, FAIL, or n/a when its cases did not run as defined."""
    def verdict(ok: bool | None, text: str, measured: str, note: str = "") -> str:
        mark = "n/a " if ok is None else "PASS" if ok else "FAIL"
        return f"  {mark}  {text}: {measured}{note}"

    def latency(case: str) -> float | None:
        return next((r.latency_ms for r in runs if r.case == case), None)

    lines = []
    paged = latency("loke-customers-100k") == 0
    speed = speed_ratio(runs, "loke-customers-100k")
    lines.append(verdict(
        None if speed is None or not paged else speed >= 0.8,
        "paged stream, no latency (loke-customers-100k): connector rec/s >= 0.8 x baseline's",
        f"{speed:.2f} x" if speed else "not run without latency"))
    speed = speed_ratio(runs, "loke-customers-100k", "dlt")
    lines.append(verdict(
        None if speed is None or not paged else speed >= 1,
        "paged stream, no latency (loke-customers-100k): connector rec/s >= dlt rest_api's",
        f"{speed:.2f} x" if speed else "not run without latency, or dlt not installed"))
    speed = speed_ratio(runs, "loke-memberships-5k")
    at = latency("loke-memberships-5k")
    lines.append(verdict(
        None if speed is None or at != 20 else speed >= 5,
        "child stream, 20 ms latency (loke-memberships-5k): connector >= 5 x baseline's rec/s",
        f"{speed:.2f} x at {at:g} ms" if speed and at is not None else "not run"))
    speed = speed_ratio(runs, "loke-memberships-5k", "dlt")
    lines.append(verdict(
        None if speed is None or at != 20 else speed >= 1,
        "child stream, 20 ms latency (loke-memberships-5k): connector rec/s >= dlt rest_api's, "
        "equal workers",
        f"{speed:.2f} x at {at:g} ms" if speed and at is not None
        else "not run, or dlt not installed"))
    multiples = {r.tool: r.multiple for r in runs if r.case == "startup"}
    for command, most in (("spec", 4), ("check", 7)):
        found = multiples.get(command)
        lines.append(verdict(
            None if found is None else found <= most,
            f"start-up: `source-customers {command}` wall time <= {most} x "
            f"`python -c \"{PYTHON_IMPORTS}\"`",
            f"{found:.2f} x" if found is not None else "not run"))
    peaks = {r.case: r.peak_rss_mib for r in runs if r.tool == "connector"}
    growth = (peaks["malomo-200k"] / peaks["malomo-20k"]
              if {"malomo-20k", "malomo-200k"} <= peaks.keys() else None)
    lines.append(verdict(
        None if growth is None else growth <= 1.5,
        "memory (malomo-200k vs -20k): connector peak RSS at 200,000 customers <= 1.5 x at "
        "20,000", f"{growth:.2f} x" if growth else "needs both cases (malomo-200k on request)"))
    speed = speed_ratio(runs, "malomo-20k")
    lines.append(verdict(
        None if speed is None or latency("malomo-20k") != 0 else speed >= 0.8,
        "Malomo, no latency (malomo-20k): connector rec/s >= 0.8 x baseline's",
        f"{speed:.2f} x" if speed else "not run without latency"))
    rss = {r.case: r.peak_rss_mib for r in runs if r.tool == "connector"}
    growth = (rss["loke-customers-100k"] / rss["loke-customers-10k"]
              if {"loke-customers-10k", "loke-customers-100k"} <= rss.keys() else None)
    lines.append(verdict(
        None if growth is None else growth <= 1.2,
        "memory (loke-customers-100k vs -10k): connector peak RSS at 100k <= 1.2 x at 10k",
        f"{growth:.2f} x" if growth else "needs both cases"))
    speed = speed_ratio(runs, "malomo-write-10k")
    at = latency("malomo-write-10k")
    lines.append(verdict(
        None if speed is None or at != 20 else speed >= 1,
        "writes, 20 ms latency (malomo-write-10k): destination rows/s >= the plain loop's "
        "with as many threads",
        f"{speed:.2f} x at {at:g} ms" if speed and at is not None else "not run"))
    for big in ("malomo-write-mem-100k", "malomo-write-mem-1m"):
        growth = (rss[big] / rss["malomo-write-mem-10k"]
                  if {"malomo-write-mem-10k", big} <= rss.keys() else None)
        lines.append(verdict(
            None if growth is None else growth <= 1.2,
            f"memory ({big} vs -10k): destination peak RSS at "
            f"{big.removeprefix('malomo-write-mem-')} rows <= 1.2 x at 10k",
            f"{growth:.2f} x" if growth else "needs both cases"))
    paced = next((r.extra for r in runs if r.case == "capillary-write-paced" and r.extra), None)
    lines.append(verdict(
        None if paced is None else (paced["most_in_60s"] <= paced["requests_per_minute"]
                                    and not paced["refused_429"]),
        "pacing (capillary-write-paced): requests arriving in any 60 s <= requests_per_minute, "
        "no 429", f"at most {paced['most_in_60s']} in 60 s for {paced['requests_per_minute']} "
        f"a minute, {paced['refused_429']} answered 429" if paced else "not run"))
    if scale != 1:
        lines.append(f"  (scale {scale:g}: the targets are defined at scale 1)")
    return lines


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def record(path: Path, runs: list[Run], scale: float) -> None:
    """Appends one JSON line per run: what changes are compared by."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    with path.open("a", encoding="utf-8") as out:
        for r in runs:
            connector = r.tool == "connector"
            speed, rss = speed_ratio(runs, r.case), rss_ratio(runs, r.case)
            dlt = speed_ratio(runs, r.case, "dlt")
            if r.multiple is not None:  # start-up: the command's multiple of python's
                speed = r.multiple
            out.write(json.dumps({
                "timestamp": stamp, "commit": commit, "dirty": dirty, "case": r.case,
                "scale": scale, "latency_ms": r.latency_ms, "tool": r.tool,
                "workers": r.workers, "wall_s": round(r.wall_s, 3), "records": r.records,
                "records_per_s": round(r.records_per_s, 1),
                "peak_rss_mib": round(r.peak_rss_mib, 1),
                "ratio": round(speed, 3) if (connector or r.multiple is not None) and speed
                else None,
                "ratio_dlt": round(dlt, 3) if connector and dlt else None,
                "rss_ratio": round(rss, 3) if connector and rss else None,
                "load_1m": round(r.load, 2),
                "rounds_s": [round(wall, 3) for wall in r.rounds_s],
                **(r.extra or {}),
            }) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    names = [c.name for c in CASES]
    default = [c.name for c in CASES if not c.on_request]
    parser.add_argument("--cases", default=",".join(default),
                        help="comma-separated, of: " + ", ".join(names) + " (default: all but "
                        + ", ".join(c.name for c in CASES if c.on_request) + ")")
    parser.add_argument("--latency", type=float, metavar="MS",
                        help="per-request latency in ms for every case (default: each case's)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every case's size, e.g. 0.1 for a quick run")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="runs of each tool per case, alternating; the median wall time "
                        "and the highest peak RSS count (default: each case's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.jsonl",
                        help="the JSON-lines file runs are appended to")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown or not wanted:
        parser.error(f"unknown cases: {', '.join(unknown)}" if unknown else "no case given")
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    runs: list[Run] = []
    failed: list[str] = []
    for case in (c for c in CASES if c.name in wanted):
        latency = case.latency_ms if args.latency is None else args.latency
        try:
            runs += run_case(case, args.scale, latency, args.rounds or case.rounds)
        except CaseFailed as error:
            failed.append(case.name)
            print(f"  FAILED: {error}", flush=True)
    print("\n" + table(runs))
    print("\ntargets:\n" + "\n".join(targets(runs, args.scale)))
    if runs:
        record(args.out, runs, args.scale)
        print(f"\nrecorded in {args.out}")
    if failed:
        print(f"\nFAILED (wrong records or an error): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
