"""Reading and writing whole small objects at a URI: a local path or ``s3://`` (the job's output and the
plan's input manifest). The Parquet data itself is read by Spark (EMRFS in AWS, local files on a laptop)."""

from __future__ import annotations

from pathlib import Path

from fraudops.core.config import Settings
from fraudops.core.files import atomic_write
from fraudops.store.s3 import is_not_found, s3_client, split_s3_uri


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(part.strip("/") for part in parts)])


def put_bytes(settings: Settings, uri: str, data: bytes) -> None:
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        s3_client(settings).put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


def get_bytes(settings: Settings, uri: str) -> bytes | None:
    """The object's bytes, or None when there is none."""
    if uri.startswith("s3://"):
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            return bytes(s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
    path = Path(uri.removeprefix("file://"))
    return path.read_bytes() if path.exists() else None
