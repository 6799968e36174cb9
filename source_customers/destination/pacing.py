"""Pacing of write requests, so that the vendor, counting requests as they arrive, never sees
more than its limit in any window.

The limits are the source manifest's `api_budget` (its policies' rates and matchers). The
CDK's budget cannot be used as it is: it counts a request when a thread is given its turn,
and the request reaches the vendor some time later (a connection opened, the thread waiting
for the interpreter, the network), by a different delay for each. A request counted at 0.00 s
that arrives at 0.05 s, and one counted at 60.00 s that arrives at 60.01 s, are 59.96 s apart
at the vendor: in one window (measured: 201 requests within 60 s at a budget of 200).

Here a request counts from the moment it is let go until its answer is read (it reaches the
vendor somewhere in between), and a request is let go only once the one `limit` before it
was answered a whole window, plus `MARGIN`, earlier. Whatever the delays, two requests
`limit` apart then arrive more than a window apart.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# A vendor may stamp arrivals to the whole second and count both ends of its window: two
# requests a window and a second apart are then still apart at the vendor. It costs a
# minute's window 1/60 of its requests; a shorter window keeps the same share (a second's
# window, Okendo's 2 requests a second, waits 1/60 s more, not a second).
MARGIN = 1.0


def margin(seconds: float) -> float:
    return min(MARGIN, seconds / 60)


@dataclass
class Window:
    """At most `limit` requests in any `seconds`, counted from let go to answered."""

    limit: int
    seconds: float
    margin: float = MARGIN
    # When each of the recent requests was answered, oldest first; older than the window
    # (and the margin) is dropped, so this holds at most `limit` times.
    answered: deque[float] = field(default_factory=deque)

    def wait(self, now: float, sending: int) -> float | None:
        """Seconds until one more request may go, with `sending` not yet answered; None
        while the requests not yet answered alone fill the window."""
        cutoff = now - self.seconds - self.margin
        while self.answered and self.answered[0] <= cutoff:
            self.answered.popleft()
        room = self.limit - 1 - sending  # how many answered times the window may still hold
        if room < 0:
            return None
        if len(self.answered) <= room:
            return 0.0
        return self.answered[len(self.answered) - room - 1] + self.seconds + self.margin - now


@dataclass
class Policy:
    """One policy of the budget: the requests it matches share its windows."""

    windows: list[Window]
    matches: Callable[[Any], bool]
    sending: int = 0  # let go, not yet answered


class Pacer:
    """The budget's policies, shared by every writing thread; a request takes the first
    policy that matches it (as the CDK's budget does), or goes unpaced."""

    def __init__(self, policies: Sequence[Policy],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policies = list(policies)
        self.clock = clock
        self._changed = threading.Condition()

    @contextmanager
    def turn(self, request: Any) -> Iterator[None]:
        """Holds the request until it may go; it counts until the block ends (answered, or
        failed)."""
        policy = next((p for p in self.policies if p.matches(request)), None)
        if policy is None:
            yield
            return
        with self._changed:
            while True:
                now = self.clock()
                waits = [w.wait(now, policy.sending) for w in policy.windows]
                if None in waits:
                    self._changed.wait()  # an answer comes: a request counts differently
                    continue
                longest = max((w for w in waits if w is not None), default=0.0)
                if longest <= 0:
                    break
                self._changed.wait(longest)
            policy.sending += 1
        try:
            yield
        finally:
            with self._changed:
                policy.sending -= 1
                answered = self.clock()
                for window in policy.windows:
                    window.answered.append(answered)
                self._changed.notify_all()


def everything(request: Any) -> bool:
    return True


def pacer(definition: Mapping[str, Any] | None,
          build: Callable[[Mapping[str, Any]], Any]) -> Pacer | None:
    """The pacer of a manifest's `api_budget` (None without one). `build` makes a CDK
    component of a definition: its rates (limit evaluated from the config, interval) and
    matchers are the CDK's own."""
    if not definition:
        return None
    policies = []
    for spec in definition.get("policies") or []:
        kind = spec.get("type")
        if kind == "UnlimitedCallRatePolicy":
            windows: list[Window] = []
        elif kind == "MovingWindowCallRatePolicy":
            # A manifest's rates and matchers may leave their type unsaid: the CDK's schema
            # has one for each.
            rates = [build({"type": "Rate", **rate}) for rate in spec.get("rates") or []]
            windows = [Window(int(r.limit), r.interval.total_seconds(),
                              margin(r.interval.total_seconds())) for r in rates]
        elif kind == "FixedWindowCallRatePolicy":
            # Any window of `period` within the limit is within it for every fixed period.
            period = build({"type": "Rate", "limit": spec["call_limit"],
                            "interval": spec["period"]})
            seconds = period.interval.total_seconds()
            windows = [Window(int(period.limit), seconds, margin(seconds))]
        else:
            raise ValueError(f"api_budget policy {kind!r} is not one the destination paces by")
        # Each request counts once: a matcher's `weight` is not read (no manifest sets one).
        matchers = [build({"type": "HttpRequestRegexMatcher", **m})
                    for m in spec.get("matchers") or []]
        policies.append(Policy(windows, _any_of(matchers) if matchers else everything))
    return Pacer(policies)


def _any_of(matchers: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    def matches(request: Any) -> bool:
        return any(matcher(request) for matcher in matchers)
    return matches
