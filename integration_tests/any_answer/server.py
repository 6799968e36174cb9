"""A scripted HTTP server: each request meets the script's next behaviour, then the real API.

The vendor's sandbox API (integration_tests/sandbox) computes the real answer (auth, routes,
paging); this server decides what is actually sent: that answer, or a fault made of it. It
logs every request with what it met and what that means for the sync (`Served`), which is
what the oracle judges the CLI's outcome by.
"""

from __future__ import annotations

import copy
import io
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from integration_tests.any_answer.behaviours import (
    CAPILLARY_RETRYABLE,
    RETRYABLE,
    Behaviour,
    Body,
    NextLink,
    Ok,
    Redirect,
    Status,
    Transport,
    Trickle,
    retry_after_too_long,
)
from integration_tests.any_answer.world import Keys, World
from integration_tests.sandbox.server import Request, Response

DEADLINE = 1.0  # seconds: the launcher's deadline for every request
STALL_CAP = 3.0  # seconds a silent server waits for its client to give up, then closes
TRICKLE_CAP = 3.0  # seconds a trickle lasts at most, then the connection closes
HELD_TOO_LONG = DEADLINE + 1.0  # a client still waiting after this ignored its deadline

HOP, LOOP = "_aa_hop", "_aa_loop"  # query markers of the server's own redirects

TIMEOUT_WORDS = ("timeout", "timed out", "deadline")
CONNECTION_WORDS = ("reset", "connection", "aborted", "closed", "dropped", "incomplete",
                    "broken", "remote end")
JSON_WORDS = ("not json", "json")
SHAPE_WORDS = ("shape", "json", "expected", "unexpected", "not a list", "format",
               "service temporarily unavailable")
MAINTENANCE = b"<html><body><h1>Down for maintenance</h1></body></html>"


@dataclass
class Served:
    """One request as the server saw it, and what it met."""

    n: int  # arrival order (-1: not in the script's order, e.g. a redirect loop's hops)
    method: str
    target: str  # path and query, as the client sent them (markers removed)
    host: str
    behaviour: Behaviour
    effect: str = "benign"  # benign | transient | fatal | skip | none (not applicable)
    note: str = ""
    words: tuple[str, ...] = ()  # what an error message about it may say (any of them)
    held: float | None = None  # stall/trickle: seconds until the client left (None: never)
    skipped: Keys = field(default_factory=dict)  # records a documented-skip 404 may drop
    token: bool = False  # a token request
    retries: int = 0  # how often the connector retries this request
    started: float = 0.0  # time.monotonic() when it arrived

    @property
    def faulted(self) -> bool:
        return self.effect in ("transient", "fatal", "skip")

    def line(self) -> str:
        held = "" if not (self.behaviour == Transport("stall")
                          or isinstance(self.behaviour, Trickle)) \
            else f" held={'never left' if self.held is None else f'{self.held:.2f}s'}"
        note = f" ({self.note})" if self.note else ""
        return (f"#{self.n:<3} {self.method} {self.target[:110]} -> {self.behaviour!r} "
                f"[{self.effect}]{note}{held}")


class ScriptedServer:
    """Serves `world.api` on 127.0.0.1, faulting requests as `script` says."""

    def __init__(self, world: World, script: tuple[Behaviour, ...]) -> None:
        self.world = world
        self.script = list(script)
        self.log: list[Served] = []
        self.foreign: list[str] = []  # requests that reached another host name
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self.world.api.public_url = self.url
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_behaviour(self, served: Served) -> None:
        with self.lock:
            served.n = len(self.log)
            served.behaviour = self.script[served.n] if served.n < len(self.script) else Ok()
            self.log.append(served)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that resets or leaves mid-answer is what the tests do on purpose


