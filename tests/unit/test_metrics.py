from __future__ import annotations

import numpy as np
import pytest

from fraudops.core.errors import MetricsError
from fraudops.model.metrics import best_f1_threshold, evaluate, recall_at_fpr


def test_perfect_ranking() -> None:
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    metrics = evaluate(y, scores, threshold=0.5)
    assert metrics.auprc == 1.0 and metrics.roc_auc == 1.0
    assert metrics.precision == metrics.recall == metrics.f1 == 1.0
    assert (metrics.true_positives, metrics.false_positives, metrics.true_negatives, metrics.false_negatives) == (
        2,
        0,
        3,
        0,
    )


def test_confusion_matrix_and_rates() -> None:
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.4, 0.2, 0.85, 0.3, 0.1, 0.1, 0.05, 0.0])
    metrics = evaluate(y, scores, threshold=0.5)
    assert (metrics.true_positives, metrics.false_positives, metrics.false_negatives) == (2, 1, 2)
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(0.5)
    assert metrics.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert metrics.rows == 10 and metrics.positives == 4


def test_recall_at_one_percent_fpr() -> None:
    rng = np.random.default_rng(0)
    negatives = rng.random(1000) * 0.5  # all below 0.5
    positives = np.concatenate([np.full(30, 0.9), np.full(70, 0.1)])
    y = np.concatenate([np.zeros(1000), np.ones(100)])
    scores = np.concatenate([negatives, positives])
    assert recall_at_fpr(y, scores, 0.01) == pytest.approx(0.30)


def test_threshold_maximises_f1() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    threshold = best_f1_threshold(y, scores)
    assert threshold in scores
    best = evaluate(y, scores, threshold).f1
    assert all(evaluate(y, scores, t).f1 <= best + 1e-12 for t in scores)


def test_single_class_is_an_error() -> None:
    with pytest.raises(MetricsError, match="both classes"):
        evaluate(np.zeros(10), np.random.default_rng(1).random(10), 0.5)
