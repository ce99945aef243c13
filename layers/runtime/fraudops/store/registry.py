"""The MLflow registry session, over one of three backends behind one small interface:

* ``SqliteFileRegistry``: MLflow's own SQLite file (the local default, ``<state_dir>/mlflow.db``),
  writers serialised by a file lock; SQLite's journal makes every commit survive a ``kill -9``;
* ``S3ObjectRegistry``: the same SQLite file kept as an object in the model bucket (the serverless
  default in AWS). A session downloads it, works on a private copy and uploads it with a conditional
  write (``If-Match`` on the ETag it read): a concurrent writer makes the upload fail with
  ``RegistryConflictError`` instead of being lost, and a failed session uploads nothing;
* ``TrackingServerRegistry``: an MLflow tracking server, which does its own locking.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from fraudops.core.config import Settings
from fraudops.core.errors import RegistryConflictError, StoreError
from fraudops.store.s3 import CONFLICT_CODES, ensure_bucket, error_code, is_not_found, mlflow_s3_environment, s3_client

if TYPE_CHECKING:
    from mlflow import MlflowClient

# What MLflow answers for "no such model, version or alias", whichever store is behind it.
MLFLOW_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class RegistryBackend(ABC):
    @abstractmethod
    def session(self) -> contextlib.AbstractContextManager[str]:
        """A tracking URI valid for the block; its writes are kept only if the block exits cleanly."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the registry lives, for messages."""

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """The version an alias names, read without MLflow (the API checks it against what it serves)."""
        with self.session() as uri:
            return _sqlite_alias_version(Path(uri.removeprefix("sqlite:///")), model_name, alias)


def _sqlite_alias_version(path: Path, model_name: str, alias: str) -> str | None:
    import sqlite3

    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (model_name, alias)
            ).fetchone()
    except sqlite3.Error:  # no registry yet (no such table)
        return None
    return str(row[0]) if row else None


