"""Where model files and small JSON documents live: an S3 bucket (AWS, and the opt-in local S3 mode) or
a folder on disk (the local default). Both behind one small base class, addressed by relative keys.

A write is atomic in both: S3 replaces an object whole, and the folder backend writes a temporary
file, fsyncs it and renames it over the old one, so a ``kill -9`` leaves the old or the new file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError

from fraudops.core.config import Settings
from fraudops.core.errors import ArtifactMissingError, StoreError
from fraudops.core.files import atomic_write
from fraudops.store.s3 import CONFLICT_CODES, error_code, is_not_found, s3_client, split_s3_uri


class PreconditionFailed(StoreError):
    """A conditional write lost: the object is not (or no longer) the version it was conditioned on."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(ABC):
    """Keys are relative paths (``serving/fraud-detector/production.json``)."""

    @property
    @abstractmethod
    def root_uri(self) -> str:
        """The URI of the root (``s3://bucket/prefix`` or ``file:///abs/path``)."""

    def uri(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{key.lstrip('/')}"

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; ArtifactMissingError if absent, StoreError if unreachable."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...

    def create(self, key: str, data: bytes) -> bool:
        """Write ``key`` only if it does not exist (False if it does, or another writer won the race):
        the one write that commits a change two racing writers cannot both make."""
        try:
            self.put_if(key, data, None)
        except PreconditionFailed:
            return False
        return True

    @abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """The bytes and the etag of one version, in one call; None when absent."""

    @abstractmethod
    def put_if(self, key: str, data: bytes, etag: str | None) -> None:
        """Write only if the object is still the version ``etag`` names (None: only if there is none);
        else raise PreconditionFailed. Of two writers conditioned on the same version, one wins."""

    @abstractmethod
    def etag(self, key: str) -> str | None:
        """Changes whenever the object is replaced; None when absent. One cheap metadata call."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""

    @abstractmethod
    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        """(key, last modified) under ``prefix``, from the listing alone (no request per object)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; absent is fine (a retried delete succeeds)."""

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except ArtifactMissingError:
            return None


class S3BlobStore(BlobStore):
    def __init__(self, settings: Settings, bucket: str, prefix: str) -> None:
        self._settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key.lstrip('/')}" if self.prefix else key.lstrip("/")

    def get(self, key: str) -> bytes:
        return read_s3_uri(self._settings, f"s3://{self.bucket}/{self._key(key)}")

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = s3_client(self._settings).get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from error
        return bytes(response["Body"].read()), str(response["ETag"])

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        try:
            s3_client(self._settings).put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )
        except ClientError as error:
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from error

    def put_if(self, key: str, data: bytes, etag: str | None) -> None:
        # S3 conditional writes: If-None-Match "*" creates only, If-Match replaces only that version;
        # a lost race answers 412 (or 409 while another conditional write is in flight).
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            s3_client(self._settings).put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
        except ClientError as error:
            if error_code(error) in CONFLICT_CODES:
                raise PreconditionFailed(f"{self.uri(key)} changed; not written") from error
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from error

    def etag(self, key: str) -> str | None:
        try:
            response = s3_client(self._settings).head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from error
        return str(response["ETag"])

    def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        keys: list[str] = []
        try:
            pages = s3_client(self._settings).get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                keys += [str(item["Key"]) for item in page.get("Contents", [])]
        except ClientError as error:
            if is_not_found(error):
                return []
            raise StoreError(f"cannot list {self.uri(prefix)}: {error}") from error
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in keys)

    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        found: list[tuple[str, datetime]] = []
        try:
            pages = (
                s3_client(self._settings)
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            )
            for page in pages:
                found += [(str(item["Key"]), item["LastModified"]) for item in page.get("Contents", [])]
        except ClientError as error:
            if is_not_found(error):
                return []
            raise StoreError(f"cannot list {self.uri(prefix)}: {error}") from error
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted((key[strip:], modified) for key, modified in found)

    def delete(self, key: str) -> None:
        try:
            s3_client(self._settings).delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if not is_not_found(error):
                raise StoreError(f"cannot delete {self.uri(key)}: {error}") from error


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def root_uri(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key.lstrip("/")).resolve()
        if self.root not in path.parents:
            raise StoreError(f"key {key!r} leaves the store")
        return path

    def get(self, key: str) -> bytes:
        return read_file(self._path(key))

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            with path.open("rb") as handle:  # the open file is one version even if renamed over meanwhile
                stat = os.fstat(handle.fileno())
                return handle.read(), f'"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"'
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {path}: {error}") from error

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        atomic_write(self._path(key), data)

    def put_if(self, key: str, data: bytes, etag: str | None) -> None:
        """The same contract as S3's conditional writes, between processes on this machine (an
        exclusive lock on a sidecar file around compare-and-rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "a+b") as guard:
            fcntl.flock(guard.fileno(), fcntl.LOCK_EX)
            if self.etag(key) != etag:
                raise PreconditionFailed(f"{path} changed; not written")
            atomic_write(path, data)

    def etag(self, key: str) -> str | None:
        try:
            stat = self._path(key).stat()
        except FileNotFoundError:
            return None
        return f'"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"'

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file() and ".tmp-" not in p.name]
        return sorted(str(p.relative_to(self.root)) for p in files)

    def list_keys_modified(self, prefix: str) -> list[tuple[str, datetime]]:
        return [
            (key, datetime.fromtimestamp(self._path(key).stat().st_mtime, tz=UTC)) for key in self.list_keys(prefix)
        ]

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise StoreError(f"cannot delete {path}: {error}") from error


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise ArtifactMissingError(f"{path} is missing") from error
    except OSError as error:
        raise StoreError(f"cannot read {path}: {error}") from error


