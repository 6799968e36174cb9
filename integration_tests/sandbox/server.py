"""A local HTTP server per vendor API, faithful to the vendors' docs, with switchable faults.

Each vendor runs on its own port at its own root (as the real hosts do), so the connector
is configured exactly as for production but with `base_url` pointing at 127.0.0.1. A
vendor module subclasses `VendorApi`, declares its routes and seeds its data; this module
owns the HTTP plumbing, request logging and fault injection shared by all of them.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_query: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as-is instead of `body` encoded as JSON

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[..., Response]


@dataclass
class Faults:
    """What goes wrong, and how often.

    `rate` faults that share of requests at random (seeded); `every` faults each n-th request,
    cycling through `kinds`; `scheduled` faults the next requests in order.
    """

    rate: float = 0.0
    every: int = 0
    kinds: tuple[str, ...] = ("429", "500", "502", "503")
    retry_after: str | None = "1"
    seed: int = 7
    scheduled: list[str] = field(default_factory=list)  # faults for the next requests, in order

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._count = 0

    def draw(self) -> str | None:
        self._count += 1
        if self.scheduled:
            return self.scheduled.pop(0)
        if self.every and self._count % self.every == 0:
            return self.kinds[(self._count // self.every - 1) % len(self.kinds)]
        if self.rate and self._random.random() < self.rate:
            return self._random.choice(self.kinds)
        return None


class VendorApi:
    """One vendor's API. Subclasses add routes with `self.route(method, pattern, handler)`."""

    name = "vendor"

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults = Faults()
        self.requests: list[Request] = []
        self.faulted: list[str] = []  # the faults served, in order: proof a test met them
        self.lock = threading.RLock()
        self.latency = 0.0  # seconds added to every request, to stand in for the internet
        self.public_url = ""  # where the server listens, for links the API hands back

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    # Hooks for subclasses.
    def authenticate(self, request: Request) -> Response | None:
        """An error response when the request's credentials are not accepted."""
        return None

    def rate_limit(self, request: Request) -> Response | None:
        return None

    def fault_response(self, kind: str) -> Response:
        if kind == "429":
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
            return Response(429, {"message": "Too Many Requests"}, headers)
        if kind == "html":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return Response(502, raw=page, headers={"Content-Type": "text/html"})
        return Response(int(kind), {"message": "Internal error"})

    def set_faults(self, **kwargs: Any) -> None:
        with self.lock:
            self.faults = Faults(**kwargs)

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
            kind = self.faults.draw()
            if kind:
                self.faulted.append(kind)
        if self.latency:
            time.sleep(self.latency)
        if kind:
            return self.fault_response(kind)
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                denied = self.authenticate(request) or self.rate_limit(request)
                if denied:
                    return denied
                return handler(request, **match.groupdict())
        return Response(404, {"message": f"no route for {request.method} {request.path}"})


class _RequestHandler(BaseHTTPRequestHandler):
    api: VendorApi
    protocol_version = "HTTP/1.1"
    # One write per response: headers and body in separate small packets meet the client's
    # delayed ACK and cost ~40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read `api.requests`; stderr stays quiet

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            raw_query=parts.query,
        )
        try:
            response = self.api.handle(request)
        except Exception as error:  # a sandbox bug must show, not hang the client
            response = Response(500, {"message": f"sandbox error: {error!r}"})
        payload = response.encode()
        self.send_response(response.status)
        headers = {"Content-Type": "application/json", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class Server:
    """Serves one `VendorApi` on 127.0.0.1 in a background thread."""

    def __init__(self, api: VendorApi, port: int = 0) -> None:
        handler = type("Handler", (_RequestHandler,), {"api": api})
        self.api = api
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
