"""The training set as training and promotion see it: its fingerprint (enough to tell two sets apart and
reproduce a run) and the out-of-time split (training and promotion cut the same way)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.config import Settings
from fraudops.core.errors import TrainingError
from fraudops.core.schema import LABEL, RAW_FEATURE_COLUMNS


@dataclass(frozen=True)
class DatasetFingerprint:
    """Enough to tell two training sets apart and to reproduce a run."""

    rows: int
    fraud_rows: int
    min_step: int
    max_step: int
    sha256: str

    def as_params(self) -> dict[str, str | int]:
        return {
            "data_rows": self.rows,
            "data_fraud_rows": self.fraud_rows,
            "data_min_step": self.min_step,
            "data_max_step": self.max_step,
            "data_sha256": self.sha256,
        }


def fingerprint(frame: pd.DataFrame) -> DatasetFingerprint:
    digest = hashlib.sha256()
    for column in [*RAW_FEATURE_COLUMNS, LABEL]:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
            digest.update(np.ascontiguousarray(values.to_numpy(dtype=np.float64)).tobytes())
        else:  # text (object, str or category dtype): hash the values, never object addresses
            digest.update("\x1f".join(values.astype(str).tolist()).encode())
    return DatasetFingerprint(
        rows=len(frame),
        fraud_rows=int(frame[LABEL].sum()),
        min_step=int(frame["step"].min()),
        max_step=int(frame["step"].max()),
        sha256=digest.hexdigest(),
    )


# --- the out-of-time split (training and promotion cut the same way) --------------------------------


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
    """The columns features are built from: the request's fields and the entity aggregates, when the
    frame has them (``read_training_data(aggregates=True)``)."""
    names = [*RAW_FEATURE_COLUMNS, *(name for name in AGGREGATE_NAMES if name in frame.columns)]
    return {name: frame[name].to_numpy() for name in names}
