"""The Spark training's pure parts, without Spark: the out-of-time cut from per-step counts, the
estimator's parameters, the engine choice from Parquet footers, and the register step's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.config import Settings
from fraudops.data import load_training_frame, split_out_of_time
from fraudops.errors import InvalidInputError, TrainingError
from fraudops.events import parse_train_input
from fraudops.spark_training.job import _check_slices, estimator_params, step_cut_points
from fraudops.spark_training.plan import count_rows, plan_training, read_input_manifest, window_files
from fraudops.spark_training.register import register_spark_output
from fraudops.training import xgboost_params
from tests.helpers.stack import fast_settings


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


def _write_lake(root: Path, rows_per_day: list[int]) -> None:
    for day, rows in enumerate(rows_per_day):
        frame = pd.DataFrame({"step": np.arange(rows) % 24 + 24 * day, "amount": np.ones(rows)})
        path = root / "transactions" / f"dt=2026-01-{day + 1:02d}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(frame), path)


def test_plan_counts_the_window_from_footers_and_picks_the_engine(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _write_lake(lake, [1_000, 2_500, 700])
    (lake / "transactions" / "_manifest.json").write_text("{}")  # not data: never counted
    settings = fast_settings(state_dir=tmp_path / "state", lake_uri=str(lake), lambda_training_max_rows=4_200)
    files = window_files(settings)
    assert len(files) == 3 and count_rows(settings, files) == 4_200

    at_limit = plan_training(settings, "seed", {"reason": "drift"})
    assert (at_limit.engine, at_limit.rows, at_limit.input_uri, at_limit.register) == ("lambda", 4_200, None, None)

    above = plan_training(settings.model_copy(update={"lambda_training_max_rows": 4_199}), "seed", {"reason": "drift"})
    assert above.engine == "spark" and above.rows > above.lambda_max_rows and above.feature_set == "seed"
    assert above.input_uri is not None and above.output_uri is not None
    assert read_input_manifest(settings, above.input_uri) == files  # the job trains on what was counted
    assert above.register == {"action": "register", "output_uri": above.output_uri, "reason": "drift"}


def test_an_empty_lake_leaves_training_to_the_lambda(tmp_path: Path) -> None:
    settings = fast_settings(state_dir=tmp_path / "state", lambda_training_max_rows=0)
    plan = plan_training(settings)
    assert (plan.engine, plan.rows, plan.files) == ("lambda", 0, 0)


def test_plan_reads_footers_from_s3(settings: Settings, tmp_path: Path) -> None:
    import boto3

    _write_lake(tmp_path / "lake", [300, 200])
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    s3.create_bucket(Bucket=settings.model_bucket)
    for path in (tmp_path / "lake").rglob("*.parquet"):
        s3.upload_file(str(path), settings.model_bucket, f"lake/{path.relative_to(tmp_path / 'lake').as_posix()}")
    remote = settings.model_copy(
        update={
            "lake_uri": f"s3://{settings.model_bucket}/lake",
            "spark_output_uri": f"s3://{settings.model_bucket}/spark-training",
            "lambda_training_max_rows": 499,
        }
    )
    plan = plan_training(remote)
    assert plan.engine == "spark" and plan.rows == 500 and plan.files == 2
    assert plan.input_uri is not None and plan.input_uri.startswith(f"s3://{settings.model_bucket}/spark-training/")
    assert all(uri.startswith("s3://") for uri in read_input_manifest(remote, plan.input_uri))


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
