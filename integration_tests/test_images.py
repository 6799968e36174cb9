"""The connectors' images, run as Airbyte runs them, against the sandbox over real HTTP.

`make image-test` builds the images (scripts/images.sh) and runs this module with
IMAGE_TEST_ENV naming the file of the tags it built; without it every test here is skipped
(`make test` builds no image). Each command runs in a container:

- as the image's own user, which must not be root;
- with its config, catalog and state in a folder mounted read-only, on a read-only root
  file system (a connector writes nothing in its image);
- on the host's network, where the sandbox listens on 127.0.0.1;
- the destination's rejected records written to a mounted folder.

It asserts what the integration tests assert of the installed commands: the same spec and
catalog, every key read (the same keys as the installed `source-customers`, none missing,
none extra, no duplicate), state passed back in, the vendor's exact end state after a write,
the rejected records exactly, and no ERROR trace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integration_tests.cli import Output, assert_same_keys, catalog_for, parsed, run
from integration_tests.sandbox import VENDORS, capillary, malomo
from integration_tests.sandbox.server import Server, VendorApi
from integration_tests.test_destination import EXECUTABLE as DESTINATION_COMMAND
from integration_tests.test_destination import activation, echoed, rec, rejected_lines, state
from scripts import catalog


def _images() -> dict[str, str]:
    path = os.environ.get("IMAGE_TEST_ENV")
    if not path:
        return {}
    pairs = (line.partition("=") for line in Path(path).read_text().splitlines() if "=" in line)
    return {key: value for key, _, value in pairs}


IMAGES = _images()
pytestmark = pytest.mark.skipif(not IMAGES, reason="make image-test builds the images, runs these")
SOURCE = IMAGES.get("SOURCE_IMAGE", "")
DESTINATION = IMAGES.get("DESTINATION_IMAGE", "")
# The folders of `make catalog`, each built FROM source-declarative-manifest.
CATALOG = {image.removeprefix("airbyte/source-").partition(":")[0]: image
           for image in IMAGES.get("CATALOG_IMAGES", "").split()}


def in_image(image: str, command: str, config: dict[str, Any] | None = None,
             catalog: dict[str, Any] | None = None, state: list[dict[str, Any]] | None = None,
             messages: list[dict[str, Any]] | None = None, rejected: Path | None = None,
             timeout: float = 600) -> Output:
    """`docker run IMAGE COMMAND` with the inputs mounted read-only at /inputs."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # the image's user reads it; it is not this user
        args = ["docker", "run", "--rm", "-i", "--network", "host", "--read-only",
                "--tmpfs", "/tmp", "-v", f"{folder}:/inputs:ro"]
        if rejected is not None:
            rejected.chmod(0o777)
            args += ["-v", f"{rejected}:/rejected"]
        inputs = []
        for name, content in (("config", config), ("catalog", catalog), ("state", state)):
            if content is not None:
                path = Path(folder) / f"{name}.json"
                path.write_text(json.dumps(content))
                path.chmod(0o644)
                inputs += [f"--{name}", f"/inputs/{name}.json"]
        stdin = "".join(json.dumps(m) + "\n" for m in messages) if messages is not None else None
        done = subprocess.run([*args, image, command, *inputs], input=stdin,
                              capture_output=True, text=True, timeout=timeout)
    return parsed(done)


def assert_no_error(output: Output) -> None:
    assert output.returncode == 0, output.errors or output.stderr[-2000:]
    assert output.errors == []
    assert "Traceback" not in output.text


def primary_keys(catalog: dict[str, Any]) -> dict[str, list[str]]:
    return {s["stream"]["name"]: [k[0] for k in s["primary_key"]] for s in catalog["streams"]}


def small(serve: Callable[[VendorApi], Server], vendor: str) -> dict[str, Any]:
    module = VENDORS[vendor]
    config: dict[str, Any] = module.config(serve(module.Api(**getattr(module, "SMALL", {}))).url)
    return config


