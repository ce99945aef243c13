"""Training: out-of-time split, XGBoost with class weighting and early stopping, evaluation, and one
MLflow run that logs everything needed to reproduce the model before registering a new version.

All the slow work (reading, training, plotting) happens before the registry is opened; the registry
writes happen together at the end, so a failure never leaves a half-registered version behind.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from fraudops.config import Settings
from fraudops.data import DataError, DatasetFingerprint, fingerprint, load_training_frame
from fraudops.features import FEATURE_SETS, FeatureSpec, build_features
from fraudops.metrics import EvaluationMetrics, MetricsError, best_f1_threshold, evaluate
from fraudops.schema import LABEL, RAW_FEATURE_COLUMNS
from fraudops.store import (
    BOOSTER_ARTIFACT,
    SPEC_ARTIFACT,
    ModelStore,
    StoreError,
    with_registry_retries,
)

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training could not produce a model; nothing was registered."""


@dataclass(frozen=True)
class DataSplit:
    """Out-of-time: train on the earliest steps, stop early and pick the threshold on the next ones,
    report on the latest ones (the holdout promotion also uses)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    validation_start_step: int
    holdout_start_step: int


def split_out_of_time(frame: pd.DataFrame, validation_fraction: float, holdout_fraction: float) -> DataSplit:
    """Cut on whole steps (an hour is never split) at the given shares of rows; ``frame`` is step-sorted."""
    steps = frame["step"].to_numpy()
    n = len(steps)
    holdout_start = int(steps[min(int(n * (1 - holdout_fraction)), n - 1)])
    validation_start = int(steps[min(int(n * (1 - holdout_fraction - validation_fraction)), n - 1)])
    train = frame[steps < validation_start]
    validation = frame[(steps >= validation_start) & (steps < holdout_start)]
    holdout = frame[steps >= holdout_start]
    for name, part in (("train", train), ("validation", validation), ("holdout", holdout)):
        fraud = int(part[LABEL].sum()) if len(part) else 0
        if fraud == 0 or fraud == len(part):
            raise TrainingError(
                f"the {name} slice (steps {int(part['step'].min()) if len(part) else '-'}.."
                f"{int(part['step'].max()) if len(part) else '-'}) has {len(part)} rows and {fraud} fraud: "
                "generate more rows or change the validation/holdout fractions"
            )
    return DataSplit(train, validation, holdout, validation_start, holdout_start)


def holdout_slice(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    return split_out_of_time(frame, settings.validation_fraction, settings.holdout_fraction).holdout


def raw_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in RAW_FEATURE_COLUMNS}


def xgboost_params(settings: Settings, scale_pos_weight: float) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "eval_metric": "aucpr",
        "max_depth": settings.max_depth,
        "eta": settings.learning_rate,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 1.0,
        # Class weighting: each fraud row counts as much as all the legitimate rows per fraud row.
        "scale_pos_weight": scale_pos_weight,
        "nthread": settings.n_threads,
        "seed": settings.seed,
    }


@dataclass
class TrainedModel:
    booster: xgb.Booster
    spec: FeatureSpec
    params: dict[str, Any]
    best_iteration: int
    validation: EvaluationMetrics
    holdout: EvaluationMetrics
    holdout_scores: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


def train_model(split: DataSplit, settings: Settings, feature_set: str = "engineered") -> TrainedModel:
    """Pure compute: no store, no files."""
    if feature_set not in FEATURE_SETS:
        raise TrainingError(f"unknown feature set {feature_set!r}; choose from {', '.join(FEATURE_SETS)}")
    names = FEATURE_SETS[feature_set]
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    x_train = build_features(raw_columns(split.train), names)
    x_valid = build_features(raw_columns(split.validation), names)
    y_train = split.train[LABEL].to_numpy()
    y_valid = split.validation[LABEL].to_numpy()
    dtrain = xgb.DMatrix(x_train, label=y_train, feature_names=list(names))
    dvalid = xgb.DMatrix(x_valid, label=y_valid, feature_names=list(names))
    seconds["features"] = time.perf_counter() - started

    positives = float(y_train.sum())
    params = xgboost_params(settings, (len(y_train) - positives) / positives)
    started = time.perf_counter()
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=settings.n_estimators,
        evals=[(dvalid, "validation")],
        early_stopping_rounds=settings.early_stopping_rounds,
        verbose_eval=False,
    )
    seconds["fit"] = time.perf_counter() - started
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]  # serve exactly the trees early stopping chose

    started = time.perf_counter()
    valid_scores = booster.inplace_predict(x_valid)
    threshold = best_f1_threshold(y_valid, valid_scores)
    x_holdout = build_features(raw_columns(split.holdout), names)
    holdout_scores = np.asarray(booster.inplace_predict(x_holdout), dtype=np.float64)
    try:
        validation_metrics = evaluate(y_valid, valid_scores, threshold)
        holdout_metrics = evaluate(split.holdout[LABEL].to_numpy(), holdout_scores, threshold)
    except MetricsError as error:
        raise TrainingError(str(error)) from error
    seconds["evaluate"] = time.perf_counter() - started

    spec = FeatureSpec(feature_names=tuple(names), threshold=threshold, feature_set=feature_set)
    return TrainedModel(
        booster, spec, params, best_iteration, validation_metrics, holdout_metrics, holdout_scores, seconds
    )


# --- logging and registering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    model_name: str
    version: str
    model_uri: str
    holdout: EvaluationMetrics
    data: DatasetFingerprint
    seconds: dict[str, float]

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
def _artifact_dir(trained: TrainedModel, split: DataSplit) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fraudops-train-") as tmp:
        directory = Path(tmp)
        (directory / "model").mkdir()
        trained.booster.save_model(directory / "model" / BOOSTER_ARTIFACT)
        (directory / "model" / SPEC_ARTIFACT).write_text(json.dumps(trained.spec.to_dict(), indent=2))
        _plot_pr_curve(
            split.holdout[LABEL].to_numpy(), trained.holdout_scores, trained.holdout, directory / "pr_curve.png"
        )
        _plot_importance(trained.booster, directory / "feature_importance.png")
        yield directory


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


@with_registry_retries()
def log_and_register(
    settings: Settings,
    trained: TrainedModel,
    split: DataSplit,
    data: DatasetFingerprint,
    frame: pd.DataFrame,
) -> tuple[str, str, str]:
    """One MLflow run with everything needed to reproduce the model, then a new registered version.
    Returns (run_id, version, model_uri). Runs in one registry session: all or nothing."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    import fraudops

    store = ModelStore(settings)
    example = _input_example(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MLflow's hint about integer columns (step is never NaN)
        signature = infer_signature(example, pd.DataFrame({"probability": [0.5], "prediction": [1.0]}))
    with store.session() as client, _artifact_dir(trained, split) as artifacts:
        experiment_id = store.ensure_experiment(client)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.set_tags(
                {
                    "fraudops.feature_set": trained.spec.feature_set,
                    "fraudops.data_sha256": data.sha256,
                    "mlflow.note.content": "XGBoost fraud classifier trained by fraudops on PaySim-schema data.",
                }
            )
            mlflow.log_params(
                {
                    **{f"xgb_{key}": value for key, value in trained.params.items()},
                    "n_estimators_max": settings.n_estimators,
                    "early_stopping_rounds": settings.early_stopping_rounds,
                    "best_iteration": trained.best_iteration,
                    "feature_set": trained.spec.feature_set,
                    "features": ",".join(trained.spec.feature_names),
                    "threshold": trained.spec.threshold,
                    "validation_start_step": split.validation_start_step,
                    "holdout_start_step": split.holdout_start_step,
                    "train_rows": len(split.train),
                    "validation_rows": len(split.validation),
                    "holdout_rows": len(split.holdout),
                    "xgboost_version": xgb.__version__,
                    "python_version": platform.python_version(),
                    **data.as_params(),
                }
            )
            mlflow.log_metrics(
                {
                    **trained.validation.as_dict("validation_"),
                    **trained.holdout.as_dict("holdout_"),
                    **{f"seconds_{key}": value for key, value in trained.seconds.items()},
                }
            )
            mlflow.log_dict(trained.spec.to_dict(), SPEC_ARTIFACT)
            mlflow.log_dict(
                {"holdout": trained.holdout.as_dict(), "validation": trained.validation.as_dict()}, "metrics.json"
            )
            mlflow.log_artifact(str(artifacts / "pr_curve.png"), "plots")
            mlflow.log_artifact(str(artifacts / "feature_importance.png"), "plots")
            model_info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(fraudops.__file__).parent / "pyfunc_entry.py"),
                artifacts={
                    BOOSTER_ARTIFACT: str(artifacts / "model" / BOOSTER_ARTIFACT),
                    SPEC_ARTIFACT: str(artifacts / "model" / SPEC_ARTIFACT),
                },
                code_paths=[str(Path(fraudops.__file__).parent)],
                signature=signature,
                input_example=example,
                pip_requirements=_pip_requirements(),
                metadata={"threshold": trained.spec.threshold, "feature_set": trained.spec.feature_set},
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
                    "fraudops.threshold": f"{trained.spec.threshold:.6f}",
                },
            )
            return run.info.run_id, str(version.version), model_info.model_uri


