"""Runs the installed `source-customers` as a user would: a subprocess, files in, JSON lines out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXECUTABLE = (shutil.which("source-customers", path=str(Path(sys.executable).parent))
              or "source-customers")


@dataclass
class Output:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD")
                if m["record"]["stream"] == stream]

    def keys(self, stream: str, *key: str) -> list[Any]:
        """Primary keys of the stream's records, in order, duplicates kept."""
        rows = self.records(stream)
        return [tuple(r[k] for k in key) if len(key) > 1 else r[key[0]] for r in rows]

    def counts(self) -> Counter[str]:
        return Counter(m["record"]["stream"] for m in self.of_type("RECORD"))

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.of_type("STATE")]

    def final_state(self) -> list[dict[str, Any]]:
        """The last STATE of each stream: what the platform would hand to the next sync."""
        last: dict[str, dict[str, Any]] = {}
        for state in self.states:
            last[state["stream"]["stream_descriptor"]["name"]] = state
        return [{"type": "STREAM", "stream": s["stream"]} for s in last.values()]

    @property
    def connection_status(self) -> dict[str, Any]:
        (status,) = [m["connectionStatus"] for m in self.of_type("CONNECTION_STATUS")]
        return status

    @property
    def errors(self) -> list[str]:
        return [m["trace"]["error"]["message"] for m in self.of_type("TRACE")
                if m["trace"]["type"] == "ERROR"]

    def logs(self, *levels: str) -> list[str]:
        return [m["log"]["message"] for m in self.of_type("LOG")
                if not levels or m["log"]["level"] in levels]

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def run(command: str, config: dict[str, Any] | None = None, catalog: dict[str, Any] | None = None,
        state: list[dict[str, Any]] | None = None, timeout: float = 300,
        executable: list[str] | None = None, env: dict[str, str] | None = None,
        debug: bool = False) -> Output:
    args = list(executable or [EXECUTABLE]) + [command] + (["--debug"] if debug else [])
    with tempfile.TemporaryDirectory() as folder:
        for name, content in (("config", config), ("catalog", catalog), ("state", state)):
            if content is not None:
                path = Path(folder) / f"{name}.json"
                path.write_text(json.dumps(content))
                args += [f"--{name}", str(path)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=folder,
                              env=env)
    return parsed(done)


def parsed(done: subprocess.CompletedProcess[str]) -> Output:
    """A finished command's output, its protocol messages parsed."""
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return Output(done.returncode, done.stdout, done.stderr, messages)


def catalog_for(discovered: Output, *streams: str, incremental: bool = False) -> dict[str, Any]:
    """A configured catalog from `discover`'s output: incremental where offered, if asked."""
    (message,) = discovered.of_type("CATALOG")
    configured = []
    for stream in message["catalog"]["streams"]:
        if streams and stream["name"] not in streams:
            continue
        mode = ("incremental" if incremental and "incremental" in stream["supported_sync_modes"]
                else "full_refresh")
        configured.append({
            "stream": stream, "sync_mode": mode,
            "destination_sync_mode": "append_dedup" if mode == "incremental" else "overwrite",
            "cursor_field": stream.get("default_cursor_field") or [],
            "primary_key": stream.get("source_defined_primary_key") or [],
        })
    return {"streams": configured}


def assert_same_keys(got: list[Any], expected: list[Any]) -> None:
    """By primary key: nothing missing, nothing extra, no duplicates."""
    duplicates = [k for k, n in Counter(got).items() if n > 1]
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not duplicates, f"{len(duplicates)} duplicated keys, e.g. {duplicates[:3]}"
    assert not missing, f"{len(missing)} missing keys, e.g. {sorted(missing, key=str)[:3]}"
    assert not extra, f"{len(extra)} unexpected keys, e.g. {sorted(extra, key=str)[:3]}"


def sync(config: dict[str, Any], *streams: str, incremental: bool = False,
         state: list[dict[str, Any]] | None = None) -> Output:
    """`discover`, then `read` of the chosen streams (all by default); the read must succeed."""
    catalog = catalog_for(run("discover", config), *streams, incremental=incremental)
    output = run("read", config, catalog, state)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    return output


def spec_branch(vendor: str) -> dict[str, Any]:
    """The vendor's branch of `spec`'s combined connection specification."""
    output = run("spec")
    assert output.returncode == 0
    spec = output.of_type("SPEC")[0]["spec"]["connectionSpecification"]
    (branch,) = [b for b in spec["oneOf"] if b["properties"]["vendor"]["const"] == vendor]
    return branch
