"""Progress as a user sees it: the installed CLI against the sandbox, told every 0.2 s.

While a stream runs: a LOG line per running stream at every interval. Where the count is
known before reading: ESTIMATE traces. At each stream's end: one summary line. A failed sync
names its cause once. The interval is shortened by SOURCE_CUSTOMERS_PROGRESS_SECONDS; no test
asserts a timing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest

from integration_tests.cli import Output, catalog_for, run
from integration_tests.sandbox import capillary, loke, malomo, okendo
from integration_tests.sandbox.server import Server, VendorApi

ENV = {**os.environ, "SOURCE_CUSTOMERS_PROGRESS_SECONDS": "0.2"}
SUMMARY = re.compile(
    r"^Stream '(?P<stream>[^']+)' (?P<outcome>done|failed) in [^:]+: (?P<records>[\d,]+) "
    r"records?, (?P<requests>[\d,]+) requests?; retries: (?P<retries>.+) \(.+\); "
    r"skipped: (?P<skips>.+)\.$")


def read(config: dict[str, Any], *streams: str) -> Output:
    return run("read", config, catalog_for(run("discover", config), *streams), env=ENV)


def summaries(output: Output) -> dict[str, re.Match[str]]:
    """Each stream's summary line; fails if a stream has two."""
    found = [m for m in map(SUMMARY.match, output.logs("INFO")) if m]
    streams = [m["stream"] for m in found]
    assert len(streams) == len(set(streams)), streams
    return {m["stream"]: m for m in found}


def counts(said: str) -> dict[str, int]:
    """`3 \u00d7 HTTP 429, 1 \u00d7 timeout` as {"HTTP 429": 3, "timeout": 1}; "none": {}."""
    if said == "none":
        return {}
    return {cause: int(n) for n, cause in (part.split(" \u00d7 ") for part in said.split(", "))}


def estimates(output: Output, stream: str) -> list[int]:
    return [m["trace"]["estimate"]["row_estimate"] for m in output.of_type("TRACE")
            if m["trace"]["type"] == "ESTIMATE" and m["trace"]["estimate"]["name"] == stream]


def assert_told_while_running(output: Output, stream: str) -> None:
    """A progress line for `stream` between its STARTED and COMPLETE statuses."""
    def status(kind: str) -> int:
        (index,) = [i for i, m in enumerate(output.messages) if m["type"] == "TRACE"
                    and m["trace"]["type"] == "STREAM_STATUS"
                    and m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream
                    and m["trace"]["stream_status"]["status"] == kind]
        return index

    told = [i for i, m in enumerate(output.messages) if m["type"] == "LOG"
            and m["log"]["message"].startswith(f"Stream '{stream}' running for ")]
    assert any(status("STARTED") < i < status("COMPLETE") for i in told), stream


def test_okendo_tells_progress_an_estimate_per_address_and_one_summary_per_stream(
        serve: Callable[[VendorApi], Server]) -> None:
    api = okendo.Api()
    api.latency = 0.03  # a read of a few seconds: several intervals
    config = okendo.config(serve(api).url)
    streams = ("customers", "customer_profiles", "customer_activities")
    output = read(config, *streams, "reviews", "loyalty_customers")
    assert output.returncode == 0, output.errors
    # Statuses say nothing of how many reviews each holds: no estimate. Loyalty customers:
    # one partition per distinct address, once the store is known to have Loyalty.
    assert estimates(output, "reviews") == []
    assert estimates(output, "loyalty_customers")[0] == len(
        {a.casefold() for a in config["customer_emails"]})
    assert summaries(output)["loyalty_customers"]["outcome"] == "done"

    distinct = len({a.casefold() for a in config["customer_emails"]})
    found = summaries(output)
    for stream in streams:
        # Before any lookup: one partition per distinct address.
        assert estimates(output, stream)[0] == distinct, stream
        assert found[stream]["outcome"] == "done"
        assert int(found[stream]["records"].replace(",", "")) == len(output.records(stream))
    assert_told_while_running(output, "customer_activities")
    # The unknown addresses are skipped once, by whichever stream looked them up.
    unknown = sum(counts(found[s]["skips"]).get("unknown address", 0) for s in streams)
    assert unknown == len(okendo.UNKNOWN_EMAILS) == 2
    # Each fact once: the lookup's summary too.
    assert len([m for m in output.logs() if m.startswith("Okendo customer lookup:")]) == 1


def test_capillary_estimates_one_record_per_identifier_and_counts_8015_skips(
        serve: Callable[[VendorApi], Server]) -> None:
    api = capillary.Api(customers=30)
    config = capillary.config(serve(api).url)
    output = read(config)
    assert output.returncode == 0, output.errors
    assert estimates(output, "customers")[0] == len(set(config["identifiers"]))
    summary = summaries(output)["customers"]
    assert int(summary["records"]) == len(output.records("customers"))
    unknown = len(set(config["identifiers"])) - len(output.records("customers"))
    assert counts(summary["skips"]) == {"error 8015": unknown} and unknown == 3


