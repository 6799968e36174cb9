"""The first connection: a `check` against a wrong address gives up at once and says what to
fix, for every vendor, against real sockets.

A closed port on 127.0.0.1 (refused), a name under `.invalid` (never resolves, RFC 6761), a
plain-HTTP server asked for TLS, and a server of HTML pages (a proxy, a typo's host). A
`check` makes one attempt at an address it cannot reach (no "Retrying" line: a sync retries,
a check does not), and its message is the cause in the user's words, with no CDK words ahead
of it. A `read` that finally gives up on a host says the same words.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integration_tests import in_process
from integration_tests.cli import run
from integration_tests.vendors import CASES
from source_customers.vendors import VENDORS


def config(vendor: str, url: str) -> dict[str, Any]:
    case = CASES[vendor]
    base = case.config(case.small(), url)
    if vendor == "okendo":  # its API root includes a path
        base["base_url"] = url + "/enterprise"
    return base


class _Html(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests += 1  # type: ignore[attr-defined]
        page = b"<html><body><h1>404 Not Found</h1></body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    server.requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:  # a port just free, with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def failed_check(vendor: str, url: str) -> tuple[str, list[str]]:
    output = run("check", config(vendor, url), timeout=120)
    assert output.returncode == 0, output.stderr[-2000:]
    status = output.connection_status
    assert status["status"] == "FAILED"
    assert "Traceback" not in output.text
    return status["message"], output.logs()


@pytest.mark.parametrize("vendor", VENDORS)
def test_check_of_a_closed_port_says_the_connection_was_refused(
        vendor: str, closed_port: int) -> None:
    message, logs = failed_check(vendor, f"http://127.0.0.1:{closed_port}")
    assert message == (f"Could not connect to 127.0.0.1:{closed_port} (the connection was "
                       "refused): check base_url.")
    assert not [line for line in logs if line.startswith("Retrying")]


@pytest.mark.parametrize("vendor", VENDORS)
def test_check_of_a_name_that_does_not_resolve_says_so(vendor: str) -> None:
    message, logs = failed_check(vendor, "https://api.example.invalid")
    assert message == ("Could not connect to api.example.invalid (the name does not resolve): "
                       "check base_url.")
    assert not [line for line in logs if line.startswith("Retrying")]


@pytest.mark.parametrize("vendor", VENDORS)
def test_check_of_a_server_that_speaks_no_tls_says_the_handshake_failed(
        vendor: str, html_server: ThreadingHTTPServer) -> None:
    port = html_server.server_address[1]
    message, _ = failed_check(vendor, f"https://127.0.0.1:{port}")
    assert message == (f"Could not connect to 127.0.0.1:{port} (the TLS handshake failed): "
                       "check base_url.")


@pytest.mark.parametrize("vendor", VENDORS)
def test_check_of_a_server_of_html_pages_names_base_url(
        vendor: str, html_server: ThreadingHTTPServer) -> None:
    port = html_server.server_address[1]
    message, _ = failed_check(vendor, f"http://127.0.0.1:{port}")
    assert message.startswith(f"127.0.0.1:{port} answered ")
    assert message.endswith(" with HTTP 404 and an HTML page, not "
                            f"{ {'loke': 'LOKE'}.get(vendor, vendor.title())}'s API: "
                            "check base_url.")
    assert html_server.requests == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_read_that_gives_up_on_a_closed_port_says_the_same_words(
        vendor: str, closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    with in_process.recorded_sleeps(monkeypatch) as waits:
        output = in_process.read(config(vendor, f"http://127.0.0.1:{closed_port}"))
    assert waits, "a sync retries an address it cannot reach"
    expected = (f"Could not connect to 127.0.0.1:{closed_port} (the connection was refused): "
                "check base_url.")
    assert expected in output.errors
    assert not [e for e in output.errors if "Exhausted available request attempts" in e]


def test_check_of_capillarys_token_endpoint_at_a_closed_port_says_the_connection_was_refused(
        closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    output = run("check", {**config("capillary", url), "credentials": {
        "auth_type": "oauth", "client_key": "key-0000", "client_secret": "secret-0000"}})
    assert output.connection_status["message"] == (
        f"Could not connect to 127.0.0.1:{closed_port} (the connection was refused): "
        "check base_url.")
    assert not [line for line in output.logs() if line.startswith("Retrying")]