class _Handler(BaseHTTPRequestHandler):
    server_state: ScriptedServer
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- reading the request ------------------------------------------------------------
    def _serve(self) -> None:
        state = self.server_state
        world = state.world
        parts = urlsplit(self.path)
        pairs = [p for p in parts.query.split("&") if p]
        markers = {p.partition("=")[0]: p.partition("=")[2] for p in pairs
                   if p.startswith((HOP + "=", LOOP + "="))}
        raw_query = "&".join(p for p in pairs if not p.startswith((HOP + "=", LOOP + "=")))
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command, path=parts.path,
            query={k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"", raw_query=raw_query)
        target = parts.path + ("?" + raw_query if raw_query else "")
        host = self.headers.get("Host", "")
        if not host.startswith("127.0.0.1"):
            with state.lock:
                state.foreign.append(f"{self.command} {host}{target}")
        if LOOP in markers:  # a redirect loop goes on without the script
            self._send(Response(302, {"message": "Found"}, {
                "Location": _with(target, LOOP, int(markers[LOOP]) + 1)}))
            return
        served = Served(-1, self.command, target, host, Ok(), started=time.monotonic(),
                        token=world.is_token_request(request),
                        retries=world.retries_for(request))
        state.next_behaviour(served)
        try:
            real = world.api.route_response(request)
        except Exception as error:  # a sandbox bug must show, not hang the client
            real = Response(500, {"message": f"sandbox error: {error!r}"})
        if 200 <= real.status < 300 and real.raw is None:
            real.body = world.make_odd(request, copy.deepcopy(real.body))
        self._act(served, request, real)

    # --- answering ----------------------------------------------------------------------
    def _act(self, served: Served, request: Request, real: Response) -> None:
        behaviour = served.behaviour
        ok = 200 <= real.status < 300
        if isinstance(behaviour, Ok):
            if behaviour.delay:
                time.sleep(behaviour.delay)
            self._send(real)
        elif isinstance(behaviour, Status):
            self._status(served, request, behaviour)
        elif isinstance(behaviour, Body):
            if not ok:
                served.effect, served.note = "none", f"real answer is HTTP {real.status}"
                self._send(real)
                return
            served.effect = "transient"
            served.words = JSON_WORDS if behaviour.kind in ("truncated", "not_json", "empty") \
                else SHAPE_WORDS
            payload = real.encode()
            if behaviour.kind == "wrapped":
                self._send(Response(200, {"data": real.body}))
            elif behaviour.kind == "error_object":
                self._send(Response(200, {"message": "Service temporarily unavailable"}))
            elif behaviour.kind == "truncated":
                self._send(Response(200, raw=payload[:len(payload) // 2]))
            elif behaviour.kind == "not_json":
                self._send(Response(200, raw=MAINTENANCE, headers={"Content-Type": "text/html"}))
            else:
                self._send(Response(200, raw=b""))
        elif isinstance(behaviour, Transport):
            served.effect = "transient"
            if behaviour.kind == "reset":
                served.words = CONNECTION_WORDS
                self._reset()
            elif behaviour.kind == "dropped":
                served.words = CONNECTION_WORDS
                payload = real.encode()
                self._send(real, payload[:len(payload) // 2], length=len(payload))
                self.close_connection = True
            else:
                served.words = TIMEOUT_WORDS
                served.held = self._stall()
                self.close_connection = True
        elif isinstance(behaviour, Trickle):
            payload = real.encode()
            if len(payload) * behaviour.interval > 2 * DEADLINE:
                served.effect, served.words = "transient", TIMEOUT_WORDS
            else:
                served.note = f"{len(payload)} bytes: within the deadline"
            served.held = self._trickle(real, payload, behaviour.interval)
        elif isinstance(behaviour, Redirect):
            if behaviour.kind == "same" and served.token:
                # Documented: neither token request follows a redirect (a 307 would send
                # the secret again), so the sync fails naming the status.
                served.effect, served.words = "fatal", ("307", "redirect")
                served.note = "a token request follows no redirect"
                self._send(Response(307, {"message": "Temporary Redirect"}, {
                    "Location": _with(served.target, HOP, served.n)}))
            elif behaviour.kind == "same":
                self._send(Response(307, {"message": "Temporary Redirect"}, {
                    "Location": _with(served.target, HOP, served.n)}))
            else:
                served.effect, served.words = "fatal", ("redirect",)
                self._send(Response(302, {"message": "Found"}, {
                    "Location": _with(served.target, LOOP, 1)}))
        else:
            self._next_link(served, request, real, behaviour)

    def _status(self, served: Served, request: Request, behaviour: Status) -> None:
        world = self.server_state.world
        code = behaviour.code
        retryable = RETRYABLE + (CAPILLARY_RETRYABLE if world.vendor == "capillary" else ())
        words: tuple[str, ...] = (str(code),)
        if code == 404 and _documented_skip(world, request):
            served.effect = "skip"
            served.skipped = world.skipped_by_404(request)
            served.note = "a documented skip"
        elif code == 403 and _product_endpoint(world, request):
            served.effect = "skip"
            served.skipped = world.skipped_by_403(request)
            served.note = "a store without the product (documented)"
        elif code in retryable:
            if retry_after_too_long(behaviour.retry_after):
                served.effect = "fatal"
                words += ("retry-after", "rate limit", "wait")
            else:
                served.effect = "transient"
                if code == 429:
                    words += ("rate limit", "too many")
        else:
            served.effect = "fatal"
            if 300 <= code < 400:
                words += ("redirect",)
        served.words = words
        if code == 304:
            response = Response(304, raw=b"")
        else:
            try:
                response = world.api.fault_response(str(code))
            except Exception:
                response = Response(code, {"message": "Internal error"})
            response.status = code
        response.headers = {k: v for k, v in response.headers.items() if k != "Retry-After"}
        if behaviour.retry_after is not None:
            response.headers["Retry-After"] = _retry_after_value(behaviour.retry_after)
        self._send(response)

    def _next_link(self, served: Served, request: Request, real: Response,
                   behaviour: NextLink) -> None:
        state = self.server_state
        base_path = state.world.base_path
        link = real.headers.get("X-Next-Page")
        in_body = isinstance(real.body, dict) and bool(real.body.get("nextUrl"))
        if in_body:
            link = str(real.body["nextUrl"])
        if not link:
            served.effect, served.note = "none", "no next link"
            self._send(real)
            return
        if link.startswith("http"):
            link = "/" + link.split("/", 3)[3]
        path = link if link.startswith(base_path + "/") else base_path + link
        if behaviour.form == "absolute":
            new = state.url + path
        elif behaviour.form == "path":
            new = path
        elif behaviour.form == "other_host":
            new = f"http://localhost:{state.port}{path}"
            served.effect = "fatal"
            served.words = ("another host", "next-page link", "next link")
        else:  # the page just read
            new = served.target.removeprefix(base_path) if in_body else served.target
            served.effect = "fatal"
            served.words = ("same next-page link", "next-page", "repeat", "loop")
        served.note = f"link {new[:90]}"
        if in_body:
            real.body["nextUrl"] = new
        else:
            real.headers["X-Next-Page"] = new
        self._send(real)

    # --- transport ----------------------------------------------------------------------
    def _send(self, response: Response, payload: bytes | None = None,
              length: int | None = None) -> None:
        body = response.encode() if payload is None else payload
        self.send_response(response.status)
        headers = {"Content-Type": "application/json",
                   "Content-Length": str(len(body) if length is None else length),
                   **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset(self) -> None:
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.wfile = io.BytesIO()
        self.connection.close()

    def _client_left(self) -> bool:
        self.connection.setblocking(False)
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self.connection.setblocking(True)

    def _stall(self) -> float | None:
        """Sends nothing; returns how long the client waited before leaving (None: never)."""
        start = time.monotonic()
        while time.monotonic() - start < STALL_CAP:
            if self._client_left():
                return time.monotonic() - start
            if self.server_state.stopping.wait(0.02):  # the CLI has exited
                return time.monotonic() - start
        return None

    def _trickle(self, real: Response, payload: bytes, interval: float) -> float | None:
        self.send_response(real.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                   **real.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        start = time.monotonic()
        try:
            for i in range(len(payload)):
                if self._client_left():
                    self.close_connection = True
                    return time.monotonic() - start
                if time.monotonic() - start > TRICKLE_CAP:
                    self.close_connection = True
                    return None
                self.wfile.write(payload[i:i + 1])
                self.wfile.flush()
                if self.server_state.stopping.wait(interval):  # the CLI has exited
                    return time.monotonic() - start
        except OSError:
            self.close_connection = True
            return time.monotonic() - start
        return 0.0  # all sent within the deadline: the client did not need to leave

    do_GET = do_POST = do_PUT = do_DELETE = _serve


def _with(target: str, marker: str, value: int) -> str:
    return target + ("&" if "?" in target else "?") + f"{marker}={value}"


def _retry_after_value(spec: str) -> str:
    if spec.startswith("date:"):
        when = datetime.now(timezone.utc) + timedelta(seconds=int(spec[5:]))
        return format_datetime(when, usegmt=True)
    return spec


def _documented_skip(world: World, request: Request) -> bool:
    """Where the vendors document a 404 as "nothing there" and the connector skips it."""
    stream, _ = world.stream_of(request)
    if world.vendor == "loke":
        return stream == "customer_memberships"
    if world.vendor == "malomo":
        return stream == "customer_events"
    if world.vendor == "okendo":
        return stream in OKENDO_PER_CUSTOMER or request.path.endswith("/customer_lookup")
    return False


OKENDO_PER_CUSTOMER = ("customers", "customer_profiles", "customer_activities",
                       "loyalty_customers")


def _product_endpoint(world: World, request: Request) -> bool:
    """Okendo's reviews and loyalty endpoints answer 403 for a store without the product."""
    stream, _ = world.stream_of(request)
    return world.vendor == "okendo" and stream is not None and (
        stream == "reviews" or stream.startswith("loyalty_"))


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
