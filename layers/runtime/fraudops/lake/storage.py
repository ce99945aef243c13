"""Where the lake's objects live: a folder (the local default, ``<state_dir>/lake``) or an S3 prefix
(the data bucket in AWS), behind one small base class, addressed by keys relative to the lake root.

Iceberg (pyiceberg's FileIO) writes the tables; this is what our readers read the planned files with
(ranged reads through boto3, so moto and the same credentials), what the migration reads the old layout
with, and what orphan cleanup lists and deletes with (with each object's modification time).
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.core.files import atomic_write
from fraudops.store.s3 import is_not_found, s3_client, split_s3_uri

if TYPE_CHECKING:
    import pyarrow as pa


class LakeStorage(ABC):
    @property
    @abstractmethod
    def root_uri(self) -> str: ...

    def uri(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{key.lstrip('/')}"

    def contains(self, uri: str) -> bool:
        return _normal(uri).startswith(_normal(self.root_uri).rstrip("/") + "/")

    def key_of(self, uri: str) -> str:
        """The key of an absolute URI under the lake root (what Iceberg's metadata names)."""
        if not self.contains(uri):
            raise StoreError(f"{uri} is not under the lake at {self.root_uri}")
        return _normal(uri)[len(_normal(self.root_uri).rstrip("/")) + 1 :]

    @abstractmethod
    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        """(key, last modified) under ``prefix``, sorted by key."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write one whole object (a reader sees the old one or the new one, never a part)."""

    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted (S3 lists are strongly consistent since December 2020)."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    def open_input(self, key: str) -> pa.NativeFile:
        """A random-access handle a Parquet reader seeks in: it reads the footer and the column chunks
        it needs (ranged GETs on S3), so nothing is copied to /tmp and unread columns cost nothing."""

    def local_path(self, key: str) -> str | None:
        """A path DuckDB can read directly, when the lake is a folder."""
        return None


class LocalLakeStorage(LakeStorage):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def root_uri(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key.lstrip("/")).resolve()
        if self.root not in path.parents:
            raise StoreError(f"key {key!r} leaves the lake")
        return path

    def put(self, key: str, data: bytes) -> None:
        atomic_write(self._path(key), data)

    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        return [(key, datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC)) for key in self.list_keys(prefix)]

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from error

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        folder = base if base.is_dir() else base.parent
        if not folder.exists():
            return []
        keys = []
        for path in folder.rglob("*"):
            if path.is_file() and ".tmp-" not in path.name:
                key = str(path.relative_to(self.root))
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def open_input(self, key: str) -> pa.NativeFile:
        import pyarrow as pa

        return pa.memory_map(str(self._path(key)), "r")

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))


class S3LakeStorage(LakeStorage):
    def __init__(self, settings: Settings, bucket: str, prefix: str) -> None:
        self._settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = s3_client(settings)

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key.lstrip('/')}" if self.prefix else key.lstrip("/")

    def put(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except ClientError as error:
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from error

    def get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from error
        return bytes(response["Body"].read())

    def list_keys(self, prefix: str) -> list[str]:
        return [key for key, _ in self.list_keys_modified(prefix)]

    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        found: list[tuple[str, datetime]] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                found += [(str(item["Key"]), item["LastModified"]) for item in page.get("Contents", [])]
        except ClientError as error:
            if is_not_found(error):
                return []
            raise StoreError(f"cannot list {self.uri(prefix)}: {error}") from error
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted((key[strip:], modified) for key, modified in found)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            chunk = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            try:
                response = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
            except ClientError as error:
                raise StoreError(f"cannot delete under {self.root_uri}: {error}") from error
            # DeleteObjects answers 200 and reports each key it could not delete (AccessDenied, ...) in
            # Errors; in quiet mode only those (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
            failed = response.get("Errors") or []
            if failed:
                shown = ", ".join(f"{e.get('Key')} ({e.get('Code')}: {e.get('Message', '')})" for e in failed[:5])
                more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
                raise StoreError(f"cannot delete {len(failed)} object(s) under {self.root_uri}: {shown}{more}")

    def open_input(self, key: str) -> pa.NativeFile:
        import pyarrow as pa

        return pa.PythonFile(_S3RangeReader(self._client, self.bucket, self._key(key), self.uri(key)), mode="r")


class _S3RangeReader(io.RawIOBase):
    """A seekable read-only file over one S3 object: each ``read`` is one ranged GET (boto3's client, so
    the same credentials, endpoint and retries as every other S3 call, and moto in tests)."""

    def __init__(self, client: Any, bucket: str, key: str, uri: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key, self._uri = client, bucket, key, uri
        self._position = 0
        try:
            self._size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as error:
            raise StoreError(f"cannot read {uri}: {error}") from error

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def size(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._position + size)
        if end <= self._position:
            return b""
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end - 1}"
            )
        except ClientError as error:
            raise StoreError(f"cannot read {self._uri}: {error}") from error
        data = bytes(response["Body"].read())
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _normal(uri: str) -> str:
    """``file:/x`` and ``file:///x`` (pyiceberg writes either) as one form."""
    if uri.startswith("file:") and not uri.startswith("file:///"):
        return "file:///" + uri.removeprefix("file:").lstrip("/")
    return uri


def lake_storage(settings: Settings) -> LakeStorage:
    """The lake at ``settings.lake_uri``: an ``s3://bucket/prefix`` or a folder (default ``<state_dir>/lake``)."""
    uri = settings.lake_root_uri
    if uri.startswith("s3://"):
        bucket, prefix = split_s3_uri(uri if uri.count("/") > 2 else uri + "/")
        return S3LakeStorage(settings, bucket, prefix)
    return LocalLakeStorage(Path(uri.removeprefix("file://")))
