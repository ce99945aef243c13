"""The S3 client, made once per endpoint per process, and S3's error vocabulary in one place."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from fraudops.core.config import Settings, running_in_lambda
from fraudops.core.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:  # boto3-stubs are optional
    S3Client = Any

# What S3 answers for "not there", whichever call asked (GET: NoSuchKey, HEAD: 404/NotFound).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
ACCESS_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_loopback(endpoint_url: str | None) -> bool:
    return bool(endpoint_url) and (urlparse(endpoint_url).hostname or "") in LOOPBACK_HOSTS


def check_aws_is_intended(settings: Settings) -> None:
    """Outside Lambda, S3 without an endpoint means real AWS with whatever credentials the shell has:
    do that only when asked (FRAUDOPS_AWS=true or the CLI's --aws), never by falling through."""
    if settings.s3_endpoint_url or settings.aws or running_in_lambda():
        return
    raise ConfigError(
        "this needs S3, but no FRAUDOPS_S3_ENDPOINT_URL is set: start the local stack in S3 mode "
        "(FRAUDOPS_STORAGE=s3 make up) or, to use real AWS, pass --aws (FRAUDOPS_AWS=true)"
    )


@lru_cache(maxsize=8)
def _cached_s3_client(endpoint_url: str | None, region: str) -> S3Client:
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    credentials: dict[str, str] = {}
    if is_loopback(endpoint_url) and "AWS_ACCESS_KEY_ID" not in os.environ:
        # moto's server accepts any credentials; never send real ones to it, never need them.
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **credentials)


def s3_client(settings: Settings) -> S3Client:
    """One client per endpoint per process (creating one costs ~50 ms; Lambda reuses it when warm)."""
    check_aws_is_intended(settings)
    return _cached_s3_client(settings.s3_endpoint_url, settings.aws_region)


def s3_client_at(endpoint_url: str | None, region: str) -> S3Client:
    """The cached client for an endpoint and region: for code that knows only those two (the lake's
    pyiceberg FileIO, built by pyiceberg from string properties)."""
    return _cached_s3_client(endpoint_url, region)


def reset_s3_clients() -> None:
    """Forget cached S3 clients (ours and MLflow's artifact client), so the next call makes new ones:
    needed when the S3 endpoint, a botocore hook or a moto mock changes within one process."""
    _cached_s3_client.cache_clear()
    artifact_repo = sys.modules.get("mlflow.store.artifact.s3_artifact_repo")
    if artifact_repo is not None:
        artifact_repo._cached_get_s3_client.cache_clear()


def mlflow_s3_environment(settings: Settings) -> dict[str, str]:
    """What MLflow's own S3 artifact client reads from the environment (it takes no client from us)."""
    env = {"AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", settings.aws_region)}
    if settings.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
        if is_loopback(settings.s3_endpoint_url) and "AWS_ACCESS_KEY_ID" not in os.environ:
            env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return env


def ensure_bucket(settings: Settings) -> None:
    """Create the model bucket if it does not exist (local runs; in AWS the template creates it).
    A 403 means it exists but this role may not list it (the functions' least-privilege policies)."""
    client = s3_client(settings)
    try:
        client.head_bucket(Bucket=settings.model_bucket)
    except ClientError as error:
        if error_code(error) in ACCESS_DENIED_CODES:
            return
        if not is_not_found(error):
            raise StoreError(f"cannot reach bucket {settings.model_bucket}: {error}") from error
        client.create_bucket(Bucket=settings.model_bucket)


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")
