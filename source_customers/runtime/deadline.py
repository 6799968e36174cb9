"""A total deadline for every request: `requests` bounds the wait for each byte, not for
the answer, so a server that trickles a byte a second would hold a sync forever. Every
request passes here, so here too a request whose sender follows redirects can be kept from
following one (`redirects_refused`)."""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import contextlib
import heapq
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from source_customers.runtime.progress import count_request

# A request sent without a timeout (the CDK's OAuth token request sets none) gets this.
DEFAULT_DEADLINE_SECONDS = 60.0
# What the deadline wraps, as they were when it was installed.
_requests_send = HTTPAdapter.send
_urllib3_getresponse = HTTPConnection.getresponse


class _Deadline:
    """One request's deadline, and the socket its answer is read from."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.sock: socket.socket | None = None
        self.done = False
        self.expired = False


class _Watchdog:
    """Shuts the socket of every request still unanswered at its deadline.

    One daemon thread for the process, asleep until the earliest deadline: a request costs
    a heap push, not a thread of its own (which cost a sync a fifth of its time in handing
    the interpreter between threads).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._count = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            # Answered requests leave as new ones come: left to the watchdog, which wakes at
            # the earliest deadline, a minute's requests would be held (the destination's
            # memory grew with its input, about 200 bytes a request, until a minute of them).
            while self._heap and self._heap[0][2].done:
                heapq.heappop(self._heap)
            self._count += 1
            heapq.heappush(self._heap, (deadline.at, self._count, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                deadline.expired = True
                if deadline.sock is not None:
                    with contextlib.suppress(OSError):
                        deadline.sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
# .deadline: the request this thread is sending, if any; .no_redirects: see below
_current = threading.local()


@contextlib.contextmanager
def redirects_refused() -> Iterator[None]:
    """Meanwhile, this thread's requests follow no redirect: an answer that redirects raises
    `requests.HTTPError` (carrying that answer) before `requests` would send the request
    again, body and all, where it points. For a request whose body holds a secret, sent by
    code that follows redirects (the CDK's OAuth token request)."""
    before = getattr(_current, "no_redirects", False)
    _current.no_redirects = True
    try:
        yield
    finally:
        _current.no_redirects = before


def send_within_deadline(
    adapter: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any
) -> requests.Response:
    """`HTTPAdapter.send`, given up once the whole answer has taken longer than its deadline.

    `requests`' read timeout bounds the wait for each byte, not for the answer: a server
    that trickles a byte a second holds a sync forever. The deadline is the read timeout
    (`DEFAULT_DEADLINE_SECONDS` if none was set), from sending to the last byte of the body,
    which is read here (`requests` reads it after `send`). At the deadline the watchdog
    shuts the connection's socket, and the request raises `ReadTimeout`, which every retry
    loop treats as a timeout.
    """
    count_request()
    timeout = kwargs.get("timeout")
    if timeout is None:
        seconds = DEFAULT_DEADLINE_SECONDS
        kwargs["timeout"] = (min(30.0, seconds), seconds)
    else:
        read = timeout[1] if isinstance(timeout, tuple) else timeout
        seconds = float(read) if isinstance(read, (int, float)) else DEFAULT_DEADLINE_SECONDS
    deadline = _current.deadline = _Deadline(time.monotonic() + seconds)
    _WATCHDOG.watch(deadline)
    try:
        response = _requests_send(adapter, request, *args, **kwargs)
        if not kwargs.get("stream"):
            response.content  # noqa: B018  read within the deadline
        if response.is_redirect and getattr(_current, "no_redirects", False):
            raise requests.exceptions.HTTPError(
                f"redirected (HTTP {response.status_code}); not followed", response=response)
        return response
    except requests.exceptions.RequestException:
        if not deadline.expired:
            raise
        raise requests.exceptions.ReadTimeout(
            f"no complete answer within {seconds:g} s (the request's deadline)", request=request
        ) from None
    finally:
        deadline.done, deadline.sock, _current.deadline = True, None, None


def getresponse_watched(connection: HTTPConnection, *args: Any, **kwargs: Any) -> Any:
    """urllib3's `getresponse`, its socket handed to the watchdog first: the answer, status
    line and headers included, is read from it."""
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None and deadline.sock is None:
        deadline.sock = connection.sock
        if deadline.expired and connection.sock is not None:  # expired while connecting
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
    return _urllib3_getresponse(connection, *args, **kwargs)


def install_deadline() -> None:
    """Sends every request of the process within its deadline (runtime/hooks.py checks
    `HTTPAdapter.send` and `HTTPConnection.getresponse` first)."""
    global _requests_send, _urllib3_getresponse
    # Once per process, however often this module is loaded (the platform's runner may load
    # the components file under two names).
    if getattr(HTTPAdapter.send, "__name__", "") == send_within_deadline.__name__:
        return
    _requests_send, _urllib3_getresponse = HTTPAdapter.send, HTTPConnection.getresponse
    send_within_deadline.__wrapped__ = _requests_send  # type: ignore[attr-defined]
    getresponse_watched.__wrapped__ = _urllib3_getresponse  # type: ignore[attr-defined]
    HTTPAdapter.send = send_within_deadline  # type: ignore[method-assign,assignment]
    HTTPConnection.getresponse = getresponse_watched  # type: ignore[method-assign,assignment]
