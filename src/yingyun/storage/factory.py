"""The blob store a deployment names: ``s3://bucket/prefix``, or a local folder.

The S3 module (and boto3 with it) is imported only for an s3:// URL, so a
deployment on a folder never loads it.
"""

from __future__ import annotations

from .blobs import BlobStore, LocalBlobStore


def open_blob_store(url_or_path: str) -> BlobStore:
    """A blob store from configuration: s3://bucket/prefix, file:///path or a path."""
    if url_or_path.startswith("s3://"):
        from .blobs_s3 import S3BlobStore

        return S3BlobStore(url_or_path)
    return LocalBlobStore(url_or_path[7:] if url_or_path.startswith("file://") else url_or_path)
