"""A local HTTP server per vendor API, faithful to the vendors' docs, with switchable faults.

Each vendor runs on its own port at its own root (as the real hosts do), so the connector
is configured exactly as for production but with `base_url` pointing at 127.0.0.1. A
vendor module subclasses `VendorApi`, declares its routes and seeds its data; this module
owns the HTTP plumbing, request logging and fault injection shared by all of them.
"""

from __future__ import annotations

import copy
import io
import json
import random
import re
import socket
import struct
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
    # How the connection misbehaves instead of sending this response normally (faults only):
    # "reset", "timeout" or "dropped"; see `Faults`.
    transport: str = ""

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[..., Response]


# Every fault kind the server knows, for tests that want them all.
FAULT_KINDS: tuple[str, ...] = (
    "429", "429-no-retry-after", "500", "502", "503", "html",
    "reset", "timeout", "truncated", "dropped",
)
# ... and those that only mean something to a write: "applied-lost" applies the request and
# then resets the connection. Kept out of FAULT_KINDS, which read suites deal from (for a
# read it would only be another "reset").
WRITE_FAULT_KINDS: tuple[str, ...] = (*FAULT_KINDS, "applied-lost", "applied-503")


@dataclass
class Faults:
    """What goes wrong, and how often.

    `rate` faults that share of requests at random (seeded), dealing `kinds` like cards so
    that any len(kinds) faults in a row hold each kind once; `every` faults each n-th request,
    cycling through `kinds`; `scheduled` faults the next requests in order ("" lets one pass).

    Kinds: "429" (with `Retry-After: retry_after`, or none when it is None),
    "429-no-retry-after", any other status code as a string ("500", "502", "503", ...: the
    vendor's error body), "html" (a proxy's 502 HTML page), "reset" (the connection is reset
    without a response), "timeout" (no answer for `stall` seconds; then the connection is
    closed if the client gave up, else answered late), "truncated" (the real response, its
    body cut in half and its Content-Length matching the cut: what a broken proxy passes on),
    "dropped" (the real response's headers promise the whole body, half of it is sent, the
    connection closes), "applied-lost" (the request is applied, routed to its handler so the
    vendor's state changes, then the connection is reset without a response: "applied, then
    the answer lost", what makes a blind retry of a create create twice), "applied-STATUS"
    (e.g. "applied-503": the request is applied, then a gateway in front of the vendor
    answers STATUS as `fault_response` makes it: applied, yet answered as a failure). A vendor
    module may add kinds of its own in `fault_response`.

    Which kinds apply the request: "truncated", "dropped" and "applied-..." always do (the
    handler runs, its answer is cut or lost); "timeout" does only when the client is still
    waiting at the end of the stall (it is then answered late); every other kind never does.
    E.g. `api.set_faults(scheduled=["", "applied-lost"])`: the next request passes, the one
    after it is applied and its answer lost.
    """

    rate: float = 0.0
    every: int = 0
    kinds: tuple[str, ...] = ("429", "500", "502", "503")
    retry_after: str | None = "1"
    seed: int = 7
    scheduled: list[str] = field(default_factory=list)  # faults for the next requests, in order
    stall: float = 2.0  # seconds a "timeout" fault keeps the client waiting

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._count = 0
        self._deck: list[str] = []

    def draw(self) -> str | None:
        self._count += 1
        if self.scheduled:
            return self.scheduled.pop(0)
        if self.every and self._count % self.every == 0:
            return self.kinds[(self._count // self.every - 1) % len(self.kinds)]
        if self.rate and self._random.random() < self.rate:
            if not self._deck:  # dealt like cards: each kind once in every len(kinds) faults
                self._deck = list(self.kinds)
                self._random.shuffle(self._deck)
            return self._deck.pop()
        return None


class VendorApi:
    """One vendor's API. Subclasses add routes with `self.route(method, pattern, handler)`."""

    name = "vendor"

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults = Faults()
        self.requests: list[Request] = []
        self.faulted: list[str] = []  # the faults served, in order: proof a test met them
        self.abandoned = 0  # "timeout" faults whose client gave up waiting (closed first)
        # Alters every routed (non-fault) response before it is sent, on a deep copy of its
        # body: hostile-response tests make a well-behaved API misbehave with it.
        self.rewrite: Callable[[Request, Response], Response] | None = None
        self.stopping = threading.Event()  # set when the server stops: stalls end early
        self.lock = threading.RLock()
        self.stalling = 0  # "timeout" faults still keeping a client waiting
        self._stalls_over = threading.Condition(self.lock)
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
        if kind in ("reset", "timeout"):
            return Response(transport=kind)
        if kind == "applied-lost":
            self.route_response(request)  # the vendor's state changes; nobody hears of it
            return Response(transport="reset")
        if kind and kind.startswith("applied-"):
            self.route_response(request)
            return self.fault_response(kind.removeprefix("applied-"))
        if kind == "429-no-retry-after":
            response = self.fault_response("429")
            response.headers.pop("Retry-After", None)
            return response
        if kind and kind not in ("truncated", "dropped"):
            return self.fault_response(kind)
        response = self.route_response(request)
        if kind:  # "truncated" or "dropped": the real answer, cut
            payload = response.encode()
            cut = payload[:len(payload) // 2]
            if kind == "dropped":
                response.headers["Content-Length"] = str(len(payload))
            return Response(response.status, raw=cut, headers=response.headers, transport=kind)
        return response

    def wait_for_stalls(self, timeout: float = 30.0) -> None:
        """Returns once no "timeout" fault is still stalling (so `abandoned` is final)."""
        with self._stalls_over:
            self._stalls_over.wait_for(lambda: self.stalling == 0, timeout)

    def stall(self, client_left: Callable[[], bool]) -> bool:
        """Keeps a request waiting for the faults' `stall` seconds; whether its client left."""
        with self.lock:
            self.stalling += 1
        try:
            self.stopping.wait(self.faults.stall)
            left = client_left()
            if left:
                with self.lock:
                    self.abandoned += 1
            return left
        finally:
            with self._stalls_over:
                self.stalling -= 1
                self._stalls_over.notify_all()

    def route_response(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                denied = self.authenticate(request) or self.rate_limit(request)
                response = denied or handler(request, **match.groupdict())
                if self.rewrite:
                    response.body = copy.deepcopy(response.body)
                    response = self.rewrite(request, response)
                return response
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
        if response.transport == "reset":
            self._reset()
            return
        if response.transport == "timeout":
            if self.api.stall(self._client_left):
                self.close_connection = True
                return
            response = self.api.route_response(request)  # a client without a timeout waited
        payload = response.encode()
        self.send_response(response.status)
        typed = {"Content-Type": "application/json"} if payload or response.status != 204 else {}
        headers = {**typed, "Content-Length": str(len(payload)), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        if response.transport == "dropped":
            self.wfile.flush()
            self.close_connection = True

    def _reset(self) -> None:
        """Closes the connection with a TCP reset, sending nothing."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Closing every reference closes the socket now, before the server's usual shutdown
        # (which would send a FIN first); with a zero linger that close is a reset.
        self.rfile.close()
        self.wfile.close()
        self.wfile = io.BytesIO()  # what the server still flushes and closes goes nowhere
        self.connection.close()

    def _client_left(self) -> bool:
        """Whether the client has closed its end (it gave up waiting)."""
        self.connection.setblocking(False)
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False  # still connected, nothing sent
        except OSError:
            return True
        finally:
            self.connection.setblocking(True)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class Server:
    """Serves one `VendorApi` on 127.0.0.1 in a background thread."""

    def __init__(self, api: VendorApi, port: int = 0) -> None:
        handler = type("Handler", (_RequestHandler,), {"api": api})
        self.api = api
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        # A short poll: stop() waits for the loop to notice, once per server in every test.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.api.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
