"""Faults at the S3 boundary (moto's S3 server on 127.0.0.1 plus botocore hooks, see faults.py): nothing
is lost, nothing is half-written, and Production is never missing or broken."""

from __future__ import annotations

import multiprocessing
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from fraudops.api import build_default_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.serving.provider import load_from_manifest
from fraudops.stages.promote import run_promotion
from fraudops.stages.train import run_training
from fraudops.store import ModelStore, ensure_bucket, read_manifest, split_s3_uri
from fraudops.store.manifest import manifest_key
from tests.helpers.faults import S3Faults, fail_everything, fail_from_call, fail_operation, promote_in_child, s3_faults
from tests.helpers.stack import manifest_version, production_version, version_count

pytestmark = pytest.mark.e2e
KEY = {"x-api-key": "key-one"}


def s3(settings: Settings) -> Any:
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")


def v1_in_production_and_v2_registered(settings: Settings) -> None:
    """Production = a weak v1 (seed features); v2 (engineered) is registered and better."""
    run_training(settings, feature_set="seed")
    assert run_promotion(settings.model_copy(update={"promotion_floor": 0.0})).promoted
    run_training(settings)


@pytest.fixture
def s3_registry(settings: Settings) -> Settings:
    configured = settings.model_copy(update={"registry_s3_key": "registry/mlflow.db"})
    ensure_bucket(configured)
    return configured


# --- training -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("registry", ["sqlite-file", "s3-object"])
def test_s3_down_during_training_fails_clearly_then_a_retry_succeeds(settings: Settings, registry: str) -> None:
    if registry == "s3-object":
        settings = settings.model_copy(update={"registry_s3_key": "registry/mlflow.db"})
    run_training(settings)
    assert run_promotion(settings).promoted
    with s3_faults(S3Faults(fail_when=fail_everything())) as faults, pytest.raises(StoreError) as error:
        run_training(settings)
    assert faults.failures
    assert "Could not connect" in str(error.value) or "cannot" in str(error.value)
    assert version_count(settings) == 1
    assert production_version(settings) == "1"
    assert run_training(settings).version == "2"  # S3 is back: the retry goes through


def test_flaky_s3_during_training_is_absorbed_by_retries(settings: Settings) -> None:
    with s3_faults(S3Faults(fail_when=fail_operation("PutObject", times=2))) as faults:
        result = run_training(settings)
    assert len(faults.failures) == 2
    assert result.version == "1"


def test_slow_s3_during_training_still_registers(settings: Settings) -> None:
    with s3_faults(S3Faults(delay_seconds=0.05)) as faults:
        result = run_training(settings)
    assert result.version == "1" and len(faults.calls) > 5


# --- promotion ------------------------------------------------------------------------------------------


def snapshot(settings: Settings) -> dict[str, bytes]:
    client = s3(settings)
    keys = ["registry/mlflow.db", f"{settings.artifact_prefix}/{manifest_key(settings)}"]
    return {key: client.get_object(Bucket=settings.model_bucket, Key=key)["Body"].read() for key in keys}


def restore(settings: Settings, saved: dict[str, bytes]) -> None:
    for key, body in saved.items():
        s3(settings).put_object(Bucket=settings.model_bucket, Key=key, Body=body)


def assert_production_whole(settings: Settings) -> None:
    alias, published = production_version(settings), manifest_version(settings)
    assert alias in {"1", "2"} and published in {"1", "2"}
    if alias == "1":
        assert published == "1"  # the manifest never runs ahead of the registry
    loaded = load_from_manifest(settings)
    assert loaded is not None and loaded.manifest.version == published  # what is published loads


