"""End to end against moto's S3 server on 127.0.0.1: train -> register -> promote -> serve, and the
promotion rules on real registry state (better, worse, equal, failure midway)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from fraudops_dev.sqlite_io import load_training_frame

from fraudops.api import build_default_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.core.errors import PromotionError, StoreError, TrainingError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.model.fraud_model import SPEC_ARTIFACT
from fraudops.serving.provider import load_from_manifest
from fraudops.stages.promote import artifact_location, run_promotion
from fraudops.stages.train import run_training
from fraudops.store import ModelStore, model_file_uri, read_manifest, read_uri
from fraudops.training.dataset import holdout_slice
from tests.helpers.stack import production_version, version_count

pytestmark = pytest.mark.e2e


def test_round_trip_train_register_promote_serve(settings: Settings) -> None:
    result = run_training(settings)
    assert result.version == "1"
    assert result.holdout.auprc > 0.5

    # Everything needed to reproduce the run is logged, and the artifacts are really in S3.
    with ModelStore(settings).session() as client:
        run = client.get_run(result.run_id)
        assert run.data.params["data_sha256"] == result.data.sha256
        assert run.data.params["xgb_tree_method"] == "hist"
        # The threshold has one home, the model's spec file (not a param, a tag or a second copy).
        assert "threshold" not in run.data.params
        location = artifact_location(client, client.get_model_version(settings.model_name, result.version))
        spec = json.loads(read_uri(settings, model_file_uri(location, SPEC_ARTIFACT)))
        assert spec["threshold"] == pytest.approx(result.holdout.threshold)
        assert "holdout_auprc" in run.data.metrics and "validation_recall_at_1pct_fpr" in run.data.metrics
        # Money beside every metric: the bands chosen by money and the F1 threshold, both on the holdout.
        for name in ("fraud_amount_caught", "amount_recall", "alerts_per_1000", "savings"):
            assert f"holdout_money_{name}" in run.data.metrics and f"holdout_f1_money_{name}" in run.data.metrics
        bands = spec["extra"]["decision_bands"]
        assert 0 <= bands["review_at"] <= 1 and bands["cost_model"]["review_cost"] == settings.review_cost
        artifacts = {a.path for a in client.list_artifacts(result.run_id)} | {
            a.path for a in client.list_artifacts(result.run_id, "plots")
        }
        assert {"metrics.json", "plots/pr_curve.png", "plots/feature_importance.png"} <= artifacts
        version = client.get_model_version(settings.model_name, "1")
        assert version.tags["fraudops.data_sha256"] == result.data.sha256
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.model_bucket)["Contents"]]
    assert any(k.endswith("/artifacts/booster.ubj") for k in keys)
    assert any(k.endswith("plots/pr_curve.png") for k in keys)

    decision = run_promotion(settings)
    assert decision.outcome == "promoted"
    assert production_version(settings) == "1"
    manifest, _ = read_manifest(settings)
    assert manifest is not None and manifest.version == "1"

    # Serve: the API fetches Production from the S3-backed store and answers with it.
    client = TestClient(build_default_app(settings))
    response = client.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "key-one"})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "1"
    info = client.get("/model", headers={"x-api-key": "key-one"}).json()
    assert info["metrics"]["money_fraud_amount_caught"] > 0 and "money_alerts_per_1000" in info["metrics"]
    assert info["decision_bands"]["review_at"] == bands["review_at"]
    assert decision.candidate_metrics is not None and decision.candidate_metrics["money_amount_recall"] > 0

    # The API's probabilities are the registered pyfunc model's, to 1e-6.
    frame = load_training_frame(settings.db_path).sample(300, random_state=1)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{settings.production_alias}")
    expected = pyfunc.predict(frame[list(RAW_FEATURE_COLUMNS)].assign(type=frame["type"].astype(str)))
    served = load_from_manifest(settings)
    assert served is not None
    got = served.model.predict_proba({c: frame[c].to_numpy() for c in RAW_FEATURE_COLUMNS})
    np.testing.assert_allclose(got, expected["probability"].to_numpy(), atol=1e-6)


def test_worse_candidate_keeps_production(settings: Settings) -> None:
    run_training(settings)
    assert run_promotion(settings).promoted
    run_training(settings, feature_set="seed")  # amount/step/type only: much worse
    decision = run_promotion(settings)
    assert decision.outcome == "kept"
    assert decision.candidate_version == "2"
    assert decision.production_metrics is not None and decision.candidate_metrics is not None
    assert decision.candidate_metrics["auprc"] < decision.production_metrics["auprc"]
    assert production_version(settings) == "1"
    with ModelStore(settings).session() as client:
        tags = client.get_model_version(settings.model_name, "2").tags
    assert tags["fraudops.promotion.decision"] == "kept"
    assert tags["fraudops.promotion.production_version"] == "1"
    assert "does not clear the margin" in tags["fraudops.promotion.reason"]
    assert float(tags["fraudops.promotion.gain_lower"]) < float(tags["fraudops.promotion.gain"])
    assert float(tags["fraudops.promotion.production_auprc"]) > float(tags["fraudops.promotion.candidate_auprc"])


def test_equal_candidate_is_not_promoted_and_repeat_is_idempotent(settings: Settings) -> None:
    run_training(settings)
    run_promotion(settings)
    run_training(settings)  # same data, same seed: the same model again
    decision = run_promotion(settings)
    assert decision.outcome == "kept"
    assert decision.candidate_metrics == decision.production_metrics
    assert production_version(settings) == "1"
    again = run_promotion(settings, "1")
    assert again.outcome == "already_production"
    assert production_version(settings) == "1"


def test_better_candidate_is_promoted_and_served_without_restart(settings: Settings) -> None:
    run_training(settings, feature_set="seed")
    weak = settings.model_copy(update={"promotion_floor": 0.0})
    assert run_promotion(weak).promoted
    api = TestClient(build_default_app(settings))  # model_refresh_seconds=0: re-check on every request
    key = {"x-api-key": "key-one"}
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=key).json()["model_version"] == "1"
    run_training(settings)
    decision = run_promotion(settings)
    assert decision.outcome == "promoted"
    assert decision.previous_production_version == "1" and decision.production_version == "2"
    assert production_version(settings) == "2"
    manifest, _ = read_manifest(settings)
    assert manifest is not None and manifest.version == "2"
    assert api.post("/predict", json=EXAMPLE_TRANSACTION, headers=key).json()["model_version"] == "2"


def test_failure_midway_leaves_production_unchanged(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    run_training(settings, feature_set="seed")
    assert run_promotion(settings.model_copy(update={"promotion_floor": 0.0})).promoted
    run_training(settings)

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise mlflow.exceptions.MlflowException("registry unavailable (injected)")

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", store_down)
    with pytest.raises(StoreError, match=r"registry unavailable \(injected\)\); nothing was changed"):
        run_promotion(settings)  # the write-ahead change path reports it in one line
    monkeypatch.undo()
    assert production_version(settings) == "1"
    manifest, _ = read_manifest(settings)
    assert manifest is not None and manifest.version == "1"
    # Retried, the same decision goes through.
    assert run_promotion(settings).promoted
    assert production_version(settings) == "2"


def test_failed_training_registers_nothing(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    run_training(settings)
    import fraudops.training.tracking as training

    def broken_plot(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full (injected)")

    monkeypatch.setattr(training, "_plot_importance", broken_plot)
    with pytest.raises(StoreError, match=r"disk full \(injected\)\); nothing was registered"):
        run_training(settings)
    assert version_count(settings) == 1


def test_training_needs_fraud_in_every_slice(settings: Settings, tmp_path: Any) -> None:
    from fraudops_dev.datagen import GeneratorConfig, generate

    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames

    frame = generate(GeneratorConfig(5_000, seed=1, fraud_rate=0.0))
    no_fraud = settings.model_copy(update={"lake_uri": str(tmp_path / "nofraud-lake")})
    write_transaction_frames(Lake(no_fraud).transactions, [frame])
    with pytest.raises(TrainingError, match="fraud"):
        run_training(no_fraud)


def test_promotion_without_versions_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(PromotionError, match="run training first"):
        run_promotion(settings)


def test_promotion_uses_the_same_holdout_for_both(settings: Settings) -> None:
    holdout = holdout_slice(load_training_frame(settings.db_path), settings)
    run_training(settings)
    decision = run_promotion(settings)
    assert decision.holdout_rows == len(holdout)
    assert isinstance(holdout, pd.DataFrame) and holdout["step"].min() > 0


def test_missing_training_data_in_s3_says_so(settings: Settings) -> None:
    """In AWS the train function reads s3://<data bucket>/lake; an empty lake is named as such
    (with the template's ListBucket grant S3 answers an empty listing, not 403)."""
    from fraudops.core.errors import DataError
    from fraudops.stages.train import run_training
    from fraudops.store import ensure_bucket

    ensure_bucket(settings)
    empty = settings.model_copy(update={"lake_uri": f"s3://{settings.model_bucket}/lake"})
    with pytest.raises(DataError, match=r"the lake at s3://.*/lake has no transactions"):
        run_training(empty)
