"""`fraudops ui --stack NAME`: MLflow's own UI for a deployed stack, on 127.0.0.1.

In AWS the registry is an SQLite object in the model bucket, so nobody can browse it in place. This
takes a read-only copy of it (never written back), and serves MLflow's UI on that copy with the
artifacts read straight from the model bucket, using the caller's AWS credentials.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from fraudops.core.config import Settings
from fraudops.core.errors import ConfigError, StoreError
from fraudops.store.s3 import is_not_found, mlflow_s3_environment, s3_client
from fraudops_dev.local import ONE_WORKER

BUCKET_OUTPUT = "ModelBucketName"


def stack_bucket(stack: str, region: str) -> str:
    """The model bucket a deployed stack declares in its outputs."""
    import boto3
    from botocore.exceptions import ClientError

    try:
        stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        raise ConfigError(f"cannot read stack {stack!r} in {region}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if BUCKET_OUTPUT not in outputs:
        raise ConfigError(f"stack {stack!r} has no {BUCKET_OUTPUT} output: is it a fraudops stack?")
    return outputs[BUCKET_OUTPUT]


def registry_copy(settings: Settings, bucket: str, into: Path) -> Path:
    """Download the registry object to a read-only file."""
    from botocore.exceptions import ClientError

    key = settings.registry_s3_key or "registry/mlflow.db"
    path = into / "mlflow.db"
    try:
        s3_client(settings).download_file(bucket, key, str(path))
    except ClientError as error:
        if is_not_found(error):
            raise StoreError(f"no registry at s3://{bucket}/{key}: has the stack trained a model yet?") from None
        raise StoreError(f"cannot read s3://{bucket}/{key}: {error}") from error
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    return path


def start_deployed_ui(settings: Settings, bucket: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    copy = registry_copy(settings, bucket, workdir)
    env = {**os.environ, **mlflow_s3_environment(settings)}
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{copy}",
               "--host", "127.0.0.1", "--port", str(port), *ONE_WORKER]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=workdir)


def serve_deployed_ui(settings: Settings, stack: str | None, bucket: str | None, port: int | None) -> int:
    if not (stack or bucket):
        raise ConfigError("say which deployment: --stack NAME (or --bucket NAME)")
    if not settings.s3_endpoint_url and not settings.aws:
        settings = settings.model_copy(update={"aws": True})  # reading a deployed stack is asking for AWS
    bucket = bucket or stack_bucket(str(stack), settings.aws_region)
    port = port or settings.mlflow_ui_port
    workdir = Path(tempfile.mkdtemp(prefix="fraudops-ui-"))
    try:
        process = start_deployed_ui(settings, bucket, port, workdir)
        print(f"MLflow UI for s3://{bucket} on http://127.0.0.1:{port} (a read-only copy of the registry; "
              "Ctrl-C stops it)", flush=True)  # fmt: skip
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait(timeout=10)
            return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