class SqliteFileRegistry(RegistryBackend):
    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    def alias_version(self, model_name: str, alias: str) -> str | None:
        return _sqlite_alias_version(self.path, model_name, alias)  # a read: no lock needed

    @property
    def location(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def session(self) -> Iterator[str]:
        """Serialise writers on one machine (two promotions at once), as the S3 ETag does in AWS."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield f"sqlite:///{self.path}"
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class TrackingServerRegistry(RegistryBackend):
    def __init__(self, uri: str) -> None:
        self.uri = uri

    def alias_version(self, model_name: str, alias: str) -> str | None:
        import json
        import urllib.error
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"name": model_name, "alias": alias})
        url = f"{self.uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(json.loads(response.read())["model_version"]["version"])
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise StoreError(f"cannot read the alias from {self.uri}: HTTP {error.code}") from error
        except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
            raise StoreError(f"cannot read the alias from {self.uri}: {error}") from error

    @property
    def location(self) -> str:
        return self.uri

    @contextlib.contextmanager
    def session(self) -> Iterator[str]:
        yield self.uri


# (bucket, key, model, alias) -> (ETag of the registry object read, the version the alias named in it)
_ALIAS_CACHE: dict[tuple[str, str, str, str], tuple[str, str | None]] = {}


class S3ObjectRegistry(RegistryBackend):
    def __init__(self, settings: Settings, key: str) -> None:
        self.settings = settings
        self.bucket = settings.model_bucket
        self.key = key

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def alias_version(self, model_name: str, alias: str) -> str | None:
        """One HEAD per call; the registry object is downloaded again only when its ETag changed (the API
        asks every refresh interval, and the object rarely changes between two asks)."""
        client = s3_client(self.settings)
        try:
            etag = str(client.head_object(Bucket=self.bucket, Key=self.key)["ETag"])
        except ClientError as error:
            if is_not_found(error):
                return None
            raise StoreError(f"cannot read registry {self.location}: {error}") from error
        cache_key = (self.bucket, self.key, model_name, alias)
        cached = _ALIAS_CACHE.get(cache_key)
        if cached is not None and cached[0] == etag:
            return cached[1]
        with tempfile.TemporaryDirectory(prefix="fraudops-alias-") as tmp:
            path = Path(tmp) / "mlflow.db"
            try:
                response = client.get_object(Bucket=self.bucket, Key=self.key)
            except ClientError as error:
                raise StoreError(f"cannot read registry {self.location}: {error}") from error
            path.write_bytes(response["Body"].read())
            version = _sqlite_alias_version(path, model_name, alias)
        _ALIAS_CACHE[cache_key] = (str(response["ETag"]), version)  # the ETag of the bytes actually read
        return version

    @contextlib.contextmanager
    def session(self) -> Iterator[str]:
        client = s3_client(self.settings)
        # A fresh folder per session: MLflow caches a store per URI, and a cached SQLite connection
        # must never see a file swapped underneath it. Lambda may only write under /tmp.
        workdir = Path(tempfile.mkdtemp(prefix="fraudops-registry-"))
        db_path = workdir / "mlflow.db"
        try:
            etag: str | None = None
            try:
                response = client.get_object(Bucket=self.bucket, Key=self.key)
                db_path.write_bytes(response["Body"].read())
                etag = response["ETag"]
            except ClientError as error:
                if error_code(error) == "NoSuchBucket":
                    ensure_bucket(self.settings)  # a fresh local setup; in AWS the bucket always exists
                elif not is_not_found(error):
                    raise StoreError(f"cannot read registry {self.location}: {error}") from error
            before = _file_digest(db_path)
            yield f"sqlite:///{db_path}"  # MLflow commits each write: the file is whole once the block exits
            if _file_digest(db_path) == before:
                return  # read-only session: nothing to commit
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                client.put_object(Bucket=self.bucket, Key=self.key, Body=db_path.read_bytes(), **condition)
            except ClientError as error:
                if error_code(error) in CONFLICT_CODES:
                    raise RegistryConflictError(
                        f"registry {self.location} changed during this session; nothing was written"
                    ) from error
                raise StoreError(f"cannot write registry {self.location}: {error}") from error
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _file_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def registry_alias_version(settings: Settings) -> str | None:
    """The version the Production alias names in the configured registry (None: no alias yet)."""
    return registry_backend(settings).alias_version(settings.model_name, settings.production_alias)


def registry_backend(settings: Settings) -> RegistryBackend:
    if settings.tracking_uri:
        if settings.tracking_uri.startswith("sqlite:///"):
            return SqliteFileRegistry(Path(settings.tracking_uri.removeprefix("sqlite:///")))
        return TrackingServerRegistry(settings.tracking_uri)
    if settings.registry_s3_key:
        return S3ObjectRegistry(settings, settings.registry_s3_key)
    return SqliteFileRegistry(settings.state_dir / "mlflow.db")


def follow_moved_state(db: Path, artifact_root: str) -> str | None:
    """Make a local registry that was moved or copied (the whole state folder, to another place or
    machine) point at the artifacts beside it again. MLflow stores absolute ``file://`` URIs (a relative
    artifact root is made absolute when written), so the paths in the database are rewritten from the
    root they were written under to ``artifact_root``, in one transaction, under the session's lock.
    Returns the old root when something was rewritten."""
    import sqlite3

    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db)) as conn:
        try:
            roots = [row[0] for row in conn.execute("SELECT artifact_location FROM experiments")]
        except sqlite3.Error:  # no MLflow schema yet
            return None
        # Our experiments' roots are the artifact root they were created under: <state_dir>/artifacts.
        here = artifact_root.rstrip("/")
        moved = {root.rstrip("/") for root in roots if isinstance(root, str) and root.startswith("file://")
                 and root.rstrip("/").endswith("/artifacts") and root.rstrip("/") != here}  # fmt: skip
        if not moved:
            return None
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        with conn:
            for old in moved:
                for table in tables:
                    columns = [c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')
                               if any(t in str(c[2]).upper() for t in ("CHAR", "TEXT", "CLOB"))]  # fmt: skip
                    for column in columns:
                        conn.execute(
                            f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) '
                            f'WHERE "{column}" = ? OR substr("{column}", 1, ?) = ?',
                            (here, len(old) + 1, old, len(old) + 1, old + "/"),
                        )
    return ",".join(sorted(moved))


class ModelStore:
    """Opens MLflow sessions against the configured registry; artifacts go to the artifact root."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = registry_backend(settings)

    @contextlib.contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """An MlflowClient whose writes are kept all together when the block exits cleanly."""
        import mlflow

        if self.settings.storage == "s3":
            # MLflow's S3 artifact client takes its endpoint and region only from the environment.
            os.environ.update(mlflow_s3_environment(self.settings))
        with self.backend.session() as uri:
            if self.settings.storage == "local" and isinstance(self.backend, SqliteFileRegistry):
                follow_moved_state(self.backend.path, self.settings.artifact_root)
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    def ensure_experiment(self, client: MlflowClient) -> str:
        """The experiment whose artifacts live at the configured artifact root."""
        if self.settings.storage == "s3":
            ensure_bucket(self.settings)
        else:
            self.settings.local_artifact_dir.mkdir(parents=True, exist_ok=True)
        experiment = client.get_experiment_by_name(self.settings.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            client.create_experiment(self.settings.experiment_name, artifact_location=self.settings.artifact_root)
        )


F = TypeVar("F", bound=Callable[..., Any])


def with_registry_retries(attempts: int = 5, base_delay: float = 0.2) -> Callable[[F], F]:
    """Retry an operation that lost an optimistic-concurrency race (it re-reads the registry each time)."""

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except RegistryConflictError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(base_delay * (2**attempt))
            raise AssertionError("unreachable")

        return wrapper  # type: ignore[return-value]

    return decorate