def read_s3_uri(settings: Settings, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    try:
        response = s3_client(settings).get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_not_found(error):
            raise ArtifactMissingError(f"{uri} is missing") from error
        raise StoreError(f"cannot read {uri}: {error}") from error
    return bytes(response["Body"].read())


def portable_location(settings: Settings, location: str) -> str:
    """What the serving manifest records: on the local store, a location under the artifact root
    relative to it (so the state folder can be moved or copied to another machine); else as it is."""
    parsed = urlparse(location)
    if settings.storage != "local" or parsed.scheme != "file":
        return location
    try:
        return Path(unquote(parsed.path)).relative_to(settings.local_artifact_dir).as_posix()
    except ValueError:
        return location


def read_uri(settings: Settings, uri: str) -> bytes:
    """One file by URI: S3 directly (one GET), a local file directly (a relative path: under the local
    artifact root, see ``portable_location``), anything else through MLflow."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        return read_s3_uri(settings, uri)
    if parsed.scheme == "file":
        return read_file(Path(unquote(parsed.path)))
    if not parsed.scheme and not uri.startswith("/"):
        return read_file(settings.local_artifact_dir / uri)
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="fraudops-artifact-") as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ArtifactMissingError(f"{uri} is missing") from error
            raise StoreError(f"cannot read {uri}: {error}") from error
        return Path(path).read_bytes()


def write_uri(settings: Settings, uri: str, data: bytes) -> None:
    """``read_uri``'s counterpart for outputs: one whole S3 object, or a local file (``file://`` or a
    path) replaced atomically. Either way a reader never sees it half-written."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        bucket, key = split_s3_uri(uri)
        s3_client(settings).put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


def blob_store(settings: Settings) -> BlobStore:
    """The store at the artifact root: the model bucket's prefix (S3) or <state_dir>/artifacts (local)."""
    if settings.storage == "s3":
        return S3BlobStore(settings, settings.model_bucket, settings.artifact_prefix)
    return LocalBlobStore(settings.local_artifact_dir)