def test_a_fault_at_any_s3_call_of_a_promotion_keeps_production_whole(s3_registry: Settings) -> None:
    settings = s3_registry
    v1_in_production_and_v2_registered(settings)
    saved = snapshot(settings)
    with s3_faults(S3Faults()) as counting:
        assert run_promotion(settings).promoted
    total_calls = len(counting.calls)
    assert total_calls > 5
    faulted = 0
    for call in range(1, total_calls + 1):  # S3 goes down at this call and stays down
        restore(settings, saved)
        with s3_faults(S3Faults(fail_when=fail_from_call(call))) as faults:
            try:
                run_promotion(settings)
            except Exception:  # any failure is allowed: what matters is the state it leaves
                faulted += 1
        assert faults.failures and faults.failures[0] == f"{call}:{faults.calls[call - 1]}"
        assert_production_whole(settings)
        retried = run_promotion(settings)  # the state machine's retry
        assert retried.outcome in {"promoted", "already_production"}
        assert production_version(settings) == "2" and manifest_version(settings) == "2"
    assert faulted == total_calls  # every outage failed the promotion loudly, and nothing broke


def test_an_outage_at_any_s3_call_of_a_rollback_leaves_old_or_new_with_its_event(s3_registry: Settings) -> None:
    """The S3-object registry (AWS's layout): S3 goes down at each call of a rollback in turn."""
    from fraudops.production.history import read_history
    from fraudops.stages.rollback import reconcile, rollback

    settings = s3_registry
    v1_in_production_and_v2_registered(settings)
    assert run_promotion(settings).promoted
    saved = snapshot(settings)
    history_keys = {o["Key"] for o in s3(settings).list_objects_v2(Bucket=settings.model_bucket).get("Contents", [])
                    if "/history/" in o["Key"]}  # fmt: skip

    def reset() -> None:
        restore(settings, saved)
        for item in s3(settings).list_objects_v2(Bucket=settings.model_bucket).get("Contents", []):
            if ("/history/" in item["Key"] and item["Key"] not in history_keys) or "/intents/" in item["Key"]:
                s3(settings).delete_object(Bucket=settings.model_bucket, Key=item["Key"])

    def events() -> list[tuple[str, str | None, str | None]]:
        return [(c.action, c.from_version, c.to_version) for c in read_history(settings)]

    before = events()
    with s3_faults(S3Faults()) as counting:
        rollback(settings, "v2 misbehaves", from_version="2")
    after = events()
    assert after == [*before, ("rolled_back", "2", "1")]
    total_calls = len(counting.calls)
    for call in range(1, total_calls + 1):
        reset()
        with s3_faults(S3Faults(fail_when=fail_from_call(call))), pytest.raises(Exception) as failure:
            rollback(settings, "v2 misbehaves", from_version="2")
        alias = production_version(settings)
        if alias == "2":
            assert events() == before and manifest_version(settings) == "2", call
        else:
            assert alias == "1" and events() == after, f"{call}: {failure.value}"
            assert "version 1 is Production in the registry" in str(failure.value), call
        reconcile(settings)
        assert production_version(settings) == manifest_version(settings) == events()[-1][2], call
        try:
            rollback(settings, "v2 misbehaves (retry)", from_version="2")
        except Exception as error:
            assert "not 2" in str(error), call
        assert production_version(settings) == manifest_version(settings) == "1" and events() == after, call


def test_manifest_write_failure_after_the_alias_moved_is_repaired_by_a_retry(s3_registry: Settings) -> None:
    settings = s3_registry
    v1_in_production_and_v2_registered(settings)
    api = TestClient(build_default_app(settings))
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()["model_version"] == "1"
    manifest_puts = fail_operation("PutObject", url_part="/serving/fraud-detector/production.json")
    with s3_faults(S3Faults(fail_when=manifest_puts)), pytest.raises(StoreError, match="running this command again"):
        run_promotion(settings)
    assert production_version(settings) == "2" and manifest_version(settings) == "1"
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()["model_version"] == "1"
    assert run_promotion(settings).outcome == "already_production"
    assert manifest_version(settings) == "2"
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()["model_version"] == "2"


