"""Issue 13: rollback, manual promotion, reconciling what is served with the registry, the history,
and the MLflow UI for a deployed stack. On the S3 code path (moto's S3 server), as in AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fraudops.api import build_default_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.core.errors import PromotionError, StoreError
from fraudops.model.fraud_model import BOOSTER_ARTIFACT
from fraudops.production.history import read_history
from fraudops.stages.promote import artifact_location, run_promotion
from fraudops.stages.rollback import reconcile, rollback
from fraudops.stages.train import run_training
from fraudops.store import ModelStore, model_file_uri, split_s3_uri
from fraudops.store.s3 import s3_client
from tests.helpers.events import lambda_context, load_event
from tests.helpers.stack import fresh_import, manifest_version, production_version, train_and_promote, use_settings

pytestmark = pytest.mark.e2e
KEY = {"x-api-key": "key-one"}


@pytest.fixture
def registry(settings: Settings) -> Settings:
    """The AWS layout: the registry as an S3 object."""
    return settings.model_copy(update={"registry_s3_key": "registry/mlflow.db"})


def served(client: TestClient) -> str:
    response = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def actions(settings: Settings) -> list[tuple[str, str | None, str | None]]:
    return [(c.action, c.from_version, c.to_version) for c in read_history(settings)]


def test_rollback_after_two_promotions_is_served_without_restart(registry: Settings) -> None:
    train_and_promote(registry)
    client = TestClient(build_default_app(registry))  # refresh interval 0: every request re-checks
    assert served(client) == "1"
    train_and_promote(registry)
    assert served(client) == "2"

    action = rollback(registry, reason="v2 flags too many payments", from_version="2")
    assert (action.action, action.from_version, action.to_version) == ("rolled_back", "2", "1")
    assert production_version(registry) == "1" and manifest_version(registry) == "1"
    assert served(client) == "1"
    assert client.get("/health").json()["status"] == "ok"
    assert actions(registry) == [("promoted", None, "1"), ("promoted", "1", "2"), ("rolled_back", "2", "1")]
    history = client.get("/model/history", headers=KEY)
    assert history.status_code == 200 and [e["action"] for e in history.json()] == ["promoted", "promoted",
                                                                                   "rolled_back"]  # fmt: skip
    assert client.get("/model/history").status_code == 401
    assert read_history(registry)[-1].reason == "v2 flags too many payments"


@pytest.mark.parametrize("damage", ["missing-version", "corrupt-booster", "deleted-booster"])
def test_rollback_to_a_broken_or_missing_version_changes_nothing(registry: Settings, damage: str) -> None:
    train_and_promote(registry)
    train_and_promote(registry)
    target = "1"
    if damage == "missing-version":
        target = "9"
    else:
        with ModelStore(registry).session() as client:
            location = artifact_location(client, client.get_model_version(registry.model_name, "1"))
        bucket, key = split_s3_uri(model_file_uri(location, BOOSTER_ARTIFACT))
        if damage == "corrupt-booster":
            s3_client(registry).put_object(Bucket=bucket, Key=key, Body=b"not a booster")
        else:
            s3_client(registry).delete_object(Bucket=bucket, Key=key)
    before = actions(registry)
    with pytest.raises(PromotionError, match="nothing was changed"):
        rollback(registry, reason="try", to_version=target, from_version="2")
    assert production_version(registry) == "2" and manifest_version(registry) == "2"
    assert actions(registry) == before


def test_a_manual_alias_move_is_reported_by_health_and_fixed_by_reconcile(registry: Settings) -> None:
    train_and_promote(registry)
    train_and_promote(registry)
    client = TestClient(build_default_app(registry))
    assert served(client) == "2"
    with ModelStore(registry).session() as mlflow_client:  # what a person does in the MLflow UI
        mlflow_client.set_registered_model_alias(registry.model_name, registry.production_alias, "1")
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "version 1" in health["problem"] and "version 2" in health["problem"]
    assert "s3://" not in health["problem"] and "reconcile" in health["problem"]
    action = reconcile(registry)
    assert (action.action, action.from_version, action.to_version) == ("reconciled", "2", "1")
    assert served(client) == "1" and client.get("/health").json()["status"] == "ok"
    assert reconcile(registry).action == "in_sync"  # idempotent
    assert actions(registry)[-1] == ("reconciled", "2", "1")


def test_a_crash_between_the_alias_and_the_manifest_is_detected_and_repaired(
    registry: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_and_promote(registry)
    train_and_promote(registry)
    client = TestClient(build_default_app(registry))
    assert served(client) == "2"
    import fraudops.production.change as change

    def crash(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the process died here (injected)")

    monkeypatch.setattr(change, "publish_manifest", crash)
    with pytest.raises(StoreError, match=r"version 1 is Production in the registry.*fraudops reconcile"):
        rollback(registry, reason="crash test", from_version="2")
    monkeypatch.undo()
    assert production_version(registry) == "1" and manifest_version(registry) == "2"
    assert actions(registry)[-1] == ("rolled_back", "2", "1")  # recorded with the alias
    assert served(client) == "2" and client.get("/health").json()["status"] == "degraded"
    completed = reconcile(registry)
    assert (completed.action, completed.to_version) == ("completed", "1")
    assert served(client) == "1" and client.get("/health").json()["status"] == "ok"
    assert actions(registry)[-1] == ("rolled_back", "2", "1") and read_history(registry)[-1].status == "done"
    assert [a for a, _, _ in actions(registry)].count("rolled_back") == 1


def test_manual_promotion_is_recorded_with_the_rules_verdict(registry: Settings) -> None:
    train_and_promote(registry)
    version = run_training(registry, feature_set="seed").version  # worse: the rule keeps Production
    assert run_promotion(registry, version).outcome == "kept"
    decision = run_promotion(registry, version, force_reason="business asked for the simple model")
    assert decision.outcome == "manual" and decision.production_version == version
    assert "the rule said kept" in decision.reason
    assert production_version(registry) == version and manifest_version(registry) == version
    last = read_history(registry)[-1]
    assert (last.action, last.from_version, last.to_version) == ("manual", "1", version)
    assert "business asked" in last.reason and last.gain is not None
    assert [c.action for c in read_history(registry)] == ["promoted", "kept", "manual"]


def test_the_promote_function_rolls_back_from_the_sample_event(
    registry: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_and_promote(registry)
    train_and_promote(registry)
    use_settings(monkeypatch, registry)
    promote_function = fresh_import("promote_function")
    event = load_event("../../events/rollback.json")
    result = promote_function.handler(event, lambda_context("fraudops-promote"))
    assert result["action"] == "rolled_back" and result["to_version"] == "1"
    check = promote_function.handler({"action": "check"}, lambda_context("fraudops-promote"))
    assert check == {"action": "check", "registry_version": "1", "served_version": "1", "in_sync": True}
    assert read_history(registry)[-1].actor.startswith("lambda:fraudops-promote")


@pytest.mark.serial
def test_the_ui_serves_a_read_only_copy_of_a_deployed_registry(registry: Settings, tmp_path: Path) -> None:
    from fraudops_dev.deployed_ui import start_deployed_ui
    from fraudops_dev.local import free_port, get_json, wait_for_http

    train_and_promote(registry)
    client = s3_client(registry)
    before = client.head_object(Bucket=registry.model_bucket, Key="registry/mlflow.db")["ETag"]
    port = free_port()
    process = start_deployed_ui(registry, registry.model_bucket, port, tmp_path)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=90)
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        status, alias = get_json(f"{base}/registered-models/alias?name={registry.model_name}&alias=production")
        assert status == 200 and alias["model_version"]["version"] == "1"
        run_id = alias["model_version"]["run_id"]
        status, listing = get_json(f"{base}/artifacts/list?run_id={run_id}&path=plots")
        assert status == 200 and {f["path"] for f in listing["files"]} >= {"plots/pr_curve.png"}  # read from S3
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert client.head_object(Bucket=registry.model_bucket, Key="registry/mlflow.db")["ETag"] == before


def test_the_ui_finds_the_bucket_from_the_stack_outputs() -> None:
    import boto3
    from fraudops_dev.deployed_ui import stack_bucket
    from moto import mock_aws

    template = {"Resources": {"ModelBucket": {"Type": "AWS::S3::Bucket"}},
                "Outputs": {"ModelBucketName": {"Value": {"Ref": "ModelBucket"}}}}  # fmt: skip
    with mock_aws():
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="fraudops-dev", TemplateBody=json.dumps(template)
        )
        assert stack_bucket("fraudops-dev", "us-east-1").startswith("fraudops-dev-modelbucket")


def test_the_apis_alias_check_downloads_the_registry_only_when_it_changed(registry: Settings) -> None:
    from fraudops.store.registry import registry_alias_version
    from tests.helpers.faults import S3Faults, s3_faults

    train_and_promote(registry)
    with s3_faults(S3Faults()) as counting:
        assert registry_alias_version(registry) == "1"
        assert registry_alias_version(registry) == "1"
    assert counting.calls.count("GetObject") <= 1 and counting.calls.count("HeadObject") == 2
    train_and_promote(registry)  # the registry object changes
    assert registry_alias_version(registry) == "2"
