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
alert is a review (an analyst's work item); the alert budget bounds every transaction the bands flag
(reviews and blocks, ``flagged_per_1000``): bounding reviews alone moved the whole flood into blocks.

**Which rule chose the bands** (``BandChoice.rule``; docs/decisions.md says why): ``savings`` (the pair
with the largest savings flagging at most a share of the budget on validation) only when the validation
slice holds at least ``min_frauds`` frauds; otherwise ``top-of-budget``: review the top of the
validation scores that share allows, and block nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import numpy as np

from fraudops.core.config import Settings
from fraudops.core.errors import MetricsError
from fraudops.decisions.policy import Bands

MAX_CANDIDATES: Final = 400
NEVER: Final = float("inf")
SAVINGS_RULE: Final = "savings"
FALLBACK_RULE: Final = "top-of-budget"
F1_RULE: Final = "f1-threshold"  # the fallback without a budget (CostModel's default; never by Settings)


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


@dataclass(frozen=True)
class BandChoice(Bands):
    """Bands with how they were chosen: the rule, the frauds it saw and what the bands flag on the rows
    they were chosen on, so ``/model``, MLflow and the report can say why the queue is the size it is."""

    rule: str = SAVINGS_RULE
    reason: str = ""
    frauds: int = 0  # frauds in the rows chosen on (validation)
    min_frauds: int = 0
    rows: int = 0
    alerts_per_1000: float = 0.0  # reviews per 1,000 of those rows
    flagged_per_1000: float = 0.0  # reviews and blocks per 1,000
    alert_budget_per_1000: float | None = None
    target_per_1000: float | None = None  # the share of the budget the bands may flag on validation

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.to_dict(), "rule": self.rule, "reason": self.reason, "validation_frauds": self.frauds,
            "min_validation_frauds": self.min_frauds, "validation_rows": self.rows,
            "alerts_per_1000": self.alerts_per_1000, "flagged_per_1000": self.flagged_per_1000,
            "alert_budget_per_1000": self.alert_budget_per_1000, "target_per_1000": self.target_per_1000,
        }  # fmt: skip


def choose_bands(
    labels: Any, scores: Any, amounts: Any, costs: CostModel, min_frauds: int = 0, budget_share: float = 1.0
) -> BandChoice:
    """The bands training serves, chosen on validation rows to flag at most ``budget_share`` of the alert
    budget there (later traffic flags more: the rest is its room). With at least ``min_frauds`` frauds:
    the pair that saves the most money within that (``savings_bands``). With fewer, savings are the noise
    of a handful of amounts (one fraud moved review_at to 0.000147 in issue 27) and the F1 threshold is
    no better (on 20 frauds it caught 46% of the holdout's fraud money), so the stated fallback: review
    the top of the validation scores the budget allows, block nothing (a block acts without a human, on
    evidence that is not there). Without a budget the fallback reviews from the F1 threshold."""
    y, s, a = _inputs(labels, scores, amounts)
    frauds = int(y.sum())
    budget = costs.alert_budget_per_1000
    target = None if budget is None else budget * budget_share
    within = f"{target:.3g} per 1,000 ({budget_share:.0%} of the budget of {budget:g})" if budget else "no budget"
    if frauds >= min_frauds:
        bands = savings_bands(y, s, a, replace(costs, alert_budget_per_1000=target))
        rule = SAVINGS_RULE
        reason = f"{frauds} validation frauds, at least {min_frauds}: the most savings flagging at most {within}"
    elif target is not None and budget is not None:
        cut = budget_cut(s, target)
        rule = FALLBACK_RULE
        reason = (f"{frauds} validation frauds, fewer than {min_frauds}: review the top {within} of validation "
                  f"scores, block nothing")  # fmt: skip
        if cut > s.max():  # the highest score ties over more rows than the share: the headroom may take them
            cut = budget_cut(s, budget)
            top = int((s == s.max()).sum())
            reason += (f"; the highest score ties over {top} rows, more than the share, so the whole budget"
                       if cut <= s.max() else
                       f"; the highest score ties over {top} rows, more than the budget: nothing is reviewed by "
                       "band (raise FRAUDOPS_ALERT_BUDGET_PER_1000, or train a finer model)")  # fmt: skip
        bands = Bands(cut, None)
    else:
        from fraudops.model.metrics import best_f1_threshold  # sklearn: only where training runs

        bands = Bands(best_f1_threshold(y, s) if frauds else ABOVE_EVERY_SCORE, None)
        rule = F1_RULE
        reason = f"{frauds} validation frauds, fewer than {min_frauds}, and no budget: review from the F1 threshold"
    money = money_metrics(y, s, a, bands, costs)
    return BandChoice(
        bands.review_at, bands.block_at, rule=rule, reason=reason, frauds=frauds, min_frauds=min_frauds, rows=len(y),
        alerts_per_1000=money.alerts_per_1000, flagged_per_1000=money.flagged_per_1000, alert_budget_per_1000=budget,
        target_per_1000=target,
    )  # fmt: skip


