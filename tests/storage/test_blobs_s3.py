"""What only the S3 store has: multipart streaming, ranged reads pinned to a version."""

from __future__ import annotations

import io
import os

import pytest
from botocore.exceptions import ClientError

from yingyun.storage.blobs_s3 import PART_SIZE, S3BlobStore

from ..support.s3 import fresh_bucket, s3_client, s3_store


def test_multipart_above_8_mib_streams_and_reads_back():
    store = s3_store()
    data = os.urandom(2 * PART_SIZE + 12345)
    assert store.put("big/obj", io.BytesIO(data), prefix=b"META") == len(data) + 4
    with store.open("big/obj") as f:  # ranged reads
        assert f.read(4) == b"META"
        f.seek(PART_SIZE)
        assert f.read(10) == (b"META" + data)[PART_SIZE:PART_SIZE + 10]
        f.seek(0)
        assert f.read() == b"META" + data
    assert not s3_client().list_multipart_uploads(Bucket=store.bucket).get("Uploads")


def test_failed_multipart_is_aborted():
    store = s3_store()

    def chunks():
        yield os.urandom(PART_SIZE + 1)
        raise OSError("disk read failed")

    with pytest.raises(OSError):
        store.put("k", chunks())
    assert not store.exists("k")
    assert not s3_client().list_multipart_uploads(Bucket=store.bucket).get("Uploads")


def test_large_reader_never_mixes_versions():
    store = s3_store()
    store.put("v", b"a" * (PART_SIZE + 10))
    reader = store.open("v")
    reader.read(10)
    store.put("v", b"b" * (PART_SIZE + 10))
    with pytest.raises(ClientError, match="PreconditionFailed"):
        reader.read()  # the pinned ETag no longer matches: an error, not a splice


def test_prefix_isolates_deployments():
    bucket = fresh_bucket()
    a = S3BlobStore(f"s3://{bucket}/site-a", client=s3_client())
    b = S3BlobStore(f"s3://{bucket}/site-b", client=s3_client())
    a.put("x", b"1")
    assert list(b.iter_keys()) == [] and list(a.iter_keys()) == ["x"]


def test_bad_urls():
    for url in ("http://bucket/x", "s3://", "s3:///x"):
        with pytest.raises(ValueError):
            S3BlobStore(url, client=s3_client())


def test_a_large_object_reads_like_a_file_to_pydicom(tmp_path):
    """pydicom's dcmread takes a `name` from what it reads: the ranged reader of an object
    over 8 MiB has one (transcoding and the patient pages' PDFs read stored files so)."""
    import pydicom

    from ..support.dicom_data import StudySpec, write_large

    path = write_large(tmp_path / "big.dcm", StudySpec(), size=2 * PART_SIZE, rows=64, cols=64)
    store = s3_store()
    with open(path, "rb") as f:
        store.put("big.dcm", f)
    with store.open("big.dcm") as f:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert f.name.endswith("/big.dcm")
    assert ds.SOPInstanceUID == pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
