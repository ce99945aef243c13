"""The S3-backed registry: sessions commit with conditional writes, so a concurrent writer is never lost
and a failed session writes nothing (against moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

import threading

import boto3
import pytest

from fraudops.core.config import Settings
from fraudops.core.errors import RegistryConflictError
from fraudops.store import ModelStore, ensure_bucket, with_registry_retries

pytestmark = pytest.mark.e2e


@pytest.fixture
def s3_settings(settings: Settings) -> Settings:
    s3_mode = settings.model_copy(update={"registry_s3_key": "registry/mlflow.db"})
    ensure_bucket(s3_mode)
    return s3_mode


def registered_names(settings: Settings) -> set[str]:
    with ModelStore(settings).session() as client:
        return {m.name for m in client.search_registered_models()}


def registry_object_version(settings: Settings) -> str | None:
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    try:
        return str(s3.head_object(Bucket=settings.model_bucket, Key="registry/mlflow.db")["ETag"])
    except Exception:
        return None


def test_session_commits_to_s3(s3_settings: Settings) -> None:
    assert registry_object_version(s3_settings) is None
    with ModelStore(s3_settings).session() as client:
        client.create_registered_model("first")
    assert registry_object_version(s3_settings) is not None
    assert registered_names(s3_settings) == {"first"}


def test_read_only_session_writes_nothing(s3_settings: Settings) -> None:
    with ModelStore(s3_settings).session() as client:
        client.create_registered_model("first")
    before = registry_object_version(s3_settings)
    assert registered_names(s3_settings) == {"first"}
    assert registry_object_version(s3_settings) == before


def test_failed_session_writes_nothing(s3_settings: Settings) -> None:
    with ModelStore(s3_settings).session() as client:
        client.create_registered_model("kept")
    with pytest.raises(RuntimeError, match="midway"), ModelStore(s3_settings).session() as client:
        client.create_registered_model("half-written")
        raise RuntimeError("failure midway")
    assert registered_names(s3_settings) == {"kept"}


def test_concurrent_writer_is_detected_not_lost(s3_settings: Settings) -> None:
    store = ModelStore(s3_settings)
    with pytest.raises(RegistryConflictError), store.session() as slow:
        slow.create_registered_model("slow-writer")
        with store.session() as fast:  # commits while the slow session is still open
            fast.create_registered_model("fast-writer")
    assert registered_names(s3_settings) == {"fast-writer"}


def test_racing_writers_all_land_with_retries(s3_settings: Settings) -> None:
    @with_registry_retries(attempts=20, base_delay=0.05)
    def register(name: str) -> None:
        with ModelStore(s3_settings).session() as client:
            client.create_registered_model(name)

    threads = [threading.Thread(target=register, args=(f"model-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert registered_names(s3_settings) == {f"model-{i}" for i in range(4)}
