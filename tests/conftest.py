"""Shared fixtures: small generated data, a moto S3 server on 127.0.0.1, isolated settings per test."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for function in ("api", "train", "promote"):
    sys.path.insert(0, str(ROOT / "functions" / function))

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Tests never talk to AWS: placeholder credentials for moto, and no profile from the developer's machine.
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)
for key in [k for k in os.environ if k.startswith("FRAUDOPS_")]:
    os.environ.pop(key)

from fraudops.config import Settings  # noqa: E402
from fraudops.data import write_transactions  # noqa: E402
from fraudops.datagen import GeneratorConfig, generate_frames  # noqa: E402
from fraudops.local import moto_s3_server  # noqa: E402

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


def fast_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "n_estimators": 60,
        "early_stopping_rounds": 10,
        "n_threads": 2,
        "model_refresh_seconds": 0.0,
        "promotion_floor": 0.3,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def live_api(settings: Settings, feature_set: str = "engineered") -> Iterator[str]:
    """A model trained and promoted into ``settings``' store, served by uvicorn on 127.0.0.1."""
    from fraudops.api import build_default_app
    from fraudops.demo import serve_in_thread
    from fraudops.local import free_port
    from fraudops.promotion import run_promotion
    from fraudops.store import ensure_bucket
    from fraudops.training import run_training

    ensure_bucket(settings)
    run_training(settings, feature_set=feature_set)
    assert run_promotion(settings.model_copy(update={"promotion_floor": 0.0})).promoted
    with serve_in_thread(build_default_app(settings), free_port()) as base:
        yield base


@pytest.fixture
def settings(tmp_path: Path, small_db: Path, s3_endpoint: str) -> Settings:
    """Settings for one test: its own bucket, registry and state folder on the shared moto server."""
    return fast_settings(
        db_path=small_db,
        state_dir=tmp_path / "state",
        s3_endpoint_url=s3_endpoint,
        model_bucket=f"test-{uuid.uuid4().hex[:12]}",
        api_keys="key-one,key-two",
    )
