"""Rejected records stored in S3, proved against a local S3-compatible server (moto's): the
installed destination-customers writes into the Malomo sandbox, PUTs its rejected records
(signed with AWS SigV4 by hand, path-style) to the server, and boto3 reads them back. A store
that cannot be reached fails the sync readably: exit 1, an ERROR trace, no traceback.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from integration_tests.sandbox import malomo, start  # noqa: E402
from integration_tests.sandbox.server import Server  # noqa: E402
from integration_tests.test_destination import activation, rec, state, write  # noqa: E402

ACCESS_KEY = "test"
# Distinctive, so that finding it in the destination's output cannot be a coincidence.
SECRET = "s3-secret-" + uuid.uuid4().hex
BUCKET_PATH = "rejected/run1"


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_url: str) -> tuple[Any, str]:
    client = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET)
    name = f"rejected-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def malomo_api() -> Iterator[tuple[Any, Server]]:
    api = malomo.Api(customers=30, page_size=10)
    server = start(api)
    yield api, server
    server.stop()


def storage(bucket_name: str, endpoint: str, secret: str = SECRET) -> dict[str, Any]:
    return {"storage_type": "S3", "s3_bucket_name": bucket_name,
            "s3_bucket_region": "us-east-1", "bucket_path": BUCKET_PATH,
            "access_key_id": ACCESS_KEY, "secret_access_key": secret, "s3_endpoint": endpoint}


ROWS = [
    {"email": "new.customer@example.com", "first_name": "New"},  # created
    {"email": "not-an-address", "first_name": "Bad"},  # Malomo answers 400: rejected
    {"first_name": "No key"},  # no matching key: rejected before any request
]


def sync(api_server: Server, object_storage: dict[str, Any]) -> tuple[int, list[Any], str, str]:
    config = {**malomo.config(api_server.url), "object_storage_config": object_storage}
    code, out, stderr = write(config, activation("append_dedup", ["email"]),
                              [rec(ROWS[0]), rec(ROWS[1]), state(1), rec(ROWS[2]), state(2)],
                              timeout=120)
    return code, out, stderr, json.dumps(out)


def test_rejected_records_are_stored_in_s3_under_the_bucket_path(
        malomo_api: tuple[Any, Server], bucket: tuple[Any, str], s3_url: str) -> None:
    api, server = malomo_api
    client, name = bucket
    code, out, stderr, stdout = sync(server, storage(name, s3_url))
    assert code == 0, stderr + stdout[-2000:]
    assert SECRET not in stdout and SECRET not in stderr
    assert "Traceback" not in stderr
    assert [c["email"] for c in api.customers if c.get("email") ==
            "new.customer@example.com"] == ["new.customer@example.com"]

    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])]
    assert keys, "no object stored"
    assert all(k.startswith(f"{BUCKET_PATH}/segment/rejected-") and k.endswith(".jsonl")
               for k in keys), keys
    stored = [json.loads(line) for key in keys
              for line in client.get_object(Bucket=name, Key=key)["Body"].read().splitlines()]
    assert sorted((str(s.get("email")), s["first_name"], s["rejected_reason"])
                  for s in stored) == [("None", "No key", "no matching key"),
                                       ("not-an-address", "Bad", "HTTP 400")]
    for line in stored:
        assert {"rejected_reason", "rejected_field", "rejected_message"} <= set(line)
        assert line["rejected_message"], line
    no_key = next(s for s in stored if "email" not in s)
    assert no_key["rejected_field"] == "email"
    logs = [m["log"]["message"] for m in out if m["type"] == "LOG"]
    assert f"2 rejected records stored in s3://{name}/{BUCKET_PATH}/." in logs


def _assert_failed_readably(code: int, out: list[Any], stderr: str, stdout: str) -> str:
    assert code == 1, stderr + stdout[-2000:]
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    errors = [m["trace"]["error"]["message"] for m in out
              if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    assert len(errors) == 1, stdout[-2000:]
    assert "rejected records" in errors[0]
    assert SECRET not in stdout and SECRET not in stderr
    return errors[0]


def test_an_unreachable_endpoint_fails_the_sync_readably(
        malomo_api: tuple[Any, Server], bucket: tuple[Any, str]) -> None:
    _, server = malomo_api
    _, name = bucket
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, stderr, stdout = sync(server, storage(name, f"http://127.0.0.1:{port}"))
    message = _assert_failed_readably(code, out, stderr, stdout)
    assert f"s3://{name}/{BUCKET_PATH}/" in message and str(port) in message
    assert "ConnectionError" in message


def test_a_wrong_secret_fails_the_sync_readably(
        malomo_api: tuple[Any, Server], bucket: tuple[Any, str], s3_url: str) -> None:
    _, server = malomo_api
    client, name = bucket
    wrong = "wrong-" + SECRET
    code, out, stderr, stdout = sync(server, storage(name, s3_url, secret=wrong))
    if code == 0 and client.list_objects_v2(Bucket=name).get("KeyCount", 0):
        pytest.skip("moto's server does not verify SigV4 signatures by default")
    assert wrong not in stdout and wrong not in stderr
    _assert_failed_readably(code, out, stderr, stdout)
