"""Blobs in any S3-compatible object store (AWS S3, MinIO, COS, OSS…).

`--blob-url s3://bucket/prefix`; the endpoint and credentials come from the
standard AWS environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), as every S3 tool reads them.

Same guarantees as the BlobStore protocol: when put() returns the object is
durable (S3 acknowledges only stored objects) and appears whole under its
key or not at all (a single PUT, or a multipart upload that is completed
only after its last part, aborted on failure). Data is streamed: objects
above 8 MiB go up in 8 MiB parts, so a large instance is never whole in
memory. A reader sees one version of an object, never a mix: small objects
are fetched in one GET; large ones are read by ranges pinned to the ETag
they had when opened (a replace in between makes the read fail rather than
splice two versions).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlparse

from .blobs import BlobData, BlobNotFound, validate_key, validate_prefix

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

PART_SIZE = 8 * 2**20
WHOLE_READ_LIMIT = 8 * 2**20


def _chunks(data: BlobData, prefix: bytes) -> Iterator[bytes | memoryview]:
    if prefix:
        yield prefix
    if isinstance(data, (bytes, bytearray)):
        yield memoryview(data)
    elif isinstance(data, memoryview):
        yield data.cast("B") if data.ndim == 1 and data.format == "B" else memoryview(data.tobytes())
    elif hasattr(data, "read"):
        while True:
            block = data.read(PART_SIZE)
            if not block:
                return
            yield block
    else:
        for chunk in data:
            yield chunk if isinstance(chunk, memoryview) else memoryview(chunk)


class _RangeReader(io.RawIOBase):
    """A seekable reader of one object version, by HTTP ranges."""

    def __init__(self, client: Any, bucket: str, key: str, size: int, etag: str) -> None:
        self.client, self.bucket, self.key, self.size, self.etag = client, bucket, key, size, etag
        self.pos = 0
        # What a file has: readers such as pydicom's dcmread take `name` from what they read.
        self.name = f"s3://{bucket}/{key}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        buf = memoryview(buffer)
        if self.pos >= self.size or len(buf) == 0:
            return 0
        end = min(self.size, self.pos + len(buf)) - 1
        resp = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end}",
                                      IfMatch=self.etag)
        data = resp["Body"].read()
        n = len(data)
        buf[:n] = data
        self.pos += n
        return n


class S3BlobStore:
    def __init__(self, url: str, *, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError("a blob URL looks like s3://bucket/prefix")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        if self.prefix:
            validate_prefix(self.prefix + "/")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                      max_pool_connections=32))
        self.client = client

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, e: Exception) -> bool:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def put(self, key: str, data: BlobData, *, prefix: bytes = b"") -> int:
        s3key = self._key(key)
        buffer = bytearray()
        upload_id = None
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            for chunk in _chunks(data, prefix):
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=s3key)["UploadId"]
                    part = bytes(buffer[:PART_SIZE])
                    del buffer[:PART_SIZE]
                    etag = self.client.upload_part(Bucket=self.bucket, Key=s3key, UploadId=upload_id,
                                                   PartNumber=len(parts) + 1, Body=part)["ETag"]
                    parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=s3key, Body=bytes(buffer))
            else:
                if buffer or not parts:
                    etag = self.client.upload_part(Bucket=self.bucket, Key=s3key, UploadId=upload_id,
                                                   PartNumber=len(parts) + 1, Body=bytes(buffer))["ETag"]
                    parts.append({"ETag": etag, "PartNumber": len(parts) + 1})
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=s3key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3key, UploadId=upload_id)
                except Exception:  # noqa: BLE001 - the original failure matters more
                    pass
            raise
        return total

    def open(self, key: str) -> BinaryIO:
        s3key = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=s3key)
            if head["ContentLength"] <= WHOLE_READ_LIMIT:
                body = self.client.get_object(Bucket=self.bucket, Key=s3key, IfMatch=head["ETag"])["Body"].read()
                return io.BytesIO(body)
        except Exception as e:
            if self._missing(e) or getattr(e, "response", {}).get("Error", {}).get("Code") == "PreconditionFailed":
                raise BlobNotFound(key) from e
            raise
        reader = _RangeReader(self.client, self.bucket, s3key, head["ContentLength"], head["ETag"])
        return io.BufferedReader(reader, buffer_size=PART_SIZE)

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except Exception as e:
            if self._missing(e):
                raise BlobNotFound(key) from e
            raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except BlobNotFound:
            return False

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        if prefix:
            validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(base):]
