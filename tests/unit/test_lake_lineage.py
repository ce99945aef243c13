"""Issue 29, lineage by snapshot: a run's dataset input names the table and the Iceberg snapshot it read,
and `fraudops train --snapshot ID` (the CLI, the train Lambda's ``snapshot``) reads exactly those rows
again after later appends and a replace: the same digest, the same rows, the same model metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames

from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.transactions import read_training_data, write_transaction_frames
from fraudops.stages.events import parse_train_input
from fraudops.stages.train import run_training
from tests.helpers.stack import fast_settings


def _dataset_input(settings: Settings, run_id: str) -> tuple[dict[str, str], str]:
    mlflow.set_tracking_uri(f"sqlite:///{settings.state_dir.resolve()}/mlflow.db")
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.inputs is not None
    (dataset_input,) = run.inputs.dataset_inputs
    return {t.key: t.value for t in dataset_input.tags}, dataset_input.dataset.digest


def test_a_recorded_snapshot_reproduces_its_rows_and_metrics_after_appends_and_a_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fast_settings(state_dir=tmp_path / "state")
    lake = Lake(settings)
    write_transaction_frames(lake.transactions, generate_frames(GeneratorConfig(30_000, seed=4, fraud_rate=0.01)),
                             source="generate")  # fmt: skip
    first = run_training(settings, feature_set="seed")
    tags, digest = _dataset_input(settings, first.run_id)
    snapshot_id = int(tags["snapshot_id"])
    assert tags["table"] == "lake.transactions" and snapshot_id == lake.transactions.snapshot().snapshot_id
    rows_then = read_training_data(lake.transactions).frame

    later = generate(GeneratorConfig(2_000, seed=5, fraud_rate=0.01))
    write_transaction_frames(lake.transactions, [later.assign(step=later["step"] + 2_000)], append=True)
    write_transaction_frames(lake.transactions, generate_frames(GeneratorConfig(8_000, seed=6)), source="generate")
    assert lake.transactions.snapshot().rows == 8_000  # the table moved on

    again = read_training_data(lake.transactions, snapshot_id=snapshot_id)
    assert again.digest()[:32] == digest and again.frame.equals(rows_then)

    from fraudops_dev.cli import main

    from fraudops.core.config import get_settings

    os.environ["FRAUDOPS_STATE_DIR"] = str(settings.state_dir)
    try:
        get_settings.cache_clear()
        env_settings = settings.model_dump(include={"n_estimators", "early_stopping_rounds", "n_threads"})
        for key, value in env_settings.items():
            os.environ[f"FRAUDOPS_{key.upper()}"] = str(value)
        capsys.readouterr()
        assert main(["train", "--feature-set", "seed", "--snapshot", str(snapshot_id)]) == 0
        second = json.loads(capsys.readouterr().out)
    finally:
        for key in ("STATE_DIR", "N_ESTIMATORS", "EARLY_STOPPING_ROUNDS", "N_THREADS"):
            os.environ.pop(f"FRAUDOPS_{key}", None)
        get_settings.cache_clear()
    second_tags, second_digest = _dataset_input(settings, second["run_id"])
    assert second_tags["snapshot_id"] == str(snapshot_id) and second_digest == digest
    assert second_tags["rows"] == tags["rows"] and second_tags["fraud_rows"] == tags["fraud_rows"]
    same = ("holdout_auprc", "holdout_roc_auc", "holdout_recall_at_1pct_fpr", "threshold", "rows", "data_sha256")
    assert {k: second[k] for k in same} == {k: first.summary()[k] for k in same}  # same rows, same metrics
    assert second["version"] != first.version


def test_the_train_input_takes_a_snapshot_id_as_a_number_or_digits() -> None:
    assert parse_train_input({"snapshot": 4874495860584651544}).snapshot_id == 4874495860584651544
    assert parse_train_input({"snapshot": "4874495860584651544"}).snapshot_id == 4874495860584651544
    assert parse_train_input({}).snapshot_id is None
    from fraudops.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        parse_train_input({"snapshot": "latest"})
