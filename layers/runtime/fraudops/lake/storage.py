"""Where the lake's objects live: a folder (the local default, ``<state_dir>/lake``) or an S3 prefix
(the data bucket in AWS), behind one small base class, addressed by keys relative to the lake root.

The one primitive the commit protocol needs beyond put/get/list is ``put_if_absent``: S3's conditional
write (``If-None-Match: *``, which fails with 412 when the key exists; AWS docs, "Add preconditions to S3
operations with conditional requests") and, in a folder, a hard link of a complete temporary file
(``link`` fails when the name exists). Two writers can race for a manifest version; exactly one wins.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from fraudops.config import Settings
from fraudops.errors import StoreError
from fraudops.files import atomic_write, fsync_dir
from fraudops.store.s3 import CONFLICT_CODES, error_code, is_loopback, is_not_found, s3_client, split_s3_uri

if TYPE_CHECKING:
    import pyarrow.fs as pafs


class LakeStorage(ABC):
    @property
    @abstractmethod
    def root_uri(self) -> str: ...

    def uri(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{key.lstrip('/')}"

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write one whole object (a reader sees the old one or the new one, never a part)."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` unless it exists; False when someone else created it first."""

    @abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted (S3 lists are strongly consistent since December 2020)."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    def arrow_filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem the Parquet readers use (reads ranges: no copy to /tmp)."""

    @abstractmethod
    def arrow_path(self, key: str) -> str:
        """``key`` as a path of ``arrow_filesystem``."""


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

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)  # atomic, and fails if the name exists: exactly one writer wins
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        fsync_dir(path.parent)
        return True

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

    def arrow_filesystem(self) -> pafs.FileSystem:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem()

    def arrow_path(self, key: str) -> str:
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

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as error:
            if error_code(error) in CONFLICT_CODES:
                return False
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from error
        return True

    def get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from error
        return bytes(response["Body"].read())

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                keys += [str(item["Key"]) for item in page.get("Contents", [])]
        except ClientError as error:
            if is_not_found(error):
                return []
            raise StoreError(f"cannot list {self.uri(prefix)}: {error}") from error
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in keys)

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            chunk = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            try:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
            except ClientError as error:
                raise StoreError(f"cannot delete under {self.root_uri}: {error}") from error

    def arrow_filesystem(self) -> pafs.FileSystem:
        import pyarrow.fs as pafs

        endpoint = self._settings.s3_endpoint_url
        options: dict[str, object] = {"region": self._settings.aws_region}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            options |= {"endpoint_override": host.rstrip("/"), "scheme": scheme}
            if is_loopback(endpoint) and "AWS_ACCESS_KEY_ID" not in os.environ:
                options |= {"access_key": "testing", "secret_key": "testing"}  # moto: never real credentials
        return pafs.S3FileSystem(**options)  # type: ignore[arg-type]

    def arrow_path(self, key: str) -> str:
        return f"{self.bucket}/{self._key(key)}"


def lake_storage(settings: Settings) -> LakeStorage:
    """The lake at ``settings.lake_uri``: an ``s3://bucket/prefix`` or a folder (default ``<state_dir>/lake``)."""
    uri = settings.lake_root_uri
    if uri.startswith("s3://"):
        bucket, prefix = split_s3_uri(uri if uri.count("/") > 2 else uri + "/")
        return S3LakeStorage(settings, bucket, prefix)
    return LocalLakeStorage(Path(uri.removeprefix("file://")))