@pytest.mark.parametrize("image", [SOURCE, DESTINATION, *CATALOG.values()])
def test_image_runs_as_a_non_root_user(image: str) -> None:
    user = subprocess.run(["docker", "image", "inspect", "--format", "{{.Config.User}}", image],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert user not in ("", "root", "0")
    uid = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", image, "-u"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert uid != "0"


def test_source_image_answers_spec_as_the_installed_command() -> None:
    output = in_image(SOURCE, "spec")
    assert_no_error(output)
    assert output.of_type("SPEC") == run("spec").of_type("SPEC")


def _read_twice(image: str, config: dict[str, Any],
                platform_config: dict[str, Any] | None = None) -> None:
    """check, discover, a full read, then an incremental read from the state passed back: each
    in the image, each equal by key to the installed command's."""
    in_config = platform_config or config
    status = in_image(image, "check", in_config)
    assert_no_error(status)
    assert status.connection_status["status"] == "SUCCEEDED"

    discovered = in_image(image, "discover", in_config)
    assert_no_error(discovered)
    catalog = catalog_for(discovered, incremental=True)
    assert catalog == catalog_for(run("discover", config), incremental=True)

    first = in_image(image, "read", in_config, catalog)
    assert_no_error(first)
    mine = run("read", config, catalog)
    for stream, key in primary_keys(catalog).items():
        assert mine.keys(stream, *key), f"{stream}: the sandbox should yield records"
        assert_same_keys(first.keys(stream, *key), mine.keys(stream, *key))
    assert first.final_state(), "a read ends with the state of each stream"

    again = in_image(image, "read", in_config, catalog, first.final_state())
    assert_no_error(again)
    mine_again = run("read", config, catalog, first.final_state())
    for stream, key in primary_keys(catalog).items():
        assert_same_keys(again.keys(stream, *key), mine_again.keys(stream, *key))


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_source_image_checks_discovers_and_reads_every_key_then_resumes_from_state(
        serve: Callable[[VendorApi], Server], vendor: str) -> None:
    _read_twice(SOURCE, small(serve, vendor))


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_catalog_folder_image_reads_as_the_installed_command(
        serve: Callable[[VendorApi], Server], vendor: str) -> None:
    """The folder of `make catalog`, built as Airbyte's catalog builds it: the manifest and
    its own components.py baked into a source-declarative-manifest image."""
    image = CATALOG[vendor]
    spec = in_image(image, "spec")
    assert_no_error(spec)
    (message,) = spec.of_type("SPEC")
    required = message["spec"]["connectionSpecification"]["required"]
    assert "vendor" not in required
    _read_twice(image, small(serve, vendor))


def test_destination_image_answers_spec_check_and_discover(
        serve: Callable[[VendorApi], Server]) -> None:
    spec = in_image(DESTINATION, "spec")
    assert_no_error(spec)
    assert spec.of_type("SPEC") == run("spec", executable=[DESTINATION_COMMAND]).of_type("SPEC")
    config = malomo.config(serve(malomo.Api(customers=10, page_size=5)).url)
    status = in_image(DESTINATION, "check", config)
    assert_no_error(status)
    assert status.connection_status["status"] == "SUCCEEDED"
    discovered = in_image(DESTINATION, "discover", config)
    assert_no_error(discovered)
    (catalog,) = discovered.of_type("DESTINATION_CATALOG")
    assert catalog["destination_catalog"]["operations"]
    assert discovered.of_type("DESTINATION_CATALOG") == run(
        "discover", config, executable=[DESTINATION_COMMAND]).of_type("DESTINATION_CATALOG")


def test_destination_image_writes_malomo_and_stores_rejected_records_in_the_mounted_folder(
        serve: Callable[[VendorApi], Server], tmp_path: Path) -> None:
    api = malomo.Api(customers=30, page_size=10)
    url = serve(api).url
    first, second = [c for c in api.customers if c.get("email")][:2]
    rows = [
        {"email": first["email"].upper(), "first_name": "Renamed"},  # update, any letter case
        {"email": second["email"], "first_name": second.get("first_name")},  # unchanged
        {"email": "new.customer@example.com", "first_name": "New"},  # create
        {"email": "not-an-address", "first_name": "Bad"},  # Malomo refuses: rejected
        {"first_name": "No key"},  # rejected before any request
    ]
    before = {c["id"]: dict(c) for c in api.customers}
    config = {**malomo.config(url),
              "object_storage_config": {"storage_type": "Local", "path": "/rejected"}}
    output = in_image(DESTINATION, "write", config, activation("append_dedup", ["email"]),
                      messages=[rec(rows[0]), rec(rows[1]), state(1), rec(rows[2]),
                                rec(rows[3]), rec(rows[4]), state(2)], rejected=tmp_path)
    assert_no_error(output)
    assert echoed(output.messages) == [(1, 2.0, 0.0), (2, 3.0, 2.0)]
    # The exact end state: one customer renamed, one created, every other as it was.
    after = {c["id"]: c for c in api.customers}
    (created,) = set(after) - set(before)
    assert after[created]["email"] == "new.customer@example.com"
    assert after[created]["first_name"] == "New"
    assert after[first["id"]]["first_name"] == "Renamed"
    assert {k: v for k, v in after.items() if k not in (created, first["id"])} == {
        k: v for k, v in before.items() if k != first["id"]}
    assert api.updated == [first["id"]] and api.deleted == []
    stored = rejected_lines(tmp_path)
    assert sorted((str(s.get("email")), s["rejected_reason"]) for s in stored) == [
        ("None", "no matching key"), ("not-an-address", "HTTP 400")]


def test_destination_image_writes_capillary_by_mobile(
        serve: Callable[[VendorApi], Server], tmp_path: Path) -> None:
    api = capillary.Api(customers=30)
    url = serve(api).url
    known = [capillary.Api.identifier(c, "mobile") for c in api.customers[:3]]
    unknown = capillary.unknown_mobiles(1)
    config = {**capillary.config(url),
              "object_storage_config": {"storage_type": "Local", "path": "/rejected"}}
    output = in_image(DESTINATION, "write", config, activation("update", ["mobile"]),
                      messages=[*(rec({"mobile": m, "firstName": "Gold"}) for m in known),
                                rec({"mobile": unknown[0], "firstName": "X"}), state(1)],
                      rejected=tmp_path)
    assert_no_error(output)
    assert echoed(output.messages) == [(1, 4.0, 1.0)]
    assert [s["rejected_reason"] for s in rejected_lines(tmp_path)] == [
        "customer not found (8015)"]
    assert all(api.find("mobile", m)["profiles"][0]["firstName"] == "Gold" for m in known)
    assert api.added == [] and api.merges == []
    assert api.find("mobile", unknown[0]) is None


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_cdks_own_image_test_passes_offline_on_the_catalog_folder_image(
        vendor: str, tmp_path: Path) -> None:
    """`airbyte-cdk image test --no-creds`, as the catalog's CI runs it on a folder. Offline it
    runs `spec` in the image and lints it; the spec's comparison with the published version
    skips itself, the registry being out of reach. Its check, discover and read need
    credentials (`requires_creds`) and run `docker run` without a network option, so a
    container cannot reach the sandbox on the host's 127.0.0.1: the tests above run those."""
    folder = shutil.copytree(catalog.DEST / f"source-{vendor}", tmp_path / f"source-{vendor}")
    done = subprocess.run([str(Path(sys.executable).parent / "airbyte-cdk"), "image", "test",
                           ".", "--image", CATALOG[vendor], "--no-creds"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b1 passed\b", done.stdout), done.stdout[-2000:]
