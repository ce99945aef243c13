"""Compiles a booster into the form the API serves (``compiled.CompiledTrees``) and proves it equal to the
booster before promotion publishes it. Runs where xgboost already is (training and promotion images).

The check scores probe rows that sit just below and on every split threshold, rows with each feature
missing (NaN follows each node's default direction) and, when given, real rows (the holdout); any
difference above 1e-6 refuses the compiled form, and the API then serves the booster itself.
"""

from __future__ import annotations

import json

import numpy as np
import xgboost as xgb

from fraudops.serving.compiled import CompiledTrees, UnsupportedModelError

TOLERANCE = 1e-6


def compile_booster(booster: xgb.Booster, real_rows: np.ndarray | None = None) -> CompiledTrees:
    """The verified compiled form; raises UnsupportedModelError when it cannot express the booster."""
    compiled = CompiledTrees.from_model_json(json.loads(booster.save_raw("json")))
    rows = probe_rows(compiled)
    if real_rows is not None and len(real_rows):
        rows = np.vstack([rows, np.asarray(real_rows, dtype=np.float32)])
    worst = largest_difference(compiled, booster, rows)
    if not worst <= TOLERANCE:
        raise UnsupportedModelError(f"compiled trees differ from the booster by {worst:.2e}")
    return compiled


def largest_difference(compiled: CompiledTrees, booster: xgb.Booster, rows: np.ndarray) -> float:
    expected = np.asarray(booster.inplace_predict(rows, validate_features=False), dtype=np.float64)
    got = np.asarray(compiled.probabilities(rows), dtype=np.float64)
    return float(np.max(np.abs(got - expected))) if len(rows) else 0.0


def probe_rows(compiled: CompiledTrees, extra: int = 64, seed: int = 0) -> np.ndarray:
    """Rows just below and on every split threshold, the other features drawn from the same candidate
    values; then the same rows with one feature missing each (every default direction gets used)."""
    rng = np.random.default_rng(seed)
    inner = compiled.leaf_value.ravel() == 0  # padding nodes included: harmless extra probes
    features, thresholds = compiled.feature.ravel()[inner], compiled.threshold.ravel()[inner]
    below = np.nextafter(thresholds, np.float32(-np.inf))
    pinned_feature = np.concatenate([features, features, np.zeros(extra, np.int32)])
    pinned_value = np.concatenate([below, thresholds, np.zeros(extra, np.float32)])
    candidates = [np.concatenate([[0.0], pinned_value[pinned_feature == f]]) for f in range(compiled.n_features)]
    n = len(pinned_feature)
    rows = np.column_stack([c[rng.integers(0, len(c), size=n)] for c in candidates]).astype(np.float32)
    pinned = np.arange(n) < n - extra
    rows[np.arange(n)[pinned], pinned_feature[pinned]] = pinned_value[pinned]
    missing = rows.copy()
    missing[np.arange(n), rng.integers(0, compiled.n_features, size=n)] = np.nan
    return np.vstack([rows, missing])