def test_loke_memberships_estimate_once_customers_are_listed_and_retries_are_counted(
        serve: Callable[[VendorApi], Server]) -> None:
    api = loke.Api(customers=120, page_size=40)
    one = next(m for lists in api.memberships.values() for m in lists)
    api.memberships = {c["id"]: [one] for c in api.customers}  # one each: 120 in all
    api.latency = 0.01
    api.set_faults(every=30, kinds=("429", "reset"), retry_after="1")
    output = read(loke.config(serve(api).url))
    assert output.returncode == 0, output.errors
    assert len(output.records("customer_memberships")) == 120

    found = summaries(output)
    told = estimates(output, "customer_memberships")
    # One a customer until a tenth are read, then extrapolated from those read: near 120.
    assert told[0] == 120 or 96 <= told[0] <= 180, told
    assert all(96 <= e <= 180 for e in told), told
    assert estimates(output, "customers") == []  # a paged list: no count before it is read
    retries: dict[str, int] = {}
    for stream in ("customers", "customer_memberships"):
        assert int(found[stream]["records"].replace(",", "")) == len(output.records(stream))
        for cause, n in counts(found[stream]["retries"]).items():
            retries[cause] = retries.get(cause, 0) + n
    assert retries == {"HTTP 429": api.faulted.count("429"),
                       "connection failed": api.faulted.count("reset")}, api.faulted
    assert api.faulted.count("429") and api.faulted.count("reset")
    requests = sum(int(found[s]["requests"].replace(",", "")) for s in found)
    assert requests == len(api.requests)


def test_malomo_events_estimate_once_customers_are_listed(
        serve: Callable[[VendorApi], Server]) -> None:
    api = malomo.Api(customers=60, page_size=20, event_page_size=2)
    api.latency = 0.01
    output = read(malomo.config(serve(api).url))
    assert output.returncode == 0, output.errors
    told = estimates(output, "customer_events")
    events = len(output.records("customer_events"))
    # One a customer until a tenth are read, then extrapolated: never far off.
    assert told and all(min(60, events) / 2 <= e <= max(60, events) * 2 for e in told), told
    assert_told_while_running(output, "customer_events")
    assert int(summaries(output)["customer_events"]["records"].replace(",", "")) == events


@pytest.mark.parametrize("streams", [("customers",), ("customers", "customer_memberships")])
def test_a_failed_sync_names_its_cause_once(serve: Callable[[VendorApi], Server],
                                            streams: tuple[str, ...]) -> None:
    api = loke.Api(customers=1200, next_page_form="url")
    decoy = loke.Api(customers=0)
    api_url, decoy_url = serve(api).url, serve(decoy).url
    api.public_url = decoy_url.replace("127.0.0.1", "localhost")  # another host
    output = read(loke.config(api_url), *streams)
    assert output.returncode != 0

    errors = [m["trace"]["error"] for m in output.of_type("TRACE")
              if m["trace"]["type"] == "ERROR"]
    causes = [e for e in errors if "another host" in e["message"]]
    # Once per sync, however many partitions, and streams (a child whose parent failed with
    # it), failed the same way; with no Python traceback in any log line.
    assert len(causes) == 1 and causes[0]["stream_descriptor"]["name"] in streams
    assert not [line for line in output.logs() if "Traceback" in line]
    # The closing error lists every stream that failed without repeating the cause; it is
    # last, with a failure type, as Airbyte needs.
    closing = errors[-1]
    assert closing not in causes
    assert closing["failure_type"]
    listed = closing["message"].partition("did not sync successfully: ")[2].partition(".")[0]
    assert "customers" in listed.split(", ")
    assert {m["outcome"] for m in summaries(output).values()} == {"failed"}


def test_progress_is_told_the_same_under_the_platforms_runner(
        serve: Callable[[VendorApi], Server]) -> None:
    """components.py alone does it: estimates and one summary per stream (not two, though
    the runner may load the module under two names)."""
    from integration_tests.test_platform_runner import RUNNER, injected

    api = capillary.Api(customers=30)
    config = capillary.config(serve(api).url)
    env = {**ENV, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
    platform_config = injected(config, "capillary")
    catalog = catalog_for(run("discover", config))
    output = run("read", platform_config, catalog, env=env,
                 executable=[RUNNER or "source-declarative-manifest"])
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert estimates(output, "customers") == [len(set(config["identifiers"]))]
    summary = summaries(output)["customers"]
    assert int(summary["records"]) == len(output.records("customers")) == 25
    assert counts(summary["skips"]) == {"error 8015": 3}
