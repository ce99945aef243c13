"""Reasons from exact TreeSHAP: the request path's numpy tables and XGBoost's C library (no xgboost package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from fraudops_dev.sqlite_io import load_training_frame

from fraudops.core.schema import LABEL, RAW_FEATURE_COLUMNS
from fraudops.decisions.reasons import FEATURE_LABELS, top_reasons
from fraudops.model.features import FEATURE_SETS, FeatureSpec, build_features
from fraudops.serving import decide as decisions_serving
from fraudops.serving import treeshap
from fraudops.serving.decide import explain, tree_shap
from fraudops.serving.native import NativeBooster
from fraudops.serving.treeshap import TreeShap
from fraudops.training.dataset import raw_columns
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


def rows_with_missing_values(matrix: np.ndarray) -> np.ndarray:
    """Real rows, then the same rows with one feature missing each (NaN takes each split's default way)."""
    missing = matrix.copy()
    missing[np.arange(len(missing)), np.arange(len(missing)) % missing.shape[1]] = np.nan
    return np.vstack([matrix, missing])


def test_the_request_paths_treeshap_equals_xgboosts_and_adds_up_to_the_margin(
    booster: xgb.Booster, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]
) -> None:
    """The tables ``decisions.treeshap`` builds give XGBoost's own exact TreeSHAP values (float32 rounding
    apart), row by row; with the bias they add up to the margin the booster computes for that row."""
    matrix = rows_with_missing_values(data[0][:300])
    native = NativeBooster(bytes(booster.save_raw("ubj")))
    tables = TreeShap.from_model_json(native.model_json())
    contributions = tables.contributions(matrix)
    reference = booster.predict(xgb.DMatrix(matrix), pred_contribs=True)
    assert contributions.shape == reference.shape == (600, len(NAMES) + 1)
    assert np.abs(contributions - reference).max() < 1e-4
    margin = booster.predict(xgb.DMatrix(matrix), output_margin=True)
    assert contributions.astype(np.float64).sum(axis=1) == pytest.approx(margin, abs=1e-4)
    assert np.all(contributions[:, NAMES.index(NEVER_SPLIT)] == 0.0)  # exactly: no tree splits on it


@pytest.mark.parametrize("depth", [1, 3, 8])
def test_treeshap_tables_hold_for_shallow_and_deep_trees(
    depth: int, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]
) -> None:
    matrix, labels, _ = data
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.3, "nthread": 1, "seed": 2}
    booster = xgb.train(params, xgb.DMatrix(matrix[:5000], label=labels[:5000]), 12)
    rows = rows_with_missing_values(matrix[:100])
    tables = TreeShap.from_model_json(NativeBooster(bytes(booster.save_raw("ubj"))).model_json())
    contributions = tables.contributions(rows)
    assert np.abs(contributions - booster.predict(xgb.DMatrix(rows), pred_contribs=True)).max() < 1e-4
    margin = booster.predict(xgb.DMatrix(rows), output_margin=True)
    assert contributions.astype(np.float64).sum(axis=1) == pytest.approx(margin, abs=1e-4)


def test_a_model_too_large_for_the_tables_is_explained_by_xgboosts_c_library(
    booster: xgb.Booster, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(treeshap, "MAX_TABLE_BYTES", 1024)
    model = served(booster, FeatureSpec(NAMES, threshold=0.5))
    assert tree_shap(model) is None
    rows = data[2][:5]
    features = model.features({name: [row[name] for row in rows] for name in RAW_FEATURE_COLUMNS})
    assert np.array_equal(decisions_serving.contributions(model, features), model.booster.contributions(features))
    assert all(reasons for reasons in explain(model, rows, top=3))


def test_a_feature_never_split_on_is_never_a_reason(
    booster: xgb.Booster, data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]
) -> None:
    spec = FeatureSpec(NAMES, threshold=0.5)
    model = served(booster, spec)
    assert tree_shap(model) is not None  # the request path's tables explain it
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
    from fraudops.model.features import _FEATURES

    assert set(_FEATURES) == set(FEATURE_LABELS)


def test_trees_that_never_split_are_all_bias(data: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]) -> None:
    matrix, labels, _ = data
    params = {"objective": "binary:logistic", "gamma": 1e9, "nthread": 1}  # no split ever pays
    booster = xgb.train(params, xgb.DMatrix(matrix[:2000], label=labels[:2000]), 3)
    tables = TreeShap.from_model_json(NativeBooster(bytes(booster.save_raw("ubj"))).model_json())
    contributions = tables.contributions(matrix[:10])
    assert np.all(contributions[:, :-1] == 0.0)
    assert contributions[:, -1] == pytest.approx(booster.predict(xgb.DMatrix(matrix[:10]), output_margin=True))
