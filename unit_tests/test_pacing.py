"""The destination's pacing: the vendor, counting requests as they arrive, never sees more than
its limit in any window, whatever each request's delay between being let go and arriving."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import requests
import requests_mock as rm
from airbyte_cdk.sources.declarative.models import declarative_component_schema as schema
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import (
    ModelToComponentFactory,
)

from source_customers.destination.objects import load_writes
from source_customers.destination.pacing import (
    MARGIN,
    Pacer,
    Policy,
    Window,
    everything,
    pacer,
)
from source_customers.destination.vendor_http import VendorHttp

CAPILLARY = {"vendor": "capillary", "base_url": "https://capillary.test",
             "credentials": {"auth_type": "basic", "username": "till", "password": "pw"}}


def test_a_request_waits_until_the_answer_limit_before_it_is_a_window_and_the_margin_old() -> None:
    window = Window(limit=2, seconds=60.0)
    window.answered.extend([10.0, 10.5])
    assert window.wait(now=20.0, sending=0) == 10.0 + 60.0 + MARGIN - 20.0
    assert window.wait(now=10.0 + 60.0 + MARGIN, sending=0) == 0.0


def test_requests_not_yet_answered_count_in_full() -> None:
    window = Window(limit=2, seconds=60.0)
    assert window.wait(now=0.0, sending=1) == 0.0
    assert window.wait(now=0.0, sending=2) is None  # until an answer comes
    window.answered.append(5.0)
    assert window.wait(now=6.0, sending=1) == 5.0 + 60.0 + MARGIN - 6.0


def test_answers_older_than_the_window_and_margin_are_forgotten() -> None:
    window = Window(limit=3, seconds=60.0)
    window.answered.extend([0.0, 1.0, 2.0])
    assert window.wait(now=61.5, sending=0) == 0.0
    assert list(window.answered) == [1.0, 2.0]  # the memory it holds is bounded by the window


def test_arrivals_limit_apart_are_over_a_window_apart_whatever_each_delay() -> None:
    """Eight threads; each request arrives a random delay after it is let go (as a connection
    opens, a thread waits for the interpreter) and is answered later still: counted only
    when let go (as the CDK's budget counts), such arrivals could crowd one window."""
    limit, seconds = 4, 0.25
    pacer = Pacer([Policy([Window(limit, seconds, margin=0.01)], everything)])
    arrivals: list[float] = []
    lock = threading.Lock()
    rng = random.Random(27)
    delays = [rng.uniform(0.0, 0.05) for _ in range(24)]

    def send(delay: float) -> None:
        with pacer.turn(None):
            threading.Event().wait(delay)  # the suite's time.sleep does not wait
            with lock:
                arrivals.append(time.monotonic())
            threading.Event().wait(0.005)  # the vendor's work before it answers

    def sends(mine: list[float]) -> None:
        for delay in mine:
            send(delay)

    threads = [threading.Thread(target=sends, args=(delays[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    arrivals.sort()
    assert len(arrivals) == 24
    assert all(arrivals[i + limit] - arrivals[i] > seconds for i in range(len(arrivals) - limit))


def test_a_request_that_fails_counts_from_its_failure() -> None:
    pacer = Pacer([Policy([Window(1, 60.0)], everything)], clock=lambda: 100.0)
    try:
        with pacer.turn(None):
            raise requests.ConnectionError("reset")
    except requests.ConnectionError:
        pass
    window = pacer.policies[0].windows[0]
    assert list(window.answered) == [100.0] and pacer.policies[0].sending == 0


def test_capillary_is_paced_by_its_requests_per_minute() -> None:
    http = VendorHttp(load_writes("capillary"), {**CAPILLARY, "requests_per_minute": 200})
    assert http.pacer is not None
    [policy] = http.pacer.policies
    assert [(w.limit, w.seconds) for w in policy.windows] == [(200, 60.0)]


def test_malomo_has_no_budget_and_is_not_paced() -> None:
    malomo = {"vendor": "malomo", "api_key": "sk_test_0123456789",
              "base_url": "https://malomo.test"}
    assert VendorHttp(load_writes("malomo"), malomo).pacer is None


def test_a_policy_paces_only_the_requests_its_matchers_match() -> None:
    def build(definition: Any) -> Any:
        return ModelToComponentFactory().create_component(
            model_type=getattr(schema, definition["type"]), component_definition=definition,
            config={})

    paced = pacer({"type": "HTTPAPIBudget", "policies": [{
        "type": "MovingWindowCallRatePolicy",
        "rates": [{"type": "Rate", "limit": 1, "interval": "PT1M"}],
        "matchers": [{"type": "HttpRequestRegexMatcher", "url_path_pattern": "/lookup"}]}]},
        build)
    assert paced is not None
    lookup = requests.Request("PUT", "https://capillary.test/v2/customers/lookup").prepare()
    other = requests.Request("GET", "https://capillary.test/v2/other").prepare()
    with paced.turn(lookup):
        pass
    for _ in range(3):  # unmatched: never held, though the policy's one request is spent
        with paced.turn(other):
            pass
    assert paced.policies[0].windows[0].wait(time.monotonic(), 0) > 0


def test_every_attempt_is_paced_a_429_retried_included() -> None:
    http = VendorHttp(load_writes("capillary"), {**CAPILLARY, "requests_per_minute": 100})
    assert http.pacer is not None
    window = http.pacer.policies[0].windows[0]
    writes = load_writes("capillary")
    endpoint = writes.check
    with rm.Mocker() as mock:
        mock.register_uri(endpoint.method, rm.ANY, [
            {"status_code": 429, "json": {}}, {"status_code": 200, "json": {}}])
        http._wait = lambda attempt, asked: 0.0  # type: ignore[method-assign]
        http.send(endpoint, http.values({}))
    assert len(window.answered) == 2


def test_the_environment_is_read_once_and_still_honoured(monkeypatch: Any) -> None:
    """Proxies and the CA bundle come from the environment as `requests` reads them, once
    per sync rather than for every request."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/bundle.pem")
    http = VendorHttp(load_writes("capillary"), CAPILLARY)
    assert http.session.proxies.get("https") == "http://proxy.test:3128"
    assert http.session.verify == "/etc/ssl/certs/bundle.pem"
    assert not http.session.trust_env


def test_a_request_carries_the_sessions_default_headers_and_the_manifests() -> None:
    http = VendorHttp(load_writes("capillary"), {**CAPILLARY, "num_workers": 16})
    endpoint = load_writes("capillary").check
    with rm.Mocker() as mock:
        mock.register_uri(endpoint.method, rm.ANY, json={})
        http.send(endpoint, http.values({}))
        headers = mock.request_history[0].headers
    assert headers["Accept"] == "application/json"
    assert "gzip" in headers["Accept-Encoding"] and headers["User-Agent"]
    assert headers["Authorization"].startswith("Basic ")
    adapter = http.session.get_adapter("https://capillary.test")
    assert adapter._pool_maxsize == 16  # type: ignore[attr-defined]  # a connection a worker


def test_the_margin_is_a_sixtieth_of_the_window_and_at_most_a_second() -> None:
    from source_customers.destination.pacing import margin

    assert margin(60.0) == MARGIN == 1.0
    assert margin(3600.0) == 1.0
    assert margin(1.0) == 1 / 60  # Okendo's 2 requests a second stay 2, not 1