def run_training(settings: Settings, feature_set: str = "engineered") -> TrainingResult:
    """Read the table, train, evaluate, log and register. Raises TrainingError/DataError on bad data."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    log.info("reading transactions from %s", settings.db_path)
    frame = load_training_frame(settings.db_path)
    data = fingerprint(frame)
    timings["read"] = time.perf_counter() - started
    log.info(
        "read %d rows (%d fraud, steps %d..%d) in %.1fs",
        data.rows, data.fraud_rows, data.min_step, data.max_step, timings["read"],
    )  # fmt: skip
    split = split_out_of_time(frame, settings.validation_fraction, settings.holdout_fraction)
    log.info(
        "out-of-time split: train %d rows (steps < %d), validation %d, holdout %d (steps >= %d)",
        len(split.train), split.validation_start_step, len(split.validation), len(split.holdout),
        split.holdout_start_step,
    )  # fmt: skip
    started = time.perf_counter()
    trained = train_model(split, settings, feature_set)
    timings.update(trained.seconds)
    timings["train_total"] = time.perf_counter() - started
    log.info(
        "trained %d trees in %.1fs: holdout AUPRC %.4f, ROC AUC %.4f, recall@1%%FPR %.4f, threshold %.4f",
        trained.best_iteration + 1, timings["fit"], trained.holdout.auprc, trained.holdout.roc_auc,
        trained.holdout.recall_at_1pct_fpr, trained.spec.threshold,
    )  # fmt: skip
    started = time.perf_counter()
    try:
        run_id, version, model_uri = log_and_register(settings, trained, split, data, frame)
    except StoreError:  # already says what failed (RegistryConflictError is one: the caller retries)
        raise
    except Exception as error:  # S3, MLflow and plotting each raise their own kinds
        raise StoreError(
            f"could not log and register the model ({type(error).__name__}: {error}); nothing was registered"
        ) from error
    timings["log_and_register"] = time.perf_counter() - started
    log.info("logged run %s and registered %s version %s", run_id, settings.model_name, version)
    return TrainingResult(run_id, settings.model_name, version, model_uri, trained.holdout, data, timings)


__all__ = [
    "DataError",
    "DataSplit",
    "TrainingError",
    "TrainingResult",
    "holdout_slice",
    "run_training",
    "split_out_of_time",
    "train_model",
]
