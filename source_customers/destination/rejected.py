"""Where records the vendor refused are kept, with the reason, as `object_storage_config`
says: nowhere (`None`), JSON Lines files in a folder (`Local`), or an S3 bucket (`S3`, with
Airbyte's key names). Each stored line is the record with Customer.io's fields beside it:
`rejected_reason`, `rejected_field`, `rejected_message`.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

import orjson
import requests

from source_customers.destination.apply import Outcome


class RejectedRecords:
    """Rejected records of one sync, one file per stream."""

    def __init__(self, config: Mapping[str, Any] | None) -> None:
        self.config = dict(config or {"storage_type": "None"})
        self.kind = str(self.config.get("storage_type") or "None")
        self.started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self._files: dict[str, IO[bytes]] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self.stored = 0

    def where(self) -> str:
        if self.kind == "Local":
            return str(self.config["path"])
        if self.kind == "S3":
            return f"s3://{self.config['s3_bucket_name']}/{self._prefix()}"
        return ""

    def add(self, stream: str, record: Mapping[str, Any], outcome: Outcome) -> None:
        if self.kind == "None":
            return
        line = orjson.dumps({**record, "rejected_reason": outcome.reason,
                             "rejected_field": outcome.field or None,
                             "rejected_message": outcome.message or None}) + b"\n"
        with self._lock:
            handle = self._files.get(stream)
            if handle is None:
                handle = self._files[stream] = self._open(stream)
            handle.write(line)
            handle.flush()
            self.stored += 1

    def _open(self, stream: str) -> IO[bytes]:
        name = f"{stream}/rejected-{self.started}-{os.getpid()}.jsonl"
        if self.kind == "Local":
            path = Path(str(self.config["path"])) / name
        else:  # S3: gathered here, sent whole when the sync closes
            path = Path(tempfile.mkdtemp(prefix="rejected-")) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._paths[stream] = path
        return path.open("ab")

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            if self.kind == "S3":
                for stream, path in self._paths.items():
                    key = f"{self._prefix()}{stream}/{path.name}"
                    _put_s3(self.config, key, path.read_bytes())
            self._files.clear()

    def _prefix(self) -> str:
        prefix = str(self.config.get("bucket_path") or "").strip("/")
        return f"{prefix}/" if prefix else ""


def _put_s3(config: Mapping[str, Any], key: str, data: bytes) -> None:
    """PUT one object, signed with AWS Signature Version 4 (path-style, as every
    S3-compatible store takes it)."""
    region = str(config.get("s3_bucket_region") or "us-east-1")
    endpoint = str(config.get("s3_endpoint") or f"https://s3.{region}.amazonaws.com").rstrip("/")
    url = f"{endpoint}/{config['s3_bucket_name']}/{quote(key)}"
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(data).hexdigest()
    host = urlsplit(url).netloc
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        "PUT", urlsplit(url).path, "",
        "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_hash])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    secret = str(config.get("secret_access_key") or "")
    key_bytes = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={config.get('access_key_id')}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}")
    response = requests.put(url, data=data, headers=headers, timeout=(10, 120))
    if response.status_code >= 300:
        raise OSError(f"S3 answered PUT of the rejected records with HTTP "
                      f"{response.status_code}: {response.text[:200]}")
