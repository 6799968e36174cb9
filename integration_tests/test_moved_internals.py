"""A CDK whose internals have moved: the connector reads exactly as before without the
feature that touched one, and says so once in a WARN log.

Each touch point that `runtime/hooks.py` and `speedups.py` list is moved in turn, in a
process of its own, before `source-customers read` starts: a function gets other
parameters (a wrapper that still does its work, so the CDK runs as before), a constructor
no longer sets the attribute (the same), a module's log texts are gone. The records must be
those of an untouched read, by primary key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from integration_tests.cli import Output, assert_same_keys, catalog_for, run
from integration_tests.sandbox import loke, start
from source_customers import speedups
from source_customers.runtime import hooks

REPOSITORY = Path(__file__).resolve().parents[1]
FEATURES = {"hooks": hooks.FEATURES, "speedups": speedups.FEATURES}
POINTS = [(group, f, p) for group, features in FEATURES.items()
          for f, feature in enumerate(features) for p in range(len(feature.touch_points))]

# Run as `python -c DRIVER group feature point read --config ...`: moves the touch point,
# then runs the command as `source-customers` would.
DRIVER = """
import sys
from integration_tests.test_moved_internals import move
group, feature, point = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
move(group, feature, point)
sys.argv = ["source-customers", *sys.argv[4:]]
from source_customers.__main__ import run
run()
"""


def move(group: str, feature: int, point: int) -> None:
    """Moves one touch point, so that its check fails while the CDK still works."""
    touch = FEATURES[group][feature].touch_points[point]
    owner = touch.owner
    if touch.text:  # the module's functions, each replaced by one without its texts
        for name, value in list(vars(owner).items()):
            if callable(value) and getattr(value, "__module__", None) == owner.__name__:
                setattr(owner, name, _delegating(value))
        return
    name = touch.set_by or touch.name
    static = isinstance(vars(owner).get(name), staticmethod)
    moved = _delegating(getattr(owner, name))
    setattr(owner, name, staticmethod(moved) if static else moved)


def _delegating(function: Callable[..., Any]) -> Callable[..., Any]:
    def moved(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)
    return moved


@cache
def untouched() -> tuple[dict[str, Any], dict[str, Any], Output]:
    api = loke.Api(**loke.SMALL)
    server = start(api)  # left running for the module's runs: a daemon thread
    config = loke.config(server.url)
    catalog = catalog_for(run("discover", config))
    output = run("read", config, catalog)
    assert output.returncode == 0, output.errors
    return config, catalog, output


def read_moved(point: tuple[str, int, int]) -> Output:
    config, catalog, _ = untouched()
    group, feature, index = point
    driver = [sys.executable, "-c", DRIVER, group, str(feature), str(index)]
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return run("read", config, catalog, executable=driver, env=env)


@pytest.fixture(scope="module")
def moved() -> dict[tuple[str, int, int], Output]:
    untouched()
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(POINTS, pool.map(read_moved, POINTS), strict=True))


@pytest.mark.parametrize("point", POINTS, ids=lambda p: FEATURES[p[0]][p[1]].touch_points[
    p[2]].where() + (f"-{FEATURES[p[0]][p[1]].touch_points[p[2]].text[:12]}"
                     if FEATURES[p[0]][p[1]].touch_points[p[2]].text else ""))
def test_a_moved_internal_turns_its_feature_off_and_the_read_is_unchanged(
        moved: dict[tuple[str, int, int], Output], point: tuple[str, int, int]) -> None:
    _, catalog, expected = untouched()
    output = moved[point]
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    for stream in catalog["streams"]:
        name, key = stream["stream"]["name"], [k[0] for k in stream["primary_key"]]
        assert expected.keys(name, *key), f"{name}: the sandbox should yield records"
        assert_same_keys(output.keys(name, *key), expected.keys(name, *key))
    feature = FEATURES[point[0]][point[1]]
    touch = feature.touch_points[point[2]]
    # Every feature that touches this internal is off, each said once.
    off = [f for group in FEATURES.values() for f in group
           if any((p.owner, p.name, p.set_by, p.text) == (touch.owner, touch.name, touch.set_by,
                                                          touch.text) for p in f.touch_points)]
    warnings = [w for w in output.logs("WARN") if "source-customers:" in w]
    assert len(warnings) == len(off), warnings
    for each in off:
        (warning,) = [w for w in warnings if w.startswith(f"source-customers: {each.name} is off")]
        assert touch.where() in warning
    if any(f.install is hooks.install_progress for f in off):
        assert not [line for line in output.logs() if " done in " in line]
    else:
        assert [line for line in output.logs() if " done in " in line]


def test_every_touch_point_is_as_expected_under_the_locked_cdk() -> None:
    problems = {f.name: f.problems() for group in FEATURES.values() for f in group}
    assert {name: found for name, found in problems.items() if found} == {}
