"""Thresholds chosen by money: the cost model, the review/block bands that maximise expected savings
(optionally under an alert budget) and the money metrics reported wherever a metric is.

**Cost model** (``CostModel``; documented in docs/decisions.md), per transaction and outcome:

==========  =====================  ======================
outcome     fraud                  legitimate
==========  =====================  ======================
approve     its amount (missed)    0
review      ``review_cost``        ``review_cost``
block       0                      ``friction_cost``
==========  =====================  ======================

A review is assumed to stop the fraud it sees. **Savings** are measured against approving everything:
``fraud amount caught - review_cost x reviews - friction_cost x legitimate payments blocked``. An
alert is a review (an analyst's work item); ``alerts_per_1000`` is what the budget bounds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

from fraudops.config import Settings
from fraudops.decisions.policy import Bands
from fraudops.errors import MetricsError

MAX_CANDIDATES: Final = 400
NEVER: Final = float("inf")


@dataclass(frozen=True)
class CostModel:
    review_cost: float
    friction_cost: float
    alert_budget_per_1000: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> CostModel:
        return cls(settings.review_cost, settings.friction_cost, settings.alert_budget_per_1000)


@dataclass(frozen=True)
class MoneyMetrics:
    fraud_amount_total: float
    fraud_amount_caught: float  # reviewed or blocked
    amount_recall: float  # caught / total: recall weighted by amount
    reviews: int
    blocks: int
    legitimate_blocked: int
    alerts_per_1000: float  # reviews per 1,000 transactions
    flagged_per_1000: float  # reviews and blocks per 1,000
    cost: float  # of the outcomes, under the cost model
    savings: float  # against approving everything
    rows: int

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def _inputs(labels: Any, scores: Any, amounts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    a = np.asarray(amounts, dtype=np.float64)
    if not (len(y) == len(s) == len(a)) or len(y) == 0:
        raise MetricsError(f"money metrics need labels, scores and amounts of one non-zero length, got "
                           f"{len(y)}, {len(s)}, {len(a)}")  # fmt: skip
    return y, s, a


def money_metrics(labels: Any, scores: Any, amounts: Any, bands: Bands, costs: CostModel) -> MoneyMetrics:
    """What ``bands`` would have done to these transactions, in money."""
    y, s, a = _inputs(labels, scores, amounts)
    block_at = NEVER if bands.block_at is None else bands.block_at
    blocked = s >= block_at
    reviewed = (s >= bands.review_at) & ~blocked
    flagged = blocked | reviewed
    total = float(a[y].sum())
    caught = float(a[y & flagged].sum())
    legit_blocked = int((blocked & ~y).sum())
    reviews = int(reviewed.sum())
    savings = caught - costs.review_cost * reviews - costs.friction_cost * legit_blocked
    return MoneyMetrics(
        fraud_amount_total=total, fraud_amount_caught=caught, amount_recall=caught / total if total else 0.0,
        reviews=reviews, blocks=int(blocked.sum()), legitimate_blocked=legit_blocked,
        alerts_per_1000=1000.0 * reviews / len(y), flagged_per_1000=1000.0 * int(flagged.sum()) / len(y),
        cost=total - savings, savings=savings, rows=len(y),
    )  # fmt: skip


ABOVE_EVERY_SCORE = float(np.nextafter(1.0, 2.0))  # probabilities are at most 1.0


def choose_bands(labels: Any, scores: Any, amounts: Any, costs: CostModel) -> Bands:
    """The review and block thresholds with the largest savings on these (validation) rows whose reviews
    fit the alert budget; ties go to fewer alerts. Candidates are the scores themselves (thinned to
    ``MAX_CANDIDATES`` quantiles), so every achievable split of the rows is considered up to that grid."""
    y, s, a = _inputs(labels, scores, amounts)
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    fraud_amount = np.concatenate([[0.0], np.cumsum(np.where(y[order], a[order], 0.0))])
    legitimate = np.concatenate([[0], np.cumsum(~y[order])])
    # Thresholds at distinct scores: flagging "score >= t" flags the first k rows of the sorted order.
    distinct = np.unique(sorted_scores)[::-1]
    if len(distinct) > MAX_CANDIDATES:
        distinct = np.unique(np.quantile(s, np.linspace(0.0, 1.0, MAX_CANDIDATES)))[::-1]
    thresholds = np.concatenate([[NEVER], distinct])
    flagged_rows = np.searchsorted(-sorted_scores, -thresholds, side="right")  # rows with score >= t
    k_review = flagged_rows[:, None]
    k_block = flagged_rows[None, :]
    valid = k_block <= k_review  # block_at >= review_at
    reviews = k_review - k_block
    savings = fraud_amount[k_review] - costs.review_cost * reviews - costs.friction_cost * legitimate[k_block]
    if costs.alert_budget_per_1000 is not None:
        valid &= 1000.0 * reviews / len(y) <= costs.alert_budget_per_1000 + 1e-9
    score = np.where(valid, savings, -np.inf)
    best = score.max()
    ties = np.argwhere(score == best)
    review_index, block_index = min(ties.tolist(), key=lambda ij: (reviews[ij[0], ij[1]], -ij[0]))
    review_at, block_at = float(thresholds[review_index]), float(thresholds[block_index])
    if review_at == NEVER:  # nothing worth flagging: a band above every probability reviews nothing (1.0 would
        # review rows scored exactly 1.0: alerts past the budget, and a cost where approving all saves more)
        return Bands(ABOVE_EVERY_SCORE, None)
    return Bands(min(review_at, 1.0), None if block_at == NEVER else min(block_at, 1.0))


def f1_bands(threshold: float) -> Bands:
    """Today's decision as bands: every score from the F1 threshold goes to review, nothing is blocked."""
    return Bands(threshold, None)
