"""`make sandbox`: every vendor's sandbox API, with a config and a catalog to read it.

    python -m scripts.sandbox            serve until Ctrl-C (`make sandbox`)
    python -m scripts.sandbox --detach   serve in the background and return once ready
                                         (`make sandbox-start`)
    python -m scripts.sandbox --stop     stop the background one (`make sandbox-stop`)

Each vendor's API (integration_tests/sandbox/) listens on a free port of 127.0.0.1, and
`.sandbox/<vendor>/config.json` (a config pointing at it, with the sandbox's credentials)
and `.sandbox/<vendor>/catalog.json` (every stream `discover` returns, in its best sync
mode) are written for `source-customers check/discover/read`. `--dir` writes elsewhere.
Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path(".sandbox")


def configured_catalog(discovered: dict[str, Any]) -> dict[str, Any]:
    """A configured catalog of every stream of `discover`'s catalog, in its best sync mode.

    Incremental (deduplicated on the primary key) where the stream has a cursor, else full
    refresh (overwrite). Schemas are left empty: the connector uses its own.
    """
    configured = []
    for stream in discovered["streams"]:
        incremental = "incremental" in stream["supported_sync_modes"]
        described = {key: stream[key] for key in (
            "name", "supported_sync_modes", "source_defined_cursor", "default_cursor_field",
            "source_defined_primary_key") if key in stream}
        configured.append({
            "stream": {**described, "json_schema": {}},
            "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append_dedup" if incremental else "overwrite",
            "cursor_field": stream.get("default_cursor_field", []) if incremental else [],
            "primary_key": stream.get("source_defined_primary_key", []),
        })
    return {"streams": configured}


def discover(config_path: Path) -> dict[str, Any] | None:
    """`source-customers discover` on a config file: the CATALOG message's catalog."""
    executable = Path(sys.executable).parent / "source-customers"
    done = subprocess.run([str(executable), "discover", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=120)
    for line in done.stdout.splitlines():
        if line.startswith("{") and json.loads(line).get("type") == "CATALOG":
            catalog: dict[str, Any] = json.loads(line)["catalog"]
            return catalog
    print(f"discover failed for {config_path}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
          file=sys.stderr)
    return None


def dumps(content: Any, indent: str = "") -> str:
    """JSON, indented, with each object or array that fits on a line kept on one."""
    compact = json.dumps(content, ensure_ascii=False)
    if len(indent) + len(compact) <= 92 or not isinstance(content, (dict, list)) or not content:
        return compact
    inner = indent + "  "
    if isinstance(content, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, inner)}"
                 for k, v in content.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [inner + dumps(v, inner) for v in content]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(content) + "\n", encoding="utf-8")


def serve(folder: Path) -> None:
    """Starts every vendor's sandbox, writes its files, prints them, serves until stopped."""
    from integration_tests.sandbox import VENDORS, start

    if running(folder) is not None:  # its files are about to be rewritten
        stop_running(folder)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The small datasets of the standard tests: every stream non-empty and paged, and a
    # read takes a few seconds.
    servers = {name: start(module.Api(**getattr(module, "SMALL", {})))
               for name, module in sorted(VENDORS.items())}
    try:
        configs = {}
        for name, server in servers.items():
            configs[name] = folder / name / "config.json"
            write_json(configs[name], VENDORS[name].config(server.url))
        with ThreadPoolExecutor(len(configs)) as pool:
            catalogs = dict(zip(configs, pool.map(discover, configs.values()), strict=True))
        for name, catalog in catalogs.items():
            if catalog is not None:
                write_json(folder / name / "catalog.json", configured_catalog(catalog))
        print(f"Sandbox APIs on 127.0.0.1, with a config and a catalog for each, in {folder}/:")
        for name, server in servers.items():
            catalog = catalogs[name]
            written = (f"catalog.json ({', '.join(s['name'] for s in catalog['streams'])})"
                       if catalog else "no catalog: discover failed")
            print(f"  {name:<10} {server.url:<24} {folder / name}/config.json, {written}")
        print("Serving until stopped (Ctrl-C, or `make sandbox-stop`).", flush=True)
        (folder / "pid").write_text(f"{os.getpid()}\n")  # last: it says the files are ready
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C
            stop.wait()
    finally:
        for server in servers.values():
            server.stop()
        (folder / "pid").unlink(missing_ok=True)


def running(folder: Path) -> int | None:
    """The pid of the sandbox serving `folder`'s files, if one runs."""
    try:
        pid = int((folder / "pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop_running(folder: Path) -> int:
    pid = running(folder)
    if pid is None:
        print(f"No sandbox is running for {folder}/.")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if running(folder) is None:
            break
        time.sleep(0.1)
    print(f"Stopped the sandbox (pid {pid}).")
    return 0


def detach(folder: Path) -> int:
    """Serves in a background process; returns once its files are written."""
    if running(folder) is not None:
        stop_running(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pid").unlink(missing_ok=True)
    log = folder / "sandbox.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-m", "scripts.sandbox", "--dir", str(folder)],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (folder / "pid").exists():
        if child.poll() is not None or time.monotonic() > deadline:
            print(log.read_text(), end="", file=sys.stderr)
            print("The sandbox did not start.", file=sys.stderr)
            return 1
        time.sleep(0.1)
    text = log.read_text()
    print(text.replace("Serving until stopped (Ctrl-C, or `make sandbox-stop`).",
                       f"Serving in the background (pid {child.pid}; log {log}) until "
                       "`make sandbox-stop`."), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                        help="where to write <vendor>/config.json and catalog.json")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="serve in the background")
    mode.add_argument("--stop", action="store_true", help="stop the background sandbox")
    args = parser.parse_args(argv)
    if args.stop:
        return stop_running(args.dir)
    if args.detach:
        return detach(args.dir)
    serve(args.dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
