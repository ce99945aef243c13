"""The register step after a Spark training: the job's output becomes an MLflow run and a registered
version through the same ``tracking.log_and_register`` the Lambda uses (same registry session, tags,
artifacts, pyfunc model and compiled-tree inputs). The version is tagged ``fraudops.engine=spark``."""

from __future__ import annotations

import logging
import time

import pandas as pd

from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.model.metrics import EvaluationMetrics
from fraudops.spark_training.output import read_output
from fraudops.training.dataset import DatasetFingerprint
from fraudops.training.fit import TrainedModel
from fraudops.training.tracking import SplitRecord, TrainingResult, log_and_register

log = logging.getLogger(__name__)


def _metrics(values: dict[str, float]) -> EvaluationMetrics:
    integers = {"true_positives", "false_positives", "true_negatives", "false_negatives", "rows", "positives"}
    return EvaluationMetrics(**{key: int(v) if key in integers else float(v) for key, v in values.items()})  # type: ignore[arg-type]


def register_spark_output(settings: Settings, output_uri: str, tags: dict[str, str] | None = None) -> TrainingResult:
    started = time.perf_counter()
    output = read_output(settings, output_uri)
    result = output.result
    trained = TrainedModel(
        booster=output.booster,
        spec=output.spec,
        params=dict(result["params"]),
        best_iteration=int(result["best_iteration"]),
        validation=_metrics(result["validation"]),
        holdout=_metrics(result["holdout"]),
        holdout_scores=output.holdout_scores,
        seconds={key: float(value) for key, value in result["seconds"].items()},
        profile=output.profile,
    )
    split = SplitRecord(**result["split"], holdout_labels=output.holdout_labels)
    data = DatasetFingerprint(**result["data"])
    example = pd.DataFrame.from_records(result["example"])
    run_tags = {
        "fraudops.engine": "spark",
        "fraudops.spark_output": output_uri[:5000],
        "fraudops.spark_workers": str(result["num_workers"]),
        **(tags or {}),
    }
    try:
        run_id, version, model_uri = log_and_register(
            settings, trained, split, data, example, run_tags, result.get("dataset")
        )
    except StoreError:
        raise
    except Exception as error:  # S3, MLflow and plotting each raise their own kinds
        raise StoreError(
            f"could not log and register the Spark-trained model ({type(error).__name__}: {error}); "
            "nothing was registered"
        ) from error
    seconds = {**trained.seconds, "log_and_register": time.perf_counter() - started}
    log.info("registered Spark-trained %s version %s from %s", settings.model_name, version, output_uri)
    return TrainingResult(run_id, settings.model_name, version, model_uri, trained.holdout, data, seconds)
