"""Runs the CLI against a scripted server and judges the outcome by one invariant.

Either the sync exits 0 holding exactly the records the server's data holds, by primary key
(nothing missing, nothing extra, no duplicates; a documented-skip 404 may drop its
partition's records), or it exits non-zero with an Airbyte TRACE ERROR that names a cause
that was actually injected; within a bounded time; stdout is protocol messages only; no
secret appears anywhere (nor a looked-up address or identifier outside records). Stronger:
when every injected fault is transient and no request met more faults in a row than its
retries, the sync must succeed. A silent or trickling answer must be given up on within the
deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integration_tests.any_answer.behaviours import Scenario, Transport, Trickle
from integration_tests.any_answer.server import (
    DEADLINE,
    HELD_TOO_LONG,
    ScriptedServer,
    Served,
)
from integration_tests.any_answer.world import World
from integration_tests.cli import Output

LAUNCH = Path(__file__).with_name("launch.py")
CLI_TIMEOUT = 90.0  # seconds: the longest script stalls 12 requests for 3 s each
MESSAGE_TYPES = {"RECORD", "STATE", "LOG", "SPEC", "CONNECTION_STATUS", "CATALOG", "TRACE",
                 "CONTROL", "DESTINATION_CATALOG"}


@dataclass
class Run:
    output: Output
    seconds: float
    timed_out: bool = False
    bad_lines: list[str] = field(default_factory=list)  # stdout lines that are not messages


def read(config: dict[str, Any], catalog: dict[str, Any]) -> Run:
    """`read` through the launcher (the installed command, no backoff waits, 1 s deadline)."""
    env = {**os.environ, "ANY_ANSWER_DEADLINE": str(DEADLINE)}
    with tempfile.TemporaryDirectory() as folder:
        args = [sys.executable, str(LAUNCH), "read"]
        for name, content in (("config", config), ("catalog", catalog)):
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(content))
            args += [f"--{name}", str(path)]
        start = time.monotonic()
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                                  cwd=folder, env=env)
            stdout, stderr, code, timed_out = done.stdout, done.stderr, done.returncode, False
        except subprocess.TimeoutExpired as expired:
            stdout = _text(expired.stdout)
            stderr = _text(expired.stderr)
            code, timed_out = -9, True
    seconds = time.monotonic() - start
    messages, bad = [], []
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if isinstance(message, dict) and message.get("type") in MESSAGE_TYPES:
            messages.append(message)
        else:
            bad.append(line)
    return Run(Output(code, stdout, stderr, messages), seconds, timed_out, bad)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def judge(world: World, server: ScriptedServer, run: Run) -> list[str]:
    """Every way the outcome breaks the invariant (empty: it holds)."""
    problems: list[str] = []
    output = run.output
    log = server.log
    if run.timed_out:
        problems.append(f"the CLI did not finish within {CLI_TIMEOUT:.0f} s")
    if run.bad_lines:
        problems.append(f"stdout holds {len(run.bad_lines)} lines that are not Airbyte "
                        f"messages, e.g. {run.bad_lines[0][:200]!r}")
    problems += _leaks(world, output)
    if server.foreign:
        problems.append(f"requests reached another host: {server.foreign[:3]}")
    for served in log:
        if served.effect == "transient" and (served.behaviour == Transport("stall")
                                             or isinstance(served.behaviour, Trickle)):
            waited = _waited(served, log)
            if waited is None or waited > HELD_TOO_LONG:
                text = "until the server gave up" if waited is None else f"{waited:.1f} s"
                problems.append(f"request #{served.n} ({served.behaviour!r}) was waited for "
                                f"{text}: past its {DEADLINE:.0f} s deadline")
    if run.timed_out:
        return problems

    faults = [s for s in log if s.faulted]
    fatal = [s for s in faults if s.effect == "fatal"]
    missing_pk = [o for o in world.odd.values() if o.kind.startswith("pk_")]
    if output.returncode == 0:
        problems += _exact(world, log, output)
    else:
        errors = output.errors
        if not errors:
            problems.append("the sync failed without a TRACE ERROR message")
        for error in errors:
            if not error.strip() or "Traceback" in error:
                problems.append(f"an error message is empty or a traceback: {error[:300]!r}")
        if not faults and not missing_pk:
            problems.append("the sync failed, yet nothing was injected")
        elif errors and not _names_a_cause(world, faults, errors):
            causes = sorted({w for s in faults for w in s.words[:1]} |
                            {f"{o.stream}+{_pk_field(world, o.stream)}" for o in missing_pk})
            problems.append(f"no error message names an injected cause (any of {causes})")
        if not fatal and not missing_pk and _within_retries(world, log):
            problems.append("only transient faults (each request within its retries), yet "
                            "the sync failed")
    return problems


def _waited(served: Served, log: list[Served]) -> float | None:
    """How long the connector waited for a silent or trickling answer: until it closed the
    connection, or sent the request again (an abandoned request may keep its connection
    open, unread, until the server ends it). None: it waited until the server gave up."""
    retried = [s.started - served.started for s in log
               if s.n > served.n and (s.method, s.target) == (served.method, served.target)]
    times = [t for t in (served.held, min(retried, default=None)) if t is not None]
    return min(times, default=None)


def _pk_field(world: World, stream: str) -> str:
    from integration_tests.any_answer.world import STREAMS

    return STREAMS[world.vendor][stream].pk_field or "?"


def _names_a_cause(world: World, faults: list[Served], errors: list[str]) -> bool:
    text = "\n".join(errors).lower()
    if any(word.lower() in text for s in faults for word in s.words):
        return True
    for oddity in world.odd.values():
        if oddity.kind.startswith("pk_") and oddity.stream.lower() in text \
                and _pk_field(world, oddity.stream).lower() in text:
            return True
    return False


def _within_retries(world: World, log: list[Served]) -> bool:
    """Whether no request met more faults in a row than it is retried."""
    runs: Counter[tuple[str, str]] = Counter()
    for served in log:
        if served.n < 0:
            continue
        identity = (served.method, served.target)
        runs[identity] = runs[identity] + 1 if served.faulted else 0
        if runs[identity] > served.retries:
            return False
    return True


def _exact(world: World, log: list[Served], output: Output) -> list[str]:
    problems = []
    may_drop: dict[str, set[Any]] = {}
    for served in log:
        for stream, keys in served.skipped.items():
            may_drop.setdefault(stream, set()).update(keys)
    for stream, fields in world.keys.items():
        try:
            got = output.keys(stream, *fields)
        except KeyError as error:
            got = []
            problems.append(f"{stream}: a record without its key field {error}")
        expected = set(world.expected.get(stream, []))
        required = expected - may_drop.get(stream, set())
        duplicates = [k for k, n in Counter(got).items() if n > 1]
        missing = required - set(got)
        extra = set(got) - expected
        if duplicates:
            problems.append(f"{stream}: {len(duplicates)} duplicated keys, e.g. {duplicates[:2]}")
        if missing:
            problems.append(f"{stream}: exit 0 but {len(missing)} of {len(expected)} records "
                            f"missing, e.g. {sorted(missing, key=str)[:2]}")
        if extra:
            problems.append(f"{stream}: exit 0 with {len(extra)} unexpected keys, e.g. "
                            f"{sorted(extra, key=str)[:2]}")
    return problems


def _leaks(world: World, output: Output) -> list[str]:
    problems = []
    everything = output.stdout + output.stderr
    for secret in world.secrets():
        if secret in everything:
            where = "stdout" if secret in output.stdout else "stderr"
            problems.append(f"a secret ({secret[:4]}...) appears in {where}")
    not_records = output.stderr + "\n".join(
        line for line in output.stdout.splitlines() if not line.startswith('{"type":"RECORD"')
        and '"type": "RECORD"' not in line[:40])
    for value in world.personal():
        if value and value in not_records:
            problems.append(f"a looked-up value ({value[:3]}...) appears outside records")
    return problems


def report(world: World, scenario: Scenario, server: ScriptedServer, run: Run,
           problems: list[str]) -> str:
    """What a failing example did, readable in a test failure."""
    output = run.output
    lines = [f"vendor {world.vendor}: {scenario!r}", "odd records:"]
    lines += [f"  {o!r} -> {stream} {key!r}" for (stream, key), o in world.odd.items()] or \
        ["  (none)"]
    lines.append("requests as served (in arrival order):")
    shown = [s for s in server.log if s.n < len(scenario.script) + 3 or s.faulted]
    lines += [f"  {s.line()}" for s in shown] or ["  (none)"]
    if len(shown) < len(server.log):
        lines.append(f"  ... and {len(server.log) - len(shown)} more requests past the script, "
                     "answered properly")
    if server.foreign:
        lines.append(f"  to other hosts: {server.foreign}")
    lines.append(f"CLI: exit {output.returncode} after {run.seconds:.1f} s, records "
                 f"{dict(output.counts())}")
    for error in output.errors:
        lines.append(f"  TRACE ERROR: {error[:600]}")
    tail = output.stderr.strip()[-1500:]
    if tail:
        lines.append(f"stderr (end): {tail}")
    lines.append("problems:")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
