"""Training as pure compute: features, XGBoost with class weighting and early stopping, the decision
threshold and the evaluation. No store, no files: ``stages/train.py`` reads the data and
``tracking.py`` logs and registers what this returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.config import Settings
from fraudops.core.errors import MetricsError, TrainingError
from fraudops.core.schema import LABEL
from fraudops.decisions.money import CostModel, choose_bands, f1_bands, money_metrics
from fraudops.model.features import FEATURE_SETS, FeatureSpec, build_features
from fraudops.model.metrics import EvaluationMetrics, best_f1_threshold, evaluate
from fraudops.monitoring.profile import build_profile
from fraudops.training.dataset import DataSplit, raw_columns


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
    profile: dict[str, Any] = field(default_factory=dict)  # the training data's reference profile
    money: dict[str, float] = field(default_factory=dict)  # holdout money metrics: chosen bands and F1 threshold


def uses_aggregates(feature_set: str) -> bool:
    """Whether the feature set needs the entity aggregates (the read then adds the names and them)."""
    return bool(set(FEATURE_SETS.get(feature_set, ())) & set(AGGREGATE_NAMES))


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
    # Bands by money, chosen on validation like the threshold; both judged on the holdout in money.
    costs = CostModel.from_settings(settings)
    bands = choose_bands(y_valid, valid_scores, split.validation["amount"].to_numpy(), costs,
                         settings.min_validation_frauds, settings.alert_budget_share)  # fmt: skip
    y_holdout, holdout_amounts = split.holdout[LABEL].to_numpy(), split.holdout["amount"].to_numpy()
    money = {
        **money_metrics(y_holdout, holdout_scores, holdout_amounts, bands, costs).as_dict("money_"),
        **money_metrics(y_holdout, holdout_scores, holdout_amounts, f1_bands(threshold), costs).as_dict("f1_money_"),
    }
    seconds["evaluate"] = time.perf_counter() - started

    # The rule that chose them and what they flag on validation travel with the bands (/model shows them).
    decision_bands = {**bands.as_dict(), "cost_model": costs.as_dict(), "chosen_on": "validation"}
    spec = FeatureSpec(
        feature_names=tuple(names), threshold=threshold, feature_set=feature_set,
        extra={"decision_bands": decision_bands},
    )  # fmt: skip
    return TrainedModel(
        booster, spec, params, best_iteration, validation_metrics, holdout_metrics, holdout_scores, seconds,
        # Expected flagged share at the review band: what the monitor's flagged rate (review or block) counts.
        build_profile(x_train, names, split.train["type"].astype(str).to_numpy(), valid_scores, threshold,
                      bands.review_at), money,
    )  # fmt: skip
