"""Speaks MCP to the installed `customers-mcp`, started as a subprocess over stdio, with the
SDK's own client: what Claude Desktop, Claude Code or Cursor do."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

EXECUTABLE = shutil.which("customers-mcp", path=str(Path(sys.executable).parent)) \
    or "customers-mcp"


@dataclass
class Result:
    is_error: bool
    text: str
    data: Any  # structuredContent: the tool's typed answer


@dataclass
class Session:
    """What one server's session saw: the tools listed, each call's result, its log."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    stderr: str = ""


@contextmanager
def config_files(*configs: dict[str, Any]) -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, config in enumerate(configs):
            path = Path(folder) / f"config-{n}-{config.get('vendor')}.json"
            path.write_text(json.dumps(config))
            paths.append(str(path))
        yield paths


def session(configs: list[dict[str, Any]], calls: list[tuple[str, dict[str, Any]]],
            *options: str) -> Session:
    """Starts the server with `configs`, lists its tools, makes `calls` in order, stops it."""
    seen = Session()

    async def talk(paths: list[str], errlog: Any) -> None:
        args = [a for p in paths for a in ("--config", p)] + list(options)
        params = StdioServerParameters(command=EXECUTABLE, args=args, env=dict(os.environ))
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()
            listed = await client.list_tools()
            seen.tools = [t.model_dump(mode="json") for t in listed.tools]
            for name, arguments in calls:
                called = await client.call_tool(name, arguments)
                text = "\n".join(getattr(c, "text", "") for c in called.content)
                seen.results.append(Result(bool(called.isError), text,
                                           called.structuredContent))

    with config_files(*configs) as paths, tempfile.TemporaryFile("w+") as errlog:
        anyio.run(talk, paths, errlog)
        errlog.seek(0)
        seen.stderr = errlog.read()
    return seen


def by_vendor(result: Result) -> dict[tuple[str, str], dict[str, Any]]:
    """find_customer's answers by (vendor, key)."""
    assert not result.is_error, result.text
    return {(r["vendor"], r["looked_up_by"]): r for r in result.data["results"]}
