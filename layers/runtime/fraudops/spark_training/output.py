"""What a Spark training job hands the register step, under one output URI:

``booster.json`` (the trees early stopping chose), ``feature_spec.json``, ``profile.json``,
``holdout_scores.npz`` (holdout labels and scores, for the run's precision-recall plot) and, written last
as the commit marker, ``result.json`` (params, metrics, split, dataset, timings, an input example). A job
that died part-way leaves no ``result.json``, and the register step refuses the folder.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from fraudops.core.config import Settings
from fraudops.core.errors import TrainingError
from fraudops.model.features import FeatureSpec
from fraudops.spark_training.storage import get_bytes, join_uri, put_bytes

BOOSTER = "booster.json"
SPEC = "feature_spec.json"
PROFILE = "profile.json"
HOLDOUT = "holdout_scores.npz"
RESULT = "result.json"


@dataclass
class SparkTrainingOutput:
    booster: xgb.Booster
    spec: FeatureSpec
    profile: dict[str, Any]
    holdout_labels: np.ndarray
    holdout_scores: np.ndarray
    result: dict[str, Any]


def _native(value: Any) -> Any:
    """numpy scalars (an example row's values) as JSON numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_output(settings: Settings, output_uri: str, output: SparkTrainingOutput) -> None:
    put_bytes(settings, join_uri(output_uri, BOOSTER), bytes(output.booster.save_raw("json")))
    put_bytes(settings, join_uri(output_uri, SPEC), json.dumps(output.spec.to_dict(), indent=2).encode())
    put_bytes(settings, join_uri(output_uri, PROFILE), json.dumps(output.profile).encode())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, labels=output.holdout_labels.astype(np.int8), scores=output.holdout_scores)
    put_bytes(settings, join_uri(output_uri, HOLDOUT), buffer.getvalue())
    put_bytes(
        settings, join_uri(output_uri, RESULT), json.dumps(output.result, indent=2, default=_native).encode()
    )  # last


def read_output(settings: Settings, output_uri: str) -> SparkTrainingOutput:
    result = get_bytes(settings, join_uri(output_uri, RESULT))
    if result is None:
        raise TrainingError(
            f"no complete Spark training output at {output_uri} ({RESULT} is missing): the job did not finish"
        )
    parts = {name: get_bytes(settings, join_uri(output_uri, name)) for name in (BOOSTER, SPEC, PROFILE, HOLDOUT)}
    missing = [name for name, data in parts.items() if data is None]
    if missing:
        raise TrainingError(f"Spark training output at {output_uri} lacks {', '.join(missing)}")
    booster = xgb.Booster()
    booster.load_model(bytearray(parts[BOOSTER] or b""))
    with np.load(io.BytesIO(parts[HOLDOUT] or b"")) as holdout:
        labels, scores = holdout["labels"], holdout["scores"]
    return SparkTrainingOutput(
        booster=booster,
        spec=FeatureSpec.from_dict(json.loads(parts[SPEC] or b"{}")),
        profile=json.loads(parts[PROFILE] or b"{}"),
        holdout_labels=labels,
        holdout_scores=np.asarray(scores, dtype=np.float64),
        result=json.loads(result),
    )
