"""The Spark training's pure parts, without Spark: the out-of-time cut from per-step counts, the
estimator's parameters, the engine choice from the lake's manifest (the same window the Lambda reads),
and the register step's refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fraudops_dev.spark_local import run_local_spark_training
from fraudops_dev.sqlite_io import count_rows, iter_transactions, load_training_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.core.config import Settings
from fraudops.core.errors import DataError, InvalidInputError, TrainingError
from fraudops.lake import Lake, committed_files
from fraudops.lake.transactions import read_training_data, write_transaction_frames
from fraudops.spark_training.job import _check_slices, estimator_params, step_cut_points
from fraudops.spark_training.plan import plan_training, read_input_manifest, training_window
from fraudops.spark_training.register import register_spark_output
from fraudops.stages.events import parse_train_input
from fraudops.training.dataset import split_out_of_time
from fraudops.training.fit import xgboost_params
from tests.helpers.stack import fast_settings, lake_of


def _counts(steps: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(steps, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


@pytest.mark.parametrize(("validation", "holdout"), [(0.1, 0.2), (0.05, 0.3), (0.2, 0.1)])
def test_cut_points_are_split_out_of_times(small_db: Path, validation: float, holdout: float) -> None:
    frame = load_training_frame(small_db)
    split = split_out_of_time(frame, validation, holdout)
    assert step_cut_points(_counts(frame["step"].to_numpy()), validation, holdout) == (
        split.validation_start_step,
        split.holdout_start_step,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=400),
    st.floats(0.01, 0.45),
    st.floats(0.01, 0.45),
)
def test_cut_points_match_the_sorted_rows_rule(steps: list[int], validation: float, holdout: float) -> None:
    """split_out_of_time's rule on a step-sorted column: the step of row n*(1-holdout) (clamped)."""
    ordered = np.sort(np.array(steps))
    n = len(ordered)
    expected = (
        int(ordered[min(int(n * (1 - holdout - validation)), n - 1)]),
        int(ordered[min(int(n * (1 - holdout)), n - 1)]),
    )
    assert step_cut_points(_counts(ordered), validation, holdout) == expected


def test_an_empty_window_or_a_one_class_slice_is_a_training_error() -> None:
    with pytest.raises(TrainingError, match="empty"):
        step_cut_points({}, 0.1, 0.2)
    with pytest.raises(TrainingError, match=r"the validation slice .* has 50 rows and 0 fraud"):
        _check_slices({0: (100, 3, 0, 9), 1: (50, 0, 10, 11), 2: (40, 2, 12, 14)})
    with pytest.raises(TrainingError, match="the holdout slice"):
        _check_slices({0: (100, 3, 0, 9), 1: (50, 1, 10, 11)})


def test_estimator_gets_the_lambdas_hyper_parameters() -> None:
    params = xgboost_params(fast_settings(), 99.0)
    mapped = estimator_params(params)
    assert mapped["learning_rate"] == params["eta"] and mapped["random_state"] == params["seed"]
    assert mapped["scale_pos_weight"] == 99.0 and mapped["eval_metric"] == "aucpr"
    assert {k: v for k, v in mapped.items() if k not in {"learning_rate", "random_state"}} == {
        k: v for k, v in params.items() if k not in {"eta", "seed", "objective", "nthread"}
    }
    with pytest.raises(TrainingError, match="binary:logistic"):
        estimator_params({**params, "objective": "reg:squarederror"})


def _lake_copy(small_db: Path, tmp_path: Path) -> Path:
    """A lake of its own with the session lake's rows (an Iceberg table names its files by absolute
    paths, so a copied folder would still point at the original's)."""
    copy = tmp_path / "lake"
    write_transaction_frames(Lake(Settings(lake_uri=str(copy))).transactions, iter_transactions(small_db),
                             source="generate")  # fmt: skip
    return copy


