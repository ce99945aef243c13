"""The model store: MLflow tracking + registry, with artifacts in S3 (moto's S3 server locally).

Two ways to keep the registry database, chosen by configuration:

* a SQLite file (``tracking_uri``, default ``sqlite:///.fraudops/mlflow.db``) or any MLflow server;
* ``registry_s3_key``: the SQLite file lives as an object in the model bucket. Each ``session()``
  downloads it, works on a private copy and uploads it with an S3 conditional write (``If-Match`` on
  the ETag it read). A concurrent writer makes the upload fail with ``RegistryConflictError`` instead
  of being lost, and a failure inside the session uploads nothing: the registry is never half-written.

The serving manifest is a small JSON object the API reads with one GET (no MLflow import on the request
path): it names the Production version and where its booster and feature spec are.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from fraudops.config import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mypy_boto3_s3 import S3Client
else:  # boto3-stubs are optional
    S3Client = Any

BOOSTER_ARTIFACT = "booster.ubj"
SPEC_ARTIFACT = "feature_spec.json"
MANIFEST_SCHEMA_VERSION = 1


class StoreError(RuntimeError):
    """The model store could not be reached or holds something unusable."""


class RegistryConflictError(StoreError):
    """Someone else updated the registry since this session read it; retry the whole operation."""


def configure_local_aws(settings: Settings) -> None:
    """Point boto3 and MLflow at the configured endpoint. With a local endpoint and no credentials in
    the environment, use moto's dummy ones (never real ones: nothing here leaves 127.0.0.1)."""
    if settings.s3_endpoint_url:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
        host = urlparse(settings.s3_endpoint_url).hostname or ""
        if host in {"127.0.0.1", "localhost", "::1"} and "AWS_ACCESS_KEY_ID" not in os.environ:
            os.environ["AWS_ACCESS_KEY_ID"] = "testing"
            os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.aws_region)


@lru_cache(maxsize=8)
def _cached_s3_client(endpoint_url: str | None, region: str) -> S3Client:
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def s3_client(settings: Settings) -> S3Client:
    """One client per endpoint per process (creating one costs ~50 ms; Lambda reuses it when warm)."""
    configure_local_aws(settings)
    return _cached_s3_client(settings.s3_endpoint_url, settings.aws_region)


def reset_s3_clients() -> None:
    """Forget cached S3 clients (ours and MLflow's artifact client), so the next call makes new ones:
    needed when the S3 endpoint, a botocore hook or a moto mock changes within one process."""
    _cached_s3_client.cache_clear()
    artifact_repo = sys.modules.get("mlflow.store.artifact.s3_artifact_repo")
    if artifact_repo is not None:
        artifact_repo._cached_get_s3_client.cache_clear()


def ensure_bucket(settings: Settings) -> None:
    """Create the model bucket if it does not exist (local runs; in AWS the template creates it).
    A 403 means it exists but this role may not list it (the functions' least-privilege policies)."""
    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.model_bucket)
    except ClientError as error:
        code = _error_code(error)
        if code in {"403", "AccessDenied", "Forbidden"}:
            return
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise StoreError(f"cannot reach bucket {settings.model_bucket}: {error}") from error
        client.create_bucket(Bucket=settings.model_bucket)


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# --- the registry session ------------------------------------------------------------------------------


