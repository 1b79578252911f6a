"""An S3-protocol server on loopback for the blob conformance suite.

This is moto's server mode: an S3 *emulator* (no S3 server is packaged for
this machine). The code under test speaks plain S3 through boto3 and must
work unchanged against MinIO, COS or AWS S3.
"""

from __future__ import annotations

import atexit
import threading
import uuid
from pathlib import Path

import pytest

from .net import free_port

_lock = threading.Lock()
_server = None


def emulator_endpoint() -> str:
    global _server
    with _lock:
        if _server is None:
            from moto.server import ThreadedMotoServer

            port = free_port()
            _server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            _server.start()
            _server.endpoint = f"http://127.0.0.1:{port}"
            atexit.register(_server.stop)
        return _server.endpoint


def s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=emulator_endpoint(), aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


def fresh_bucket() -> str:
    name = "yy-" + uuid.uuid4().hex[:16]
    s3_client().create_bucket(Bucket=name)
    return name


def s3_store(prefix: str = "archive"):
    from yingyun.storage.blobs_s3 import S3BlobStore

    return S3BlobStore(f"s3://{fresh_bucket()}/{prefix}", client=s3_client())


def use_emulator(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The emulator's endpoint and credentials in the environment, for every process a test starts
    (and no AWS config of the machine's)."""
    import logging

    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_endpoint())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # The emulator runs in the test's process: its access log would bury a failure's report.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)
