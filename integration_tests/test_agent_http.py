"""`customers-mcp --http`: MCP's streamable HTTP, every request behind the bearer token from
CUSTOMERS_MCP_TOKEN; the SDK's own HTTP client with the token, and plain requests without."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import anyio
import requests
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from integration_tests import mcp_client
from integration_tests.sandbox import malomo, person
from integration_tests.sandbox.server import Server, VendorApi

TOKEN = "mcp-test-token-5f2c9a7e1b3d"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serving(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("customers-mcp did not start serving HTTP")


def test_http_answers_with_the_token_and_refuses_without_it(
        serve: Callable[[VendorApi], Server]) -> None:
    api = malomo.Api(customers=10)
    server = serve(api)
    cid = person.add_malomo(api)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with mcp_client.config_files(malomo.config(server.url)) as paths:
        process = subprocess.Popen(
            [mcp_client.EXECUTABLE, "--config", paths[0], "--http", f"127.0.0.1:{port}"],
            env={**os.environ, "CUSTOMERS_MCP_TOKEN": TOKEN}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _serving(url, process)
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": TOKEN}):
                refused = requests.post(url, json={"jsonrpc": "2.0", "id": 1,
                                                   "method": "tools/list"},
                                        headers={**headers, "Accept": "application/json, "
                                                 "text/event-stream"}, timeout=10)
                assert refused.status_code == 401, headers
                assert "bearer token" in refused.text

            got: dict[str, Any] = {}

            async def talk() -> None:
                async with streamablehttp_client(
                        url, headers={"Authorization": f"Bearer {TOKEN}"}) as (read, write, _), \
                        ClientSession(read, write) as client:
                    await client.initialize()
                    got["tools"] = [t.name for t in (await client.list_tools()).tools]
                    called = await client.call_tool("find_customer", {"email": person.EMAIL})
                    got["find"] = called.structuredContent

            anyio.run(talk)
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
    assert sorted(got["tools"]) == ["customer_activity", "find_customer", "get_customer",
                                    "update_customer"]
    (result,) = got["find"]["results"]
    assert [c["id"] for c in result["customers"]] == [cid]
    assert TOKEN not in stderr
    assert person.EMAIL not in stderr


def test_http_without_a_token_does_not_start(serve: Callable[[VendorApi], Server]) -> None:
    server = serve(malomo.Api(customers=3))
    env = {k: v for k, v in os.environ.items() if k != "CUSTOMERS_MCP_TOKEN"}
    with mcp_client.config_files(malomo.config(server.url)) as paths:
        done = subprocess.run([mcp_client.EXECUTABLE, "--config", paths[0], "--http",
                               f"127.0.0.1:{_free_port()}"], env=env, input="",
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--http needs a bearer token: set CUSTOMERS_MCP_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
