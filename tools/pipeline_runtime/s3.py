"""A real local S3 (moto's server mode) and the transfer rules SageMaker applies to job inputs and outputs.

- ``S3Prefix`` input: every object whose key *starts with* the URI's key, with no implicit ``/``
  (``.../split/test`` also takes ``.../split/test_features/x.csv``); an object lands at
  ``LocalPath/<key minus the prefix>`` with a leading ``/`` removed, so ``test_features/x.csv`` under the
  prefix ``split/test`` lands at ``LocalPath/_features/x.csv`` — inside the input folder, where a job that
  reads every file under it finds it.
- ``ManifestFile`` input: a JSON list ``[{"prefix": "s3://b/p/"}, "rel1", ...]``; each ``prefix + rel``
  lands at ``LocalPath/rel``.
- Output (``EndOfJob``): every file under ``LocalPath`` goes to ``S3Uri`` joined with its relative path,
  without doubling a trailing ``/``.
"""

from __future__ import annotations

import fnmatch
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError


class TransferError(ValueError):
    """An input or output SageMaker would refuse or could not transfer."""


def split_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise TransferError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalS3:
    """Context manager: a moto S3 server process of its own on a free port, with ``bucket`` created.

    A process, not moto's in-process threaded server: moto keeps its state per Python process, so two
    threaded servers in one process would share buckets, and concurrent runs would overwrite each other.
    """

    def __init__(self, bucket: str, region: str = "us-east-1", start_seconds: float = 30.0) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = ""
        self.start_seconds = start_seconds
        self._server = None
        self.client = None

    def __enter__(self) -> "LocalS3":
        port = _free_port()
        self._server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id="local", aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 2}, connect_timeout=2),
        )
        deadline = time.monotonic() + self.start_seconds
        while True:
            try:
                self.client.create_bucket(Bucket=self.bucket)
                return self
            except EndpointConnectionError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise TransferError(f"the local S3 server (moto) did not start on port {port}")
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
            self._server = None

    def aws_environment(self) -> dict:
        """What a step's own AWS calls need to reach this server (moto serves S3, CloudWatch and the rest)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local", "AWS_DEFAULT_REGION": self.region}

    def put_text(self, key: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"))

    def upload_folder(self, folder: Path, prefix: str, exclude: tuple = ()) -> list:
        """Upload every file under ``folder`` to ``prefix`` + its relative path; returns the keys."""
        keys = []
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            relative = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatch(part, pattern) for part in relative.split("/") for pattern in exclude):
                continue
            key = prefix + relative if prefix.endswith("/") or not prefix else f"{prefix}/{relative}"
            self.client.upload_file(str(path), self.bucket, key)
            keys.append(key)
        return keys

    def keys(self, bucket: str, prefix: str) -> list:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def exists(self, uri: str) -> bool:
        bucket, key = split_uri(uri)
        return key in self.keys(bucket, key)

    def read_text(self, uri: str) -> str:
        bucket, key = split_uri(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def download_input(self, uri: str, local_path: Path, data_type: str = "S3Prefix", mode: str = "File") -> list:
        """Bring an input to ``local_path`` as SageMaker does; returns the local files written."""
        if mode != "File":
            raise TransferError(f"S3InputMode {mode!r} is not supported here; the pipeline's steps use File")
        bucket, key = split_uri(uri)
        local_path.mkdir(parents=True, exist_ok=True)
        if data_type == "S3Prefix":
            pairs = [(k, k[len(key):].lstrip("/")) for k in self.keys(bucket, key)]
        elif data_type == "ManifestFile":
            manifest = json.loads(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
            if not manifest or not isinstance(manifest[0], dict) or "prefix" not in manifest[0]:
                raise TransferError(f"manifest {uri} does not start with {{'prefix': ...}}")
            base_bucket, base_key = split_uri(manifest[0]["prefix"])
            if base_bucket != bucket:
                bucket = base_bucket
            pairs = [(base_key + relative, relative) for relative in manifest[1:]]
        else:
            raise TransferError(f"S3DataType {data_type!r} is not supported (S3Prefix or ManifestFile)")
        written = []
        for object_key, relative in pairs:
            if not relative:
                relative = object_key.rsplit("/", 1)[-1]
            target = local_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(bucket, object_key, str(target))
            written.append(target)
        return written

    def upload_output(self, local_path: Path, uri: str) -> list:
        """Upload every file under ``local_path`` to ``uri`` + its relative path; returns the URIs."""
        bucket, key = split_uri(uri)
        base = key.rstrip("/")
        uris = []
        for path in sorted(p for p in Path(local_path).rglob("*") if p.is_file()):
            object_key = f"{base}/{path.relative_to(local_path).as_posix()}" if base else path.relative_to(local_path).as_posix()
            self.client.upload_file(str(path), bucket, object_key)
            uris.append(f"s3://{bucket}/{object_key}")
        return uris
