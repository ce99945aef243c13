"""Tracking: one MLflow run with everything needed to reproduce a model (params, metrics, data
fingerprint, plots, the model files), then a new registered version, all in one registry session so a
failure registers nothing."""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudops.core.config import Settings
from fraudops.core.schema import LABEL, RAW_FEATURE_COLUMNS
from fraudops.model.fraud_model import BOOSTER_ARTIFACT, SPEC_ARTIFACT
from fraudops.model.metrics import EvaluationMetrics
from fraudops.monitoring.profile import PROFILE_ARTIFACT
from fraudops.store import ModelStore, with_registry_retries
from fraudops.training.dataset import DatasetFingerprint, DataSplit
from fraudops.training.fit import TrainedModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitRecord:
    """What the run records about the out-of-time split: the cut steps, the slice sizes and the holdout's
    labels (for the precision-recall plot). Built from a ``DataSplit`` in memory, or from the summary a
    Spark job writes (where the slices never exist as one frame)."""

    validation_start_step: int
    holdout_start_step: int
    train_rows: int
    validation_rows: int
    holdout_rows: int
    holdout_labels: np.ndarray

    @classmethod
    def of(cls, split: DataSplit | SplitRecord) -> SplitRecord:
        if isinstance(split, SplitRecord):
            return split
        return cls(
            split.validation_start_step, split.holdout_start_step, len(split.train), len(split.validation),
            len(split.holdout), split.holdout[LABEL].to_numpy(),
        )  # fmt: skip


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    model_name: str
    version: str
    model_uri: str
    holdout: EvaluationMetrics
    data: DatasetFingerprint
    seconds: dict[str, float]

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole job (the phase timings overlap: ``train_total`` contains ``fit``)."""
        return sum(v for k, v in self.seconds.items() if k in {"read", "train_total", "log_and_register"})

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_name": self.model_name,
            "version": self.version,
            "model_uri": self.model_uri,
            "holdout_auprc": round(self.holdout.auprc, 6),
            "holdout_roc_auc": round(self.holdout.roc_auc, 6),
            "holdout_recall_at_1pct_fpr": round(self.holdout.recall_at_1pct_fpr, 6),
            "threshold": self.holdout.threshold,
            "rows": self.data.rows,
            "data_sha256": self.data.sha256,
            "seconds": {key: round(value, 3) for key, value in self.seconds.items()},
        }


def _plot_pr_curve(y_true: np.ndarray, scores: np.ndarray, metrics: EvaluationMetrics, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y_true, scores)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(recall, precision, label=f"AUPRC {metrics.auprc:.3f}")
    ax.scatter([metrics.recall], [metrics.precision], color="red", zorder=3, label="threshold")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall, holdout (out-of-time)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_importance(booster: xgb.Booster, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gain = booster.get_score(importance_type="gain")
    names = sorted(gain, key=gain.__getitem__)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.barh(names, [gain[name] for name in names])
    ax.set_xlabel("mean gain")
    ax.set_title("Feature importance")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _input_example(frame: pd.DataFrame) -> pd.DataFrame:
    example = frame[list(RAW_FEATURE_COLUMNS)].head(3).copy()
    example["type"] = example["type"].astype(str)
    return example.reset_index(drop=True)


@contextmanager
def _artifact_dir(trained: TrainedModel, split: SplitRecord) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fraudops-train-") as tmp:
        directory = Path(tmp)
        (directory / "model").mkdir()
        trained.booster.save_model(directory / "model" / BOOSTER_ARTIFACT)
        (directory / "model" / SPEC_ARTIFACT).write_text(json.dumps(trained.spec.to_dict(), indent=2))
        (directory / "model" / PROFILE_ARTIFACT).write_text(json.dumps(trained.profile))
        _plot_pr_curve(split.holdout_labels, trained.holdout_scores, trained.holdout, directory / "pr_curve.png")
        _plot_importance(trained.booster, directory / "feature_importance.png")
        yield directory


def _band_params(bands: Any) -> dict[str, Any]:
    """Which rule chose the served bands and on how many frauds, as run params (and the rule as a tag),
    so a run in the MLflow UI says why its queue is the size it is."""
    if not isinstance(bands, dict):
        return {}
    keys = ("rule", "validation_frauds", "min_validation_frauds", "alert_budget_per_1000", "target_per_1000",
            "review_at", "block_at")  # fmt: skip
    return {f"bands_{key}": bands.get(key) for key in keys}


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"xgboost-cpu=={version('xgboost-cpu')}" if _has_dist("xgboost-cpu") else f"xgboost=={xgb.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
        f"scikit-learn=={version('scikit-learn')}",
        f"mlflow-skinny=={version('mlflow-skinny') if _has_dist('mlflow-skinny') else version('mlflow')}",
        f"pydantic=={version('pydantic')}",
        f"pydantic-settings=={version('pydantic-settings')}",
        f"boto3=={version('boto3')}",
    ]


def _has_dist(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


def _log_dataset(dataset: dict[str, Any]) -> None:
    """The training input as an MLflow dataset (``mlflow.log_input``): the lake table's URI as source, the
    committed files' digest, and tags with the Iceberg table and snapshot id (``fraudops train --snapshot``
    reads exactly those rows again), the partitions, row and fraud counts; the full list of files goes
    beside it as ``dataset.json``."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    uris = dataset["source_uris"]
    table_uri = dataset.get("table_uri") or (uris[0].rsplit("/data/dt=", 1)[0] if uris else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can be interpreted in multiple ways": file:// is local
        source = resolve_dataset_source(table_uri if "://" in table_uri else Path(table_uri).as_uri())
    partitions = dataset["partitions"]
    meta = MetaDataset(source=source, name=f"lake.{dataset['table']}", digest=dataset["digest"][:32])  # type: ignore[abstract]
    mlflow.log_input(
        meta,
        context="training",
        tags={
            "table": f"lake.{dataset['table']}",
            "snapshot_id": str(dataset.get("snapshot_id") or ""),
            "table_version": str(dataset["table_version"]),
            "partitions": f"{partitions[0]}..{partitions[-1]} ({len(partitions)})" if partitions else "",
            "rows": str(dataset["rows"]),
            "fraud_rows": str(dataset["fraud_rows"]),
            "files": str(len(uris)),
        },
    )
    mlflow.log_dict(dataset, "dataset.json")


@with_registry_retries()
def log_and_register(
    settings: Settings,
    trained: TrainedModel,
    split: DataSplit | SplitRecord,
    data: DatasetFingerprint,
    frame: pd.DataFrame,
    tags: dict[str, str] | None = None,
    dataset: dict[str, Any] | None = None,
) -> tuple[str, str, str]:
    """One MLflow run with everything needed to reproduce the model, then a new registered version.
    Returns (run_id, version, model_uri). Runs in one registry session: all or nothing. ``frame`` gives
    the input example (its first rows); whichever engine trained, the run and version look the same."""
    from mlflow.models import infer_signature

    store = ModelStore(settings)
    split = SplitRecord.of(split)
    example = _input_example(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's hint about integer columns (step is never NaN)
        signature = infer_signature(example, pd.DataFrame({"probability": [0.5], "prediction": [1.0]}))
    with store.session() as client, _artifact_dir(trained, split) as artifacts:
        experiment_id = store.ensure_experiment(client)
        _fail_abandoned_runs(client, experiment_id)
        started: list[str] = []
        try:
            return _log_run(client, settings, experiment_id, trained, split, data, signature, example, artifacts,
                            tags, started, dataset)  # fmt: skip
        except BaseException:
            if started:
                _clean_up_failed_run(client, experiment_id, started[0])
            raise


def _fail_abandoned_runs(client: MlflowClient, experiment_id: str) -> None:
    """A run still RUNNING when a new one starts was cut off by a kill (trainings take the registry
    lock, so none is really running): mark it FAILED, as MLflow would have on an exception."""
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        log.warning("run %s was left RUNNING by an interrupted training: marking it FAILED", run.info.run_id)
        _clean_up_failed_run(client, experiment_id, run.info.run_id)


def _clean_up_failed_run(client: MlflowClient, experiment_id: str, run_id: str) -> None:
    """Leave no run RUNNING, no logged model PENDING and no orphan local artifacts. On a full disk the
    artifacts go first: deleting them frees the space the registry writes that follow need."""
    import shutil
    from urllib.parse import unquote, urlparse

    from mlflow.entities import LoggedModelStatus

    def local_path(uri: str | None) -> Path | None:
        parsed = urlparse(uri or "")
        return Path(unquote(parsed.path)) if parsed.scheme == "file" else None

    try:
        models = client.search_logged_models(experiment_ids=[experiment_id],
                                             filter_string=f"source_run_id = '{run_id}'")  # fmt: skip
        paths = [local_path(model.artifact_location) for model in models]
        paths.append(local_path(client.get_run(run_id).info.artifact_uri))
        for path in paths:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        for model in models:
            if str(model.status) != str(LoggedModelStatus.READY):
                client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        client.set_terminated(run_id, "FAILED")
    except Exception as error:  # the original failure is the one to report; the next training retries this
        log.warning("could not clean up the failed run %s (%s); the next training will", run_id, error)


def _log_run(
    client: MlflowClient,
    settings: Settings,
    experiment_id: str,
    trained: TrainedModel,
    split: SplitRecord,
    data: DatasetFingerprint,
    signature: Any,
    example: pd.DataFrame,
    artifacts: Path,
    tags: dict[str, str] | None,
    started: list[str],
    dataset: dict[str, Any] | None = None,
) -> tuple[str, str, str]:
    import mlflow
    from mlflow.exceptions import MlflowException

    import fraudops

    with mlflow.start_run(experiment_id=experiment_id) as run:
        started.append(run.info.run_id)
        mlflow.set_tags(
            {
                "fraudops.feature_set": trained.spec.feature_set,
                "fraudops.data_sha256": data.sha256,
                "fraudops.bands_rule": str(_band_params(trained.spec.extra.get("decision_bands")).get("bands_rule")),
                "mlflow.note.content": "XGBoost fraud classifier trained by fraudops on PaySim-schema data.",
                **(tags or {}),
            }
        )
        if dataset is not None:
            _log_dataset(dataset)
        mlflow.log_params(
            {
                **{f"xgb_{key}": value for key, value in trained.params.items()},
                "n_estimators_max": settings.n_estimators,
                "early_stopping_rounds": settings.early_stopping_rounds,
                "best_iteration": trained.best_iteration,
                "feature_set": trained.spec.feature_set,
                "features": ",".join(trained.spec.feature_names),
                "validation_start_step": split.validation_start_step,
                "holdout_start_step": split.holdout_start_step,
                "train_rows": split.train_rows,
                "validation_rows": split.validation_rows,
                "holdout_rows": split.holdout_rows,
                **_band_params(trained.spec.extra.get("decision_bands")),
                "xgboost_version": xgb.__version__,
                "python_version": platform.python_version(),
                **data.as_params(),
            }
        )
        mlflow.log_metrics(
            {
                **trained.validation.as_dict("validation_"),
                **trained.holdout.as_dict("holdout_"),
                **{f"holdout_{key}": value for key, value in trained.money.items()},
                **{f"seconds_{key}": value for key, value in trained.seconds.items()},
            }
        )
        mlflow.log_dict(
            {
                "holdout": trained.holdout.as_dict(),
                "validation": trained.validation.as_dict(),
                "holdout_money": trained.money,
                "decision_bands": trained.spec.extra.get("decision_bands"),
            },
            "metrics.json",
        )
        mlflow.log_artifact(str(artifacts / "pr_curve.png"), "plots")
        mlflow.log_artifact(str(artifacts / "feature_importance.png"), "plots")
        model_info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(fraudops.__file__).parent / "model" / "pyfunc_entry.py"),
            artifacts={
                BOOSTER_ARTIFACT: str(artifacts / "model" / BOOSTER_ARTIFACT),
                SPEC_ARTIFACT: str(artifacts / "model" / SPEC_ARTIFACT),
                PROFILE_ARTIFACT: str(artifacts / "model" / PROFILE_ARTIFACT),
            },
            code_paths=[str(Path(fraudops.__file__).parent)],
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            metadata={"feature_set": trained.spec.feature_set},  # the threshold lives in the spec file only
        )
        try:
            client.create_registered_model(
                settings.model_name, description="Fraud classifier for PaySim-schema transactions."
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(
            settings.model_name,
            source=model_info.model_uri,
            run_id=run.info.run_id,
            model_id=model_info.model_id,
            tags={
                "fraudops.holdout_auprc": f"{trained.holdout.auprc:.6f}",
                "fraudops.data_sha256": data.sha256,
                "fraudops.feature_set": trained.spec.feature_set,
                **(tags or {}),
            },
        )
        return run.info.run_id, str(version.version), model_info.model_uri
