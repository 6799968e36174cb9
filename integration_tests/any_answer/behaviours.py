"""What the scripted server may do with one request, and Hypothesis strategies for scripts.

A script is a list of behaviours: the n-th request the server receives (retries included)
meets the n-th behaviour; requests past the end of the script are answered properly. Each
behaviour's repr is short and valid Python, so a shrunk failing script can be pasted into a
regression test as it is printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st


@dataclass(frozen=True)
class Ok:
    """The sandbox's real answer, after `delay` seconds (well within the deadline)."""

    delay: float = 0.0

    def __repr__(self) -> str:
        return f"Ok({self.delay})" if self.delay else "Ok()"


@dataclass(frozen=True)
class Status:
    """This status, with the vendor's error body, and a Retry-After header if given:
    "1" (delta-seconds), "date:+5" (an HTTP-date 5 s from now), anything else verbatim."""

    code: int
    retry_after: str | None = None

    def __repr__(self) -> str:
        extra = f", {self.retry_after!r}" if self.retry_after is not None else ""
        return f"Status({self.code}{extra})"


@dataclass(frozen=True)
class Body:
    """A 200 whose body is not the real one: "wrapped" ({"data": real}), "error_object"
    ({"message": "Service temporarily unavailable"}), "truncated" (cut in half, with a
    matching Content-Length), "not_json" (an HTML page) or "empty". Only where the real
    answer is a 2xx; elsewhere the real answer is sent."""

    kind: str

    def __repr__(self) -> str:
        return f"Body({self.kind!r})"


@dataclass(frozen=True)
class Transport:
    """"reset": the connection is reset, nothing sent. "dropped": the headers promise the
    whole body, half of it comes, the connection closes. "stall": nothing is sent until the
    client gives up (or the server does, after `server.STALL_CAP` seconds)."""

    kind: str

    def __repr__(self) -> str:
        return f"Transport({self.kind!r})"


@dataclass(frozen=True)
class Trickle:
    """The real answer, its headers at once and its body a byte every `interval` seconds
    (until the client leaves or `server.TRICKLE_CAP` seconds pass, then the connection
    closes): each read is quick, the whole answer far longer than the deadline."""

    interval: float

    def __repr__(self) -> str:
        return f"Trickle({self.interval})"


@dataclass(frozen=True)
class Redirect:
    """"same": a 307 to the same URL on the same host (the redirected request meets the
    next behaviour). "loop": a 302 to itself, forever."""

    kind: str

    def __repr__(self) -> str:
        return f"Redirect({self.kind!r})"


@dataclass(frozen=True)
class NextLink:
    """The real answer with its next-page link (LOKE's X-Next-Page, Okendo's nextUrl)
    rewritten: "absolute" (a full URL on the same host), "path" (an absolute path),
    "other_host" (the same path on `localhost`), "repeat" (the page just read). Where the
    answer has no next link, the real answer is sent."""

    form: str

    def __repr__(self) -> str:
        return f"NextLink({self.form!r})"


Behaviour = Ok | Status | Body | Transport | Trickle | Redirect | NextLink


@dataclass(frozen=True)
class Oddity:
    """A record of `stream` (the `index`-th of the dataset, modulo its size) made odd:
    "pk_absent", "pk_null", "pk_empty", "cursor_null", "cursor_absent", "cursor_garbage",
    "cursor_ancient", "cursor_future_hour", "cursor_future_years"."""

    stream: str
    index: int
    kind: str

    def __repr__(self) -> str:
        return f"Oddity({self.stream!r}, {self.index}, {self.kind!r})"


