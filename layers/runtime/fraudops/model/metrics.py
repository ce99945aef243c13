"""Evaluation metrics for a 0.1%-positive problem. Pure functions of labels and scores."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from fraudops.core.errors import MetricsError


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


# --- paired bootstrap of the AUPRC gain (the promotion rule's test) ------------------------------------


@dataclass(frozen=True)
class GainInterval:
    """Candidate AUPRC minus Production AUPRC on the same rows, with a paired-bootstrap interval."""

    gain: float
    lower: float
    upper: float
    confidence: float
    resamples: int

    def as_dict(self) -> dict[str, float]:
        return {key: float(value) for key, value in asdict(self).items()}


def _group_index(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, int]:
    """For each row, the index of the first tie group holding a positive at or below it in descending
    score order (the point of the precision-recall curve whose precision counts that row), and the
    number of such groups. Rows ranked after the last positive get that number (they never count)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    group_ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    group_of_position = np.repeat(np.arange(len(group_ends)), np.diff(np.r_[-1, group_ends]))
    positive_group_ends = np.unique(group_ends[group_of_position[y_true[order] == 1]])
    position = np.empty(len(scores), dtype=np.int64)
    position[order] = np.arange(len(scores))
    return np.searchsorted(positive_group_ends, position, side="left"), len(positive_group_ends)


def _average_precisions(
    positive_weights: np.ndarray, negative_weights: np.ndarray, to_group_pos: Any, to_group_neg: Any
) -> np.ndarray:
    """AP per resample from weights aggregated per positive-holding group (exact, ties as sklearn)."""
    tp = np.cumsum(np.asarray(positive_weights @ to_group_pos), axis=1)
    everything = tp + np.cumsum(np.asarray(negative_weights @ to_group_neg), axis=1)
    recall_steps = np.diff(tp, axis=1, prepend=0.0)
    return np.asarray((recall_steps * tp / np.maximum(everything, 1e-12)).sum(axis=1) / np.maximum(tp[:, -1], 1e-12))


def paired_bootstrap_auprc_gain(
    y_true: np.ndarray,
    candidate_scores: np.ndarray,
    production_scores: np.ndarray,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 50,
) -> GainInterval:
    """How much of the AUPRC gain is more than the luck of which rows landed in the holdout: resample
    the rows (the same resample for both models), recompute both AUPRCs, and take the one-sided
    ``confidence`` bounds of the difference. Deterministic for a given seed."""
    y_true = np.asarray(y_true).astype(np.int8)
    _check_labels(y_true)
    candidate_scores = np.asarray(candidate_scores, dtype=np.float64)
    production_scores = np.asarray(production_scores, dtype=np.float64)
    gain = float(average_precision_score(y_true, candidate_scores) - average_precision_score(y_true, production_scores))
    # The Poisson bootstrap (each row's weight an independent Poisson(1) count), aggregated: only the
    # groups a row falls in matter, and a sum of m Poisson(1) weights is one Poisson(m) draw. Negatives
    # are grouped by their (candidate group, production group) pair, so both models see the same
    # resample (paired) at a cost that does not grow with the holdout's legitimate rows.
    from scipy import sparse

    positives = y_true == 1
    candidate_group, candidate_groups = _group_index(y_true, candidate_scores)
    production_group, production_groups = _group_index(y_true, production_scores)
    cells, cell_counts = np.unique(
        np.stack([candidate_group[~positives], production_group[~positives]], axis=1), axis=0, return_counts=True
    )
    kept = (cells[:, 0] < candidate_groups) | (cells[:, 1] < production_groups)
    cells, cell_counts = cells[kept], cell_counts[kept]

    def onehot(groups: np.ndarray, width: int) -> Any:
        inside = groups < width
        rows = np.flatnonzero(inside)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, groups[inside])), shape=(len(groups), width))

    maps = [
        (onehot(candidate_group[positives], candidate_groups), onehot(cells[:, 0], candidate_groups)),
        (onehot(production_group[positives], production_groups), onehot(cells[:, 1], production_groups)),
    ]
    rng = np.random.default_rng(seed)
    gains: list[np.ndarray] = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        positive_weights = rng.poisson(1.0, size=(size, int(positives.sum()))).astype(np.float64)
        negative_weights = rng.poisson(cell_counts, size=(size, len(cell_counts))).astype(np.float64)
        candidate_ap, production_ap = (
            _average_precisions(positive_weights, negative_weights, pos_map, neg_map) for pos_map, neg_map in maps
        )
        gains.append(candidate_ap - production_ap)
    samples = np.concatenate(gains)
    alpha = 1.0 - confidence
    return GainInterval(
        gain=gain,
        lower=float(np.quantile(samples, alpha)),
        upper=float(np.quantile(samples, 1.0 - alpha)),
        confidence=confidence,
        resamples=resamples,
    )
