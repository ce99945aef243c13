"""Reference profiles and drift measures: pure functions of arrays.

A model's profile (``profile.json``, saved with the model next to ``feature_spec.json``) describes the
data it was trained on: for every feature, decile bin edges and the share of training rows in each
bin; for ``type``, the share of each transaction type; the score distribution on the validation split;
and the share of validation rows its decisions flag (score at or above ``flagged_at``). The monitor bins
live traffic the same way and compares.

**PSI** (population stability index) = sum over bins of (current - reference) * ln(current /
reference), shares smoothed by 1e-4 so an empty bin counts without dividing by zero. Conventional
reading, used as the thresholds: below 0.1 stable, 0.1 to 0.25 watch, 0.25 and above act.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudops.core.schema import TRANSACTION_TYPES

PROFILE_ARTIFACT = "profile.json"
PROFILE_VERSION = 1
BINS = 10
SMOOTHING = 1e-4
WATCH, ACT = 0.1, 0.25


def bin_edges(values: npt.ArrayLike, bins: int = BINS) -> list[float]:
    """Interior cut points at the quantiles (duplicates dropped: a mostly-zero feature gets few bins)."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return []
    quantiles = np.unique(np.quantile(array, np.linspace(0, 1, bins + 1)[1:-1]))
    # Just above each cut: a point mass sitting on a cut (many rows with one score, or zero balances)
    # stays in one bin even when serving computes it a float32 rounding away from training.
    return [float(edge + abs(edge) * 1e-6 + 1e-12) for edge in quantiles]


def shares(values: npt.ArrayLike, edges: Sequence[float]) -> list[float]:
    """Share of values per bin: (-inf, e1], (e1, e2], ..., (ek, inf)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return [0.0] * (len(edges) + 1)
    counts = np.bincount(np.searchsorted(np.asarray(edges), array, side="left"), minlength=len(edges) + 1)
    return [float(c) for c in counts / array.size]


def category_shares(values: npt.ArrayLike, categories: Sequence[str] = TRANSACTION_TYPES) -> dict[str, float]:
    array = np.asarray(values).astype(str)
    total = max(len(array), 1)
    return {category: float(np.sum(array == category)) / total for category in categories}


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    ref = np.asarray(reference, dtype=np.float64) + SMOOTHING
    cur = np.asarray(current, dtype=np.float64) + SMOOTHING
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def level(value: float) -> str:
    return "act" if value >= ACT else "watch" if value >= WATCH else "stable"


def build_profile(
    features: np.ndarray,
    feature_names: Sequence[str],
    types: npt.ArrayLike,
    validation_scores: np.ndarray,
    threshold: float,
    flagged_at: float | None = None,
) -> dict[str, Any]:
    """The profile of the rows a model was trained on (``features``: the training matrix). ``flagged_at``:
    the lowest score the model's decisions flag (its review band; default ``threshold``), so
    ``expected_flagged_rate`` is what the monitor's flagged rate (review or block) is compared with;
    ``expected_threshold_rate`` is the share at the F1 ``threshold`` (the captured ``prediction``)."""
    scores = np.asarray(validation_scores)
    flagged_at = threshold if flagged_at is None else flagged_at
    numeric = {}
    for index, name in enumerate(feature_names):
        column = np.asarray(features[:, index], dtype=np.float64)
        edges = bin_edges(column)
        numeric[name] = {"edges": edges, "shares": shares(column, edges)}
    score_edges = bin_edges(validation_scores)
    return {
        "profile_version": PROFILE_VERSION,
        "rows": len(features),
        "numeric": numeric,
        "categorical": {"type": category_shares(types)},
        "score": {"edges": score_edges, "shares": shares(validation_scores, score_edges)},
        "expected_flagged_rate": float(np.mean(scores >= flagged_at)),
        "flagged_at": float(flagged_at),
        "expected_threshold_rate": float(np.mean(scores >= threshold)),
    }


def compare(
    profile: Mapping[str, Any],
    features: np.ndarray,
    feature_names: Sequence[str],
    types: npt.ArrayLike,
    scores: np.ndarray,
) -> dict[str, Any]:
    """PSI per feature, for ``type`` and for the score, with current shares for the report."""
    result: dict[str, Any] = {"features": {}, "rows": len(scores)}
    for index, name in enumerate(feature_names):
        reference = profile["numeric"].get(name)
        if reference is None:
            continue
        current = shares(features[:, index], reference["edges"])
        value = psi(reference["shares"], current)
        result["features"][name] = {"psi": value, "level": level(value), "edges": reference["edges"],
                                    "reference": reference["shares"], "current": current}  # fmt: skip
    reference_types = profile["categorical"]["type"]
    current_types = category_shares(types, list(reference_types))
    type_psi = psi(list(reference_types.values()), list(current_types.values()))
    result["type"] = {"psi": type_psi, "level": level(type_psi), "reference": reference_types, "current": current_types}
    score_current = shares(scores, profile["score"]["edges"])
    score_psi = psi(profile["score"]["shares"], score_current)
    result["score"] = {"psi": score_psi, "level": level(score_psi), "edges": profile["score"]["edges"],
                       "reference": profile["score"]["shares"], "current": score_current}  # fmt: skip
    result["max_feature_psi"] = max([f["psi"] for f in result["features"].values()] + [type_psi], default=0.0)
    result["drifted"] = sorted(
        [name for name, f in result["features"].items() if f["level"] == "act"]
        + (["type"] if result["type"]["level"] == "act" else [])
    )
    return result