def budget_cut(scores: Any, budget_per_1000: float | None) -> float:
    """The lowest threshold at which ``score >= threshold`` flags at most the budget's share of these
    scores (ties all in or all out, so a tie never pushes the count over); 0.0 without a budget."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if budget_per_1000 is None:
        return 0.0
    allowed = int(np.floor(budget_per_1000 * len(s) / 1000.0 + 1e-9))
    if allowed >= len(s):
        return 0.0
    if allowed == 0:
        return ABOVE_EVERY_SCORE
    # s[allowed] is the first row that must stay out: the cut is the lowest score strictly above it.
    above = s[:allowed][s[:allowed] > s[allowed]]
    return float(above[-1]) if len(above) else ABOVE_EVERY_SCORE


def savings_bands(labels: Any, scores: Any, amounts: Any, costs: CostModel) -> Bands:
    """The review and block thresholds with the largest savings on these (validation) rows whose flagged
    rows (reviews and blocks) fit the alert budget; ties go to fewer alerts. Candidates are the scores
    themselves from the budget's cut up (thinned to ``MAX_CANDIDATES`` quantiles), so every achievable
    split of the rows is considered up to that grid."""
    y, s, a = _inputs(labels, scores, amounts)
    order = np.argsort(-s, kind="stable")
    sorted_scores = s[order]
    fraud_amount = np.concatenate([[0.0], np.cumsum(np.where(y[order], a[order], 0.0))])
    legitimate = np.concatenate([[0], np.cumsum(~y[order])])
    # Thresholds at distinct scores: flagging "score >= t" flags the first k rows of the sorted order.
    # Under a budget only scores from its cut up can be thresholds: the grid is spent there (400 quantiles
    # of all scores left 4 candidates in the top 1%, and bands that saved 14% less than a coarse grid's).
    pool = s if costs.alert_budget_per_1000 is None else s[s >= budget_cut(s, costs.alert_budget_per_1000)]
    distinct = np.unique(pool)[::-1]
    if len(distinct) > MAX_CANDIDATES:
        distinct = np.unique(np.quantile(pool, np.linspace(0.0, 1.0, MAX_CANDIDATES)))[::-1]
    thresholds = np.concatenate([[NEVER], distinct])
    flagged_rows = np.searchsorted(-sorted_scores, -thresholds, side="right")  # rows with score >= t
    k_review = flagged_rows[:, None]
    k_block = flagged_rows[None, :]
    valid = k_block <= k_review  # block_at >= review_at
    reviews = k_review - k_block
    savings = fraud_amount[k_review] - costs.review_cost * reviews - costs.friction_cost * legitimate[k_block]
    if costs.alert_budget_per_1000 is not None:
        # Every flagged row (k_review counts reviews and blocks) is in the budget: bounding reviews alone,
        # the optimiser blocked 45.77 per 1,000 under a budget of 1 review (docs/model-quality.md).
        valid &= 1000.0 * np.broadcast_to(k_review, reviews.shape) / len(y) <= costs.alert_budget_per_1000 + 1e-9
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