def test_plan_sizes_the_window_from_the_lake_manifest_and_picks_the_engine(small_db: Path, tmp_path: Path) -> None:
    lake = _lake_copy(small_db, tmp_path)
    total = count_rows(small_db)  # the SQLite rows the lake was made of
    settings = fast_settings(state_dir=tmp_path / "state", lake_uri=str(lake), lambda_training_max_rows=total)
    committed = committed_files(settings)
    # A crashed writer's part (never in a manifest) is neither counted nor handed to the job.
    orphan = lake / "transactions" / "data" / "dt=2026-01-02" / "part-20260101T000000-crashed-00000.parquet"
    shutil.copy(lake / Lake(settings).transactions.files()[0].key, orphan)
    # No data is read: every committed file's bytes could be anything, the manifest's counts decide.
    for uri in committed:
        Path(uri.removeprefix("file://")).write_bytes(b"not parquet")

    at_limit = plan_training(settings, "seed", {"reason": "drift"})
    assert (at_limit.engine, at_limit.rows, at_limit.input_uri, at_limit.register) == ("lambda", total, None, None)

    above = plan_training(settings.model_copy(update={"lambda_training_max_rows": total - 1}), "seed",
                          {"reason": "drift"})  # fmt: skip
    assert above.engine == "spark" and above.rows > above.lambda_max_rows and above.feature_set == "seed"
    assert above.files == len(committed)
    assert above.input_uri is not None and above.output_uri is not None
    window = read_input_manifest(settings, above.input_uri)
    assert list(window.uris) == committed and window.rows == total  # the job trains on what was counted
    assert str(orphan.as_uri()) not in window.uris
    assert window.table_version == Lake(settings).transactions.snapshot().version
    assert above.register == {"action": "register", "output_uri": above.output_uri, "reason": "drift"}


def test_the_window_is_the_one_the_lambda_reads(small_db: Path, tmp_path: Path) -> None:
    settings = fast_settings(state_dir=tmp_path / "state", lake_uri=str(lake_of(small_db)), train_window_days=5)
    window = training_window(settings)
    read = read_training_data(Lake(settings).transactions, settings.train_window_days)
    assert list(window.uris) == read.uris and len(window.partitions) == 5
    assert window.rows == read.rows < count_rows(small_db)
    # The dataset the Spark job logs is the Lambda's, given the same counts.
    assert window.describe(read.rows, read.fraud_rows) == read.describe()


def test_an_empty_lake_leaves_training_to_the_lambda(tmp_path: Path) -> None:
    settings = fast_settings(state_dir=tmp_path / "state", lambda_training_max_rows=0)
    plan = plan_training(settings)
    assert (plan.engine, plan.rows, plan.files) == ("lambda", 0, 0)
    with pytest.raises(DataError, match="has no transactions"):
        run_local_spark_training(settings)  # --engine spark on an empty lake: the Lambda's message, no Spark


def test_plan_on_an_s3_lake_hands_the_job_s3_uris(settings: Settings, small_db: Path) -> None:
    import boto3

    boto3.client("s3", endpoint_url=settings.s3_endpoint_url).create_bucket(Bucket=settings.model_bucket)
    remote = settings.model_copy(
        update={
            "lake_uri": f"s3://{settings.model_bucket}/lake",
            "spark_output_uri": f"s3://{settings.model_bucket}/spark-training",
            "lambda_training_max_rows": 499,
        }
    )
    two_days = pd.concat(iter_transactions(small_db)).query("step < 48")
    write_transaction_frames(Lake(remote).transactions, [two_days], source="generate")
    rows = len(two_days)
    plan = plan_training(remote)
    assert plan.engine == "spark" and plan.rows == rows and plan.files == 2
    assert plan.input_uri is not None and plan.input_uri.startswith(f"s3://{settings.model_bucket}/spark-training/")
    window = read_input_manifest(remote, plan.input_uri)
    assert list(window.uris) == committed_files(remote)
    assert all(uri.startswith(f"s3://{settings.model_bucket}/lake/transactions/data/dt=") for uri in window.uris)


def test_register_refuses_an_unfinished_job_and_registers_nothing(tmp_path: Path) -> None:
    settings = fast_settings(state_dir=tmp_path / "state")
    output = tmp_path / "output"
    output.mkdir()
    (output / "booster.json").write_text("{}")  # the job died before result.json, its commit marker
    with pytest.raises(TrainingError, match="did not finish"):
        register_spark_output(settings, str(output))
    (output / "result.json").write_text(json.dumps({"params": {}}))
    with pytest.raises(TrainingError, match=r"lacks feature_spec\.json"):
        register_spark_output(settings, str(output))
    assert not (tmp_path / "state" / "mlflow.db").exists()


def test_train_input_actions() -> None:
    assert parse_train_input({}).action == "train"
    plan = parse_train_input({"action": "plan", "request": {"feature_set": "seed", "reason": "drift"}})
    assert plan.request == {"feature_set": "seed", "reason": "drift"}
    with pytest.raises(InvalidInputError, match="register needs output_uri"):
        parse_train_input({"action": "register"})
    with pytest.raises(InvalidInputError, match="action"):
        parse_train_input({"action": "deploy"})
