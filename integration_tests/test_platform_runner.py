"""Each manifest runs unchanged under the CDK's `source-declarative-manifest` runner.

That runner is how the Airbyte platform (and the Connector Builder) runs a declarative
connector: the manifest and the components file travel inside the config.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration_tests.cli import assert_same_keys, catalog_for, run
from integration_tests.sandbox import VENDORS
from integration_tests.sandbox.server import Server, VendorApi

REPOSITORY = Path(__file__).resolve().parents[1]
RUNNER = shutil.which("source-declarative-manifest", path=str(Path(sys.executable).parent))
# What users paste: the components file bundled from source_customers/ (scripts/bundle.py).
COMPONENTS = (REPOSITORY / "manifests" / "components.py").read_text()


def injected(config: dict[str, Any], vendor: str) -> dict[str, Any]:
    manifest = yaml.safe_load((REPOSITORY / "manifests" / f"{vendor}.yaml").read_text())
    return {
        **config,
        "__injected_declarative_manifest": manifest,
        "__injected_components_py": COMPONENTS,
        "__injected_components_py_checksums": {
            "md5": hashlib.md5(COMPONENTS.encode()).hexdigest(),
        },
    }


def primary_keys(catalog: dict[str, Any]) -> dict[str, list[str]]:
    return {s["stream"]["name"]: [k[0] for k in s["primary_key"]] for s in catalog["streams"]}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_runner_reads_the_same_records_as_source_customers(
        serve: Callable[[VendorApi], Server], vendor: str) -> None:
    module = VENDORS[vendor]
    server = serve(module.Api(**getattr(module, "SMALL", {})))
    config = module.config(server.url)
    runner = [RUNNER or "source-declarative-manifest"]
    env = {**os.environ, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
    platform_config = injected(config, vendor)

    assert run("check", platform_config, executable=runner, env=env).connection_status[
        "status"] == "SUCCEEDED"
    discovered = run("discover", platform_config, executable=runner, env=env)
    catalog = catalog_for(discovered)
    ours = catalog_for(run("discover", config))
    assert catalog == ours

    theirs = run("read", platform_config, catalog, executable=runner, env=env)
    mine = run("read", config, catalog)
    assert theirs.returncode == mine.returncode == 0, theirs.errors or theirs.stderr[-2000:]
    for stream, key in primary_keys(catalog).items():
        assert mine.keys(stream, *key), f"{stream}: the sandbox should yield records"
        assert_same_keys(theirs.keys(stream, *key), mine.keys(stream, *key))


def test_runner_runs_the_custom_oauth_component_of_loke(
        serve: Callable[[VendorApi], Server]) -> None:
    module = VENDORS["loke"]
    api = module.Api(**module.SMALL)
    url = serve(api).url
    config = injected(module.config(url, credentials=module.client_credentials(url)), "loke")
    runner = [RUNNER or "source-declarative-manifest"]
    env = {**os.environ, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
    catalog = catalog_for(run("discover", config, executable=runner, env=env))
    output = run("read", config, catalog, executable=runner, env=env)
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert_same_keys(output.keys("customers", "id"), [c["id"] for c in api.customers])
    assert api.issued_tokens == 1
