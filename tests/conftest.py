"""Shared fixtures: small generated data, a moto S3 server on 127.0.0.1, isolated settings per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.helpers` from any working directory
for function in ("api", "train", "promote", "monitor", "batch", "curate"):
    sys.path.insert(0, str(ROOT / "functions" / function))

from fraudops_dev.local import local_aws_environment  # noqa: E402

os.environ.update(local_aws_environment())
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Tests never talk to AWS: moto's placeholder credentials, and no profile from the developer's machine.
os.environ.pop("AWS_PROFILE", None)
for key in [k for k in os.environ if k.startswith(("FRAUDOPS_", "MLFLOW_S3_"))]:
    os.environ.pop(key)

from fraudops_dev.datagen import GeneratorConfig, generate_frames  # noqa: E402
from fraudops_dev.local import moto_s3_server  # noqa: E402
from fraudops_dev.sqlite_io import write_transactions  # noqa: E402

from fraudops.core.config import Settings  # noqa: E402
from tests.helpers.stack import fast_settings  # noqa: E402

# Every AWS call the tests make is checked against the role that makes it (docs/iam.md).
# pytester: tests of that plugin run a tiny suite of their own (tests/unit/test_aws_calls_xdist.py).
pytest_plugins = ["tests.helpers.aws_calls", "pytester"]

# Small but learnable: 1% fraud so every out-of-time slice has enough positives to measure.
SMALL_ROWS = 60_000
SMALL_FRAUD_RATE = 0.01


@pytest.fixture(scope="session")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "fraud.db"
    write_transactions(path, generate_frames(GeneratorConfig(SMALL_ROWS, seed=7, fraud_rate=SMALL_FRAUD_RATE)))
    return path


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


def own_lake(small_db: Path, tmp_path: Path) -> str:
    """A lake of its own for one test (curation and the monitor write to it), with the session lake's rows
    (an Iceberg table names its files by absolute paths: a copied folder would point at the original's)."""
    from fraudops_dev.sqlite_io import iter_transactions

    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames

    copy = tmp_path / "lake"
    write_transaction_frames(Lake(Settings(lake_uri=str(copy))).transactions, iter_transactions(small_db),
                             source="generate")  # fmt: skip
    return str(copy)


@pytest.fixture
def local_settings(tmp_path: Path, small_db: Path) -> Settings:
    """Settings for one test on the local default: registry, artifacts, manifest and lake on disk."""
    return fast_settings(
        db_path=small_db,
        lake_uri=own_lake(small_db, tmp_path),
        state_dir=tmp_path / "state",
        api_keys="key-one,key-two",
    )


@pytest.fixture
def settings(tmp_path: Path, small_db: Path, s3_endpoint: str) -> Settings:
    """Settings for one test in S3 mode (the AWS code path): its own bucket, registry and state folder
    on the shared moto S3 server."""
    return fast_settings(
        storage="s3",
        db_path=small_db,
        lake_uri=own_lake(small_db, tmp_path),
        state_dir=tmp_path / "state",
        s3_endpoint_url=s3_endpoint,
        model_bucket=f"test-{uuid.uuid4().hex[:12]}",
        api_keys="key-one,key-two",
    )
