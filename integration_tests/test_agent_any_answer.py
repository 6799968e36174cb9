"""The property suite's fault schedule (any_answer/) under `find_customer`: whatever the
scripted server does with each request in turn (error statuses, Retry-After in every form,
wrong-shaped and cut bodies, resets, stalls, trickles, redirects, next links elsewhere), the
call answers, within the server's deadline, with exactly the customer by primary key, none
found where a fault said so, or a named failure; no secret anywhere, the looked-up value
masked in the log.

`make test` runs a few derandomized examples per vendor (AGENT_ANY_ANSWER_EXAMPLES);
HYPOTHESIS_PROFILE=fuzz, as `make fuzz` sets it, runs more and random ones.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from integration_tests.any_answer.behaviours import Scenario, Status, scripts
from integration_tests.any_answer.server import ScriptedServer
from integration_tests.any_answer.world import AUTHS, World, new_world
from integration_tests.mcp_client import session
from integration_tests.sandbox import okendo

DEADLINE = 6.0
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
EXAMPLES = int(os.environ.get("AGENT_ANY_ANSWER_EXAMPLES", "40" if FUZZ else "4"))
PROFILE = settings(
    max_examples=EXAMPLES, derandomize=not FUZZ, deadline=None, database=None,
    print_blob=FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate] + (
        [Phase.shrink] if FUZZ else []),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large])
PRIMARY_KEY = {"okendo": "customerId", "loke": "id", "malomo": "id", "capillary": "id"}


def _question(world: World) -> tuple[dict[str, Any], list[Any]]:
    """find_customer's arguments for one of the world's customers, and her keys."""
    api: Any = world.api
    if world.vendor == "okendo":
        email = okendo.email_of(1)
        return {"email": email}, [api.customer_id_of(email)]
    if world.vendor == "capillary":
        mobile = str(api.identifier(api.customers[1], "mobile"))
        return {"identifier": {"name": "mobile", "value": mobile}}, \
            [api.find("mobile", mobile)["id"]]
    email = next(c["email"] for c in api.customers[1:] if c.get("email"))
    return {"email": email}, [c["id"] for c in api.customers
                              if str(c.get("email", "")).casefold() == email.casefold()]


def check(vendor: str, scenario: Scenario) -> None:
    world = new_world(vendor, scenario)
    with ScriptedServer(world, scenario.script) as server:
        world.configure(server.url)
        arguments, expected = _question(world)
        started = time.monotonic()
        seen = session([world.config], [("find_customer", arguments)],
                       "--deadline", str(DEADLINE))
        took = time.monotonic() - started
    log = "\n".join(s.line() for s in server.log)
    (result,) = seen.results
    assert not result.is_error, f"{result.text}\n{log}"
    (answer,) = result.data["results"]
    status = answer["status"]
    where = f"{vendor} {scenario!r}: {json.dumps(answer)[:600]}\n{log}"
    if status == "found":
        assert [c.get(PRIMARY_KEY[vendor]) for c in answer["customers"]] == expected, where
    elif status == "not_found":
        # Only where the server answered a lookup "no such customer" itself.
        assert any(isinstance(s.behaviour, Status) and s.behaviour.code in (403, 404)
                   for s in server.log), where
    else:
        assert status in ("failed", "timed_out"), where
        assert answer["message"], where
    # The server's own bound, with room for its start-up: not a performance claim.
    assert took < DEADLINE + 30, where
    everything = result.text + seen.stderr
    for secret in world.secrets():
        assert secret not in everything, f"secret in the output: {where}"
    value = arguments.get("email") or arguments["identifier"]["value"]
    assert value not in seen.stderr, f"looked-up value unmasked in the log: {where}"


@pytest.mark.parametrize("vendor", tuple(AUTHS))
@PROFILE
@given(data=st.data())
def test_find_customer_answers_or_names_a_failure_whatever_the_api_does(
        vendor: str, data: st.DataObject) -> None:
    scenario = Scenario(auth=data.draw(st.sampled_from(AUTHS[vendor]), label="auth"),
                        incremental=False, oddities=(),
                        script=data.draw(scripts(vendor, max_size=8), label="script"))
    check(vendor, scenario)


@pytest.mark.parametrize("vendor", tuple(AUTHS))
def test_find_customer_with_no_fault_finds_her(vendor: str) -> None:
    for auth in AUTHS[vendor]:
        check(vendor, Scenario(auth=auth, incremental=False, oddities=(), script=()))