def test_a_failed_write_of_the_compiled_trees_changes_nothing(s3_registry: Settings) -> None:
    settings = s3_registry
    v1_in_production_and_v2_registered(settings)
    compiled_puts = fail_operation("PutObject", url_part="/serving/fraud-detector/compiled/")
    with s3_faults(S3Faults(fail_when=compiled_puts)), pytest.raises(StoreError, match="nothing was changed"):
        run_promotion(settings)
    assert production_version(settings) == "1" and manifest_version(settings) == "1"
    assert run_promotion(settings).outcome == "promoted" and manifest_version(settings) == "2"


def test_two_racing_promotions_exactly_one_wins(s3_registry: Settings) -> None:
    settings = s3_registry
    v1_in_production_and_v2_registered(settings)
    values = settings.model_dump(mode="json", exclude={"api_keys"})
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        outcomes = sorted(pool.map(promote_in_child, [values, values]))
    assert outcomes == ["already_production", "promoted"]
    assert production_version(settings) == "2" and manifest_version(settings) == "2"
    with ModelStore(settings).session() as client:
        tags = client.get_model_version(settings.model_name, "2").tags
    assert tags["fraudops.promotion.decision"] == "promoted"


# --- corrupted, missing and mismatched models ------------------------------------------------------------


def candidate_artifact(settings: Settings, name: str) -> tuple[str, str]:
    """(bucket, key) of a file of version 2's model."""
    from fraudops.stages.promote import artifact_location

    with ModelStore(settings).session() as client:
        location = artifact_location(client, client.get_model_version(settings.model_name, "2"))
    return split_s3_uri(f"{location}/artifacts/{name}")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("corrupt", "cannot be loaded"),
        ("missing", "is missing"),
        ("unknown-feature", "ip_risk_score"),
    ],
)
def test_broken_candidates_are_refused(settings: Settings, damage: str, reason: str) -> None:
    v1_in_production_and_v2_registered(settings)
    client = s3(settings)
    if damage == "corrupt":
        bucket, key = candidate_artifact(settings, "booster.ubj")
        client.put_object(Bucket=bucket, Key=key, Body=b"\x00not a booster")
    elif damage == "missing":
        bucket, key = candidate_artifact(settings, "booster.ubj")
        client.delete_object(Bucket=bucket, Key=key)
    else:
        bucket, key = candidate_artifact(settings, "feature_spec.json")
        spec = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        client.put_object(Bucket=bucket, Key=key, Body=spec.replace('"amount_to_balance"', '"ip_risk_score"'))
    decision = run_promotion(settings)
    assert decision.outcome == "kept"
    assert decision.reason.startswith("candidate refused")
    assert reason in decision.reason
    assert production_version(settings) == "1" and manifest_version(settings) == "1"


def test_api_keeps_serving_when_the_new_production_artifact_is_corrupt(settings: Settings) -> None:
    v1_in_production_and_v2_registered(settings)
    api = TestClient(build_default_app(settings))
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()["model_version"] == "1"
    assert run_promotion(settings).promoted
    manifest, _ = read_manifest(settings)
    assert manifest is not None
    bucket, key = split_s3_uri(manifest.booster_uri)
    s3(settings).put_object(Bucket=bucket, Key=key, Body=b"corrupted after promotion")
    response = api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 200 and response.json()["model_version"] == "1"
    health = api.get("/health").json()
    assert health["status"] == "degraded" and "checksum" in health["problem"]


def test_cold_start_without_a_loadable_model_is_503_then_recovers(settings: Settings) -> None:
    v1_in_production_and_v2_registered(settings)
    manifest, _ = read_manifest(settings)
    assert manifest is not None
    bucket, key = split_s3_uri(manifest.booster_uri)
    good = s3(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    s3(settings).put_object(Bucket=bucket, Key=key, Body=b"corrupted")
    api = TestClient(build_default_app(settings))  # a cold start: nothing loaded yet
    response = api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 503
    assert response.json()["error"] == "model_unavailable" and "checksum" in response.json()["message"]
    assert api.get("/health").status_code == 503
    s3(settings).put_object(Bucket=bucket, Key=key, Body=good)  # the store is repaired
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).status_code == 200