class ModelStore:
    """Opens MLflow sessions against the configured tracking/registry store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        configure_local_aws(settings)

    @property
    def uses_s3_registry(self) -> bool:
        return self.settings.registry_s3_key is not None and self.settings.tracking_uri is None

    def local_tracking_uri(self) -> str:
        if self.settings.tracking_uri:
            return self.settings.tracking_uri
        path = (self.settings.state_dir / "mlflow.db").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"

    @contextlib.contextmanager
    def session(self) -> Iterator[MlflowClient]:
        """An MlflowClient whose writes are committed all together when the block exits cleanly."""
        if self.uses_s3_registry:
            with self._s3_registry_session() as client:
                yield client
            return
        with self._file_lock():
            yield self._activate(self.local_tracking_uri())

    def _activate(self, tracking_uri: str) -> MlflowClient:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise local registry writers (two promotions on one laptop), like the S3 ETag does in AWS."""
        uri = self.local_tracking_uri()
        if not uri.startswith("sqlite:///"):
            yield  # a tracking server does its own locking
            return
        lock_path = Path(uri.removeprefix("sqlite:///")).with_suffix(".lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _s3_registry_session(self) -> Iterator[MlflowClient]:
        key = self.settings.registry_s3_key
        assert key is not None
        client = s3_client(self.settings)
        bucket = self.settings.model_bucket
        # A fresh folder per session: MLflow caches a store per URI, and a cached SQLite connection
        # must never see a file swapped underneath it. Lambda may only write under /tmp.
        workdir = Path(tempfile.mkdtemp(prefix="fraudops-registry-"))
        db_path = workdir / "mlflow.db"
        try:
            etag: str | None = None
            try:
                response = client.get_object(Bucket=bucket, Key=key)
                db_path.write_bytes(response["Body"].read())
                etag = response["ETag"]
            except ClientError as error:
                if _error_code(error) == "NoSuchBucket":
                    ensure_bucket(self.settings)  # a fresh local setup; in AWS the bucket always exists
                elif _error_code(error) not in {"NoSuchKey", "404"}:
                    raise StoreError(f"cannot read registry s3://{bucket}/{key}: {error}") from error
            before = _file_digest(db_path)
            # MLflow commits each write, so the file is complete once the block exits.
            yield self._activate(f"sqlite:///{db_path}")
            if _file_digest(db_path) == before:
                return  # read-only session: nothing to commit
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                client.put_object(Bucket=bucket, Key=key, Body=db_path.read_bytes(), **condition)
            except ClientError as error:
                if _error_code(error) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                    raise RegistryConflictError(
                        f"registry s3://{bucket}/{key} changed during this session; nothing was written"
                    ) from error
                raise StoreError(f"cannot write registry s3://{bucket}/{key}: {error}") from error
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def ensure_experiment(self, client: MlflowClient) -> str:
        """The experiment whose artifacts live under s3://<model_bucket>/<artifact_prefix>."""
        ensure_bucket(self.settings)
        experiment = client.get_experiment_by_name(self.settings.experiment_name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            client.create_experiment(self.settings.experiment_name, artifact_location=self.settings.artifact_root)
        )


def _file_digest(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_registry_retries(attempts: int = 5, base_delay: float = 0.2) -> Any:
    """Retry an operation that lost an optimistic-concurrency race (it re-reads the registry each time)."""

    def decorate(func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except RegistryConflictError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(base_delay * (2**attempt))
            raise AssertionError("unreachable")

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate


# --- the serving manifest ----------------------------------------------------------------------------


def model_file_uri(artifact_location: str, name: str) -> str:
    """A file the pyfunc model logged via ``artifacts=`` (MLflow puts them under ``artifacts/``)."""
    return f"{artifact_location.rstrip('/')}/artifacts/{name}"


@dataclass(frozen=True)
class ServingManifest:
    """What the API needs to serve the Production version, written by promotion after the alias moved."""

    model_name: str
    version: str
    run_id: str
    model_uri: str
    artifact_location: str
    booster_sha256: str
    threshold: float
    feature_names: list[str]
    metrics: dict[str, float]
    promoted_at: str
    schema_version: int = MANIFEST_SCHEMA_VERSION

    @property
    def booster_uri(self) -> str:
        return model_file_uri(self.artifact_location, BOOSTER_ARTIFACT)

    @property
    def spec_uri(self) -> str:
        return model_file_uri(self.artifact_location, SPEC_ARTIFACT)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> ServingManifest:
        try:
            data = json.loads(body)
            return cls(**data)
        except (ValueError, TypeError) as error:
            raise StoreError(f"serving manifest is malformed: {error}") from error


def publish_manifest(settings: Settings, manifest: ServingManifest) -> None:
    s3_client(settings).put_object(
        Bucket=settings.model_bucket,
        Key=settings.manifest_key,
        Body=manifest.to_json(),
        ContentType="application/json",
    )


def read_manifest(settings: Settings) -> tuple[ServingManifest | None, str | None]:
    """(manifest, etag), or (None, None) when nothing has been promoted yet."""
    try:
        response = s3_client(settings).get_object(Bucket=settings.model_bucket, Key=settings.manifest_key)
    except ClientError as error:
        if _error_code(error) in {"NoSuchKey", "404", "NoSuchBucket"}:
            return None, None
        raise StoreError(f"cannot read the serving manifest: {error}") from error
    return ServingManifest.from_json(response["Body"].read()), str(response["ETag"])


def manifest_etag(settings: Settings) -> str | None:
    """A HEAD request: has Production moved since we last looked?"""
    try:
        response = s3_client(settings).head_object(Bucket=settings.model_bucket, Key=settings.manifest_key)
    except ClientError as error:
        if _error_code(error) in {"NoSuchKey", "404", "NoSuchBucket", "NotFound"}:
            return None
        raise StoreError(f"cannot read the serving manifest: {error}") from error
    return str(response["ETag"])


class ArtifactMissingError(StoreError):
    """The object is not there (a deleted or never-written artifact), as opposed to S3 being unreachable."""


def read_s3_bytes(settings: Settings, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    try:
        response = s3_client(settings).get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) in {"NoSuchKey", "404", "NotFound"}:
            raise ArtifactMissingError(f"{uri} is missing") from error
        raise StoreError(f"cannot read {uri}: {error}") from error
    return bytes(response["Body"].read())


def read_artifact(settings: Settings, uri: str) -> bytes:
    """One artifact file by URI: S3 directly (one GET), any other MLflow artifact store through MLflow."""
    if uri.startswith("s3://"):
        return read_s3_bytes(settings, uri)
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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
