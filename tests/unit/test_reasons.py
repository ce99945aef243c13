"""Reasons from exact TreeSHAP contributions through XGBoost's C library (no xgboost package needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from fraudops.data import load_training_frame, raw_columns
from fraudops.decisions.reasons import FEATURE_LABELS, top_reasons
from fraudops.decisions.serving import explain
from fraudops.features import FEATURE_SETS, FeatureSpec, build_features
from fraudops.native import NativeBooster
from fraudops.schema import LABEL
from tests.helpers.models import served

NAMES = FEATURE_SETS["engineered"]
NEVER_SPLIT = "hour_of_day"


@pytest.fixture(scope="module")
def data(small_db: Path) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    frame = load_training_frame(small_db).iloc[:20_000]
    matrix = build_features(raw_columns(frame), NAMES)
    rows = frame[list(raw_columns(frame))].to_dict("records")
    return matrix, frame[LABEL].to_numpy(), rows


@pytest.fixture(scope="module")
def booster(data: tuple[np.ndarray, np.ndarray, list[dict[str, object]]]) -> xgb.Booster:
    """Trained with ``hour_of_day`` constant, so no tree splits on it."""
    matrix, labels, _ = data
    training = matrix.copy()
    training[:, NAMES.index(NEVER_SPLIT)] = 0.0
    params = {"objective": "binary:logistic", "max_depth": 5, "eta": 0.3, "nthread": 1, "seed": 1}
    return xgb.train(params, xgb.DMatrix(training, label=labels), 40)


def test_contributions_plus_bias_equal_the_margin(
    booster: xgb.Booster, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]
) -> None:
    matrix = data[0][:500]
    native = NativeBooster(bytes(booster.save_raw("ubj")))
    contributions = native.contributions(matrix)
    assert contributions.shape == (500, len(NAMES) + 1)
    margin = booster.predict(xgb.DMatrix(matrix), output_margin=True)
    assert contributions.sum(axis=1) == pytest.approx(margin, abs=1e-4)
    assert native.margins(matrix) == pytest.approx(margin, abs=1e-6)
    # The same numbers as the xgboost package's own pred_contribs (exact TreeSHAP, not the approximation).
    reference = booster.predict(xgb.DMatrix(matrix), pred_contribs=True)
    assert np.array_equal(contributions, reference)


def test_a_feature_never_split_on_is_never_a_reason(
    booster: xgb.Booster, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]
) -> None:
    spec = FeatureSpec(NAMES, threshold=0.5)
    model = served(booster, spec)
    rows = data[2][:2000]
    assert len({row["step"] % 24 for row in rows}) > 10  # the feature varies in what is explained
    for reasons in explain(model, rows, top=len(NAMES)):
        assert NEVER_SPLIT not in [reason.feature for reason in reasons]
        assert all(reason.contribution != 0.0 for reason in reasons)
    used = {NAMES[int(f[1:])] if f.startswith("f") else f for f in booster.get_score(importance_type="weight")}
    explained = {reason.feature for reasons in explain(model, rows, top=len(NAMES)) for reason in reasons}
    assert explained <= used


def test_reasons_are_the_largest_contributions_with_readable_names_and_the_values_sent() -> None:
    names = ("amount", "balance_error_orig", "type_TRANSFER", "hour_of_day")
    features = np.array([181000.0, 181000.0, 1.0, 20.0], dtype=np.float32)
    contributions = np.array([0.4, 3.1, -1.2, 0.0, -2.0])  # the last one is the bias
    transaction = {"amount": 181000.0, "type": "TRANSFER", "step": 212}
    reasons = top_reasons(names, features, contributions, transaction, top=4)
    assert [r.feature for r in reasons] == ["balance_error_orig", "type_TRANSFER", "amount"]  # the zero is left out
    first = reasons[0].as_dict()
    assert first["label"] == FEATURE_LABELS["balance_error_orig"][0]
    assert first["direction"] == "raises" and "field" not in first
    assert reasons[1].as_dict() | {} == {
        "feature": "type_TRANSFER", "label": "transaction type is TRANSFER", "value": 1.0, "contribution": -1.2,
        "direction": "lowers", "field": "type", "field_value": "TRANSFER",
    }  # fmt: skip


def test_every_feature_the_code_builds_has_a_readable_label() -> None:
    from fraudops.features import _FEATURES

    assert set(_FEATURES) == set(FEATURE_LABELS)