@dataclass(frozen=True)
class Scenario:
    """One example: how the connector is configured, the odd records, the script."""

    auth: str
    incremental: bool
    oddities: tuple[Oddity, ...] = ()
    script: tuple[Behaviour, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        return (f"Scenario(auth={self.auth!r}, incremental={self.incremental}, "
                f"oddities={self.oddities!r}, script={self.script!r})")


RETRYABLE = (408, 429, 500, 502, 503, 504)
CAPILLARY_RETRYABLE = (461, 521)
# Every other status fails a sync at once (the vendors' documented 404 skips aside).
FATAL = (300, 304, 400, 401, 403, 404, 405, 409, 410, 414, 422, 431, 501, 505)

# Retry-After values: honoured (delta-seconds or an HTTP-date), nonsense (the exponential
# backoff applies), and 300 s or more (the sync fails rather than wait).
RETRY_AFTER_HONOURED = ("0", "1", "3", "date:+2", "date:-60")
RETRY_AFTER_NONSENSE = ("soon", "-5", "1e3", "", "Wed, 99 Foo 2024")
RETRY_AFTER_TOO_LONG = ("300", "86400", "date:+3600")

BODY_KINDS = ("wrapped", "error_object", "truncated", "not_json", "empty")
LINK_FORMS = ("absolute", "path", "other_host", "repeat")

PK_ODDITIES = ("pk_absent", "pk_null", "pk_empty")
CURSOR_ODDITIES = ("cursor_null", "cursor_absent", "cursor_garbage", "cursor_ancient",
                   "cursor_future_hour", "cursor_future_years")


def retry_after_too_long(value: str | None) -> bool:
    if value is None:
        return False
    if value.startswith("date:"):
        return int(value[5:]) >= 300
    return value.isdigit() and int(value) >= 300


def _retry_after(transient_only: bool) -> st.SearchStrategy[str | None]:
    choices = (None, *RETRY_AFTER_HONOURED, *RETRY_AFTER_NONSENSE)
    if not transient_only:
        choices += RETRY_AFTER_TOO_LONG
    return st.sampled_from(choices)


def behaviours(vendor: str, transient_only: bool = False) -> st.SearchStrategy[Behaviour]:
    """One request's behaviour; `transient_only` leaves out what must fail a sync."""
    retryable = RETRYABLE + (CAPILLARY_RETRYABLE if vendor == "capillary" else ())
    statuses = st.builds(Status, st.sampled_from(retryable), _retry_after(transient_only))
    if not transient_only:
        statuses = st.one_of(statuses, st.builds(Status, st.sampled_from(FATAL)))
    links = ("absolute", "path") if transient_only else LINK_FORMS
    redirects = ("same",) if transient_only else ("same", "loop")
    return st.one_of(
        st.builds(Ok, st.sampled_from((0.0, 0.05, 0.3))),
        statuses,
        st.builds(Body, st.sampled_from(BODY_KINDS)),
        st.builds(Transport, st.sampled_from(("reset", "dropped", "stall"))),
        st.builds(Trickle, st.sampled_from((0.05, 0.1, 0.2))),
        st.builds(Redirect, st.sampled_from(redirects)),
        st.builds(NextLink, st.sampled_from(links)),
    )


def scripts(vendor: str, transient_only: bool = False,
            max_size: int = 12) -> st.SearchStrategy[tuple[Behaviour, ...]]:
    """Scripts mostly of proper answers; with `transient_only`, at most `run` faults in a row
    (below every vendor's retries)."""
    mostly_ok = st.one_of(st.just(Ok()), st.just(Ok()), behaviours(vendor, transient_only))
    script = st.lists(mostly_ok, max_size=max_size).map(tuple)
    if transient_only:
        script = script.map(cap_fault_runs)
    return script


def cap_fault_runs(script: tuple[Behaviour, ...], most: int = 4) -> tuple[Behaviour, ...]:
    """The script with a proper answer after every `most` faults in a row."""
    capped: list[Behaviour] = []
    run = 0
    for behaviour in script:
        run = 0 if isinstance(behaviour, Ok) else run + 1
        if run > most:
            capped.append(Ok())
            run = 1
        capped.append(behaviour)
    return tuple(capped)


def longest_fault_run(script: tuple[Behaviour, ...]) -> int:
    longest = run = 0
    for behaviour in script:
        run = 0 if isinstance(behaviour, Ok) else run + 1
        longest = max(longest, run)
    return longest


def oddities(odd_streams: dict[str, tuple[bool, bool]], transient_only: bool = False,
             max_size: int = 2) -> st.SearchStrategy[tuple[Oddity, ...]]:
    """Odd records; `odd_streams` maps each stream to (has a server-sent key, has a cursor)."""
    pairs = [(stream, kind) for stream, (pk, cursor) in odd_streams.items()
             for kind in ((PK_ODDITIES if pk and not transient_only else ())
                          + (CURSOR_ODDITIES if cursor else ()))]
    if not pairs:
        return st.just(())
    one = st.builds(lambda pair, index: Oddity(pair[0], index, pair[1]),
                    st.sampled_from(pairs), st.integers(0, 40))
    return st.lists(one, max_size=max_size).map(tuple)


def scenarios(vendor: str, auths: tuple[str, ...], odd_streams: dict[str, tuple[bool, bool]],
              transient_only: bool = False) -> st.SearchStrategy[Scenario]:
    return st.builds(
        Scenario,
        auth=st.sampled_from(auths),
        incremental=st.booleans(),
        oddities=oddities(odd_streams, transient_only),
        script=scripts(vendor, transient_only),
    )
