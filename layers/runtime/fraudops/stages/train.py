"""The train stage: read the lake's transactions (a window of partitions), split them out of time, train,
then log (with the dataset read) and register.

All the slow work (reading, training, plotting) happens before the registry is opened; the registry
writes happen together at the end, so a failure never leaves a half-registered version behind.
"""

from __future__ import annotations

import logging
import time

from fraudops.core.config import Settings
from fraudops.core.errors import StoreError, disk_full_cause
from fraudops.lake import Lake
from fraudops.lake.transactions import read_training_data
from fraudops.training.dataset import fingerprint, split_out_of_time
from fraudops.training.fit import train_model, uses_aggregates
from fraudops.training.tracking import TrainingResult, log_and_register

log = logging.getLogger(__name__)


def run_training(
    settings: Settings,
    feature_set: str = "engineered",
    tags: dict[str, str] | None = None,
    snapshot_id: int | None = None,
) -> TrainingResult:
    """Read the table (its current Iceberg snapshot, or ``snapshot_id``: a recorded run's rows again),
    train, evaluate, log and register. Raises TrainingError/DataError on bad data."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    lake = Lake(settings)
    window = settings.train_window_days or None
    log.info("reading transactions from the lake at %s (window: %s, snapshot: %s)", lake.root_uri,
             f"newest {window} days" if window else "all", snapshot_id or "current")  # fmt: skip
    read = read_training_data(lake.transactions, window, snapshot_id, aggregates=uses_aggregates(feature_set))
    frame = read.frame
    data = fingerprint(frame)
    timings["read"] = time.perf_counter() - started
    log.info(
        "read %d rows (%d fraud, steps %d..%d, %d partitions) in %.1fs",
        data.rows, data.fraud_rows, data.min_step, data.max_step, len(read.partitions), timings["read"],
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
        run_id, version, model_uri = log_and_register(
            settings, trained, split, data, frame, tags or {}, read.describe()
        )
    except StoreError:  # already says what failed (RegistryConflictError is one: the caller retries)
        raise
    except Exception as error:  # S3, MLflow and plotting each raise their own kinds
        full = disk_full_cause(error)
        if full:
            raise StoreError(
                f"could not log and register the model: {full} (under {settings.state_dir}); the run was marked "
                "FAILED and nothing was registered: free some space and train again"
            ) from error
        raise StoreError(
            f"could not log and register the model ({type(error).__name__}: {error}); nothing was registered"
        ) from error
    timings["log_and_register"] = time.perf_counter() - started
    log.info("logged run %s and registered %s version %s", run_id, settings.model_name, version)
    return TrainingResult(run_id, settings.model_name, version, model_uri, trained.holdout, data, timings)
