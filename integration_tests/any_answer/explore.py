"""Explores without stopping at the first failure, and shrinks one example per kind of problem.

    .venv/bin/python -m integration_tests.any_answer.explore loke --examples 40
    .venv/bin/python -m integration_tests.any_answer.explore loke --shrink "yet the sync failed"

The first form runs random scenarios and prints how often each kind of problem came up
(a problem's text without its numbers and quoted values), with the smallest example seen.
The second shrinks (hypothesis.find) to a minimal scenario whose problems include the given
text, and prints its report: what the lead turns into a named regression test.
"""

from __future__ import annotations

import argparse
import re
import warnings
from collections import defaultdict

from hypothesis import HealthCheck, find, settings
from hypothesis.errors import NonInteractiveExampleWarning

from integration_tests.any_answer import oracle
from integration_tests.any_answer.behaviours import Scenario, scenarios
from integration_tests.any_answer.server import ScriptedServer
from integration_tests.any_answer.world import AUTHS, new_world, odd_streams
from integration_tests.test_any_answer import catalog


def problems_of(vendor: str, scenario: Scenario) -> tuple[list[str], str]:
    world = new_world(vendor, scenario)
    with ScriptedServer(world, scenario.script) as server:
        world.configure(server.url)
        run = oracle.read(world.config, catalog(vendor, world.config, scenario.incremental))
    problems = oracle.judge(world, server, run)
    return problems, oracle.report(world, scenario, server, run, problems)


def kind(problem: str) -> str:
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\([^()]*\)", "_", problem)
    return re.sub(r"\d+(\.\d+)?", "N", text)


def explore(vendor: str, examples: int, transient_only: bool) -> None:
    strategy = scenarios(vendor, AUTHS[vendor], odd_streams(vendor), transient_only)
    seen: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for n in range(examples):
            scenario = strategy.example()
            problems, text = problems_of(vendor, scenario)
            for problem in {kind(p) for p in problems}:
                seen[problem].append((len(scenario.script) + len(scenario.oddities), text))
            print(f"{n + 1}/{examples}: {len(problems)} problems", flush=True)
    for problem, hits in sorted(seen.items(), key=lambda item: -len(item[1])):
        print("=" * 100)
        print(f"{len(hits)} x {problem}")
        print(min(hits)[1])


def shrink(vendor: str, text: str, transient_only: bool, examples: int) -> None:
    strategy = scenarios(vendor, AUTHS[vendor], odd_streams(vendor), transient_only)

    def fails(scenario: Scenario) -> bool:
        return any(text in p for p in problems_of(vendor, scenario)[0])

    found = find(strategy, fails, settings=settings(
        max_examples=examples, database=None, deadline=None,
        suppress_health_check=list(HealthCheck)))
    print(problems_of(vendor, found)[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("vendor")
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--transient-only", action="store_true")
    parser.add_argument("--shrink", help="shrink to a scenario with a problem holding this")
    args = parser.parse_args()
    if args.shrink:
        shrink(args.vendor, args.shrink, args.transient_only, args.examples)
    else:
        explore(args.vendor, args.examples, args.transient_only)


if __name__ == "__main__":
    main()
