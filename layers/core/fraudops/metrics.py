"""Evaluation metrics for a 0.1%-positive problem. Pure functions of labels and scores."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve


class MetricsError(ValueError):
    """Metrics are undefined for these labels (e.g. a slice with no fraud)."""


@dataclass(frozen=True)
class EvaluationMetrics:
    auprc: float
    roc_auc: float
    recall_at_1pct_fpr: float
    precision: float
    recall: float
    f1: float
    threshold: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int
    rows: int
    positives: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def _check_labels(y_true: np.ndarray) -> None:
    positives = int(y_true.sum())
    if positives == 0 or positives == len(y_true):
        raise MetricsError(
            f"need both classes to evaluate, got {positives} fraud rows of {len(y_true)}: use more data "
            "or a larger holdout"
        )


def recall_at_fpr(y_true: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """Share of fraud caught while flagging at most ``max_fpr`` of legitimate transactions."""
    _check_labels(y_true)
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(tpr[fpr <= max_fpr].max())


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score cut-off with the best F1 (chosen on validation data, then frozen with the model)."""
    _check_labels(y_true)
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))  # the last point has no threshold
    return float(thresholds[best])


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> EvaluationMetrics:
    y_true = np.asarray(y_true).astype(np.int8)
    scores = np.asarray(scores, dtype=np.float64)
    _check_labels(y_true)
    predicted = scores >= threshold
    tp = int(np.sum(predicted & (y_true == 1)))
    fp = int(np.sum(predicted & (y_true == 0)))
    fn = int(np.sum(~predicted & (y_true == 1)))
    tn = int(np.sum(~predicted & (y_true == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EvaluationMetrics(
        auprc=float(average_precision_score(y_true, scores)),
        roc_auc=float(roc_auc_score(y_true, scores)),
        recall_at_1pct_fpr=recall_at_fpr(y_true, scores, 0.01),
        precision=precision,
        recall=recall,
        f1=f1,
        threshold=float(threshold),
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
        rows=len(y_true),
        positives=int(y_true.sum()),
    )
