from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.metrics import average_precision_score

from fraudops.model.metrics import EvaluationMetrics, GainInterval, paired_bootstrap_auprc_gain
from fraudops.production.promotion import PromotionRules, decide

RULES = PromotionRules(margin=0.002, floor=0.5, guardrail_tolerance=0.02, confidence=0.95, resamples=200, seed=0)
BASE = EvaluationMetrics(
    auprc=0.80, roc_auc=0.99, recall_at_1pct_fpr=0.90, precision=0.8, recall=0.7, f1=0.75, threshold=0.9,
    true_positives=70, false_positives=17, true_negatives=9900, false_negatives=30, rows=10017, positives=100,
)  # fmt: skip


def gain(candidate: EvaluationMetrics, production: EvaluationMetrics, half_width: float = 0.0) -> GainInterval:
    point = candidate.auprc - production.auprc
    return GainInterval(point, point - half_width, point + half_width, 0.95, 200)


def judge(candidate: EvaluationMetrics, production: EvaluationMetrics, half_width: float = 0.0) -> tuple[bool, str]:
    return decide(candidate, production, RULES, gain(candidate, production, half_width))


def test_first_model_needs_the_floor() -> None:
    assert decide(BASE, None, RULES)[0] is True
    promote, reason = decide(replace(BASE, auprc=0.4), None, RULES)
    assert promote is False and "floor" in reason


def test_better_by_margin_is_promoted() -> None:
    promote, reason = judge(replace(BASE, auprc=0.81), BASE)
    assert promote is True and "beats" in reason


def test_equal_is_kept() -> None:
    promote, reason = judge(BASE, BASE)
    assert promote is False and "margin" in reason


def test_better_but_within_margin_is_kept() -> None:
    assert judge(replace(BASE, auprc=0.801), BASE)[0] is False


def test_worse_is_kept() -> None:
    assert judge(replace(BASE, auprc=0.7), BASE)[0] is False


def test_a_gain_that_could_be_luck_is_kept() -> None:
    """Seed-to-seed noise: +0.03 AUPRC whose interval reaches below the margin is not promoted."""
    candidate = replace(BASE, auprc=0.83)
    promote, reason = judge(candidate, BASE, half_width=0.05)
    assert promote is False and "lower bound" in reason
    assert judge(candidate, BASE, half_width=0.01)[0] is True


def test_guardrail_regression_blocks_promotion() -> None:
    candidate = replace(BASE, auprc=0.85, recall_at_1pct_fpr=0.85)
    promote, reason = judge(candidate, BASE)
    assert promote is False and "recall_at_1pct_fpr" in reason
    assert judge(replace(candidate, recall_at_1pct_fpr=0.89), BASE)[0] is True
    assert judge(replace(BASE, auprc=0.85, roc_auc=0.96), BASE)[0] is False


def scores(seed: int, n: int = 20_000, skill: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.01).astype(np.int8)
    good = np.round(rng.random(n) * 0.5 + y * rng.random(n) * skill, 3)  # rounded: ties, as a booster has
    weak = np.round(rng.random(n) * 0.5 + y * rng.random(n) * skill * 0.5, 3)
    return y, good, weak


def test_bootstrap_point_is_sklearns_auprc_difference_and_deterministic() -> None:
    y, good, weak = scores(1)
    interval = paired_bootstrap_auprc_gain(y, good, weak, seed=3)
    expected = average_precision_score(y, good) - average_precision_score(y, weak)
    assert abs(interval.gain - expected) < 1e-12
    assert interval.lower < interval.gain < interval.upper
    assert interval == paired_bootstrap_auprc_gain(y, good, weak, seed=3)
    assert interval != paired_bootstrap_auprc_gain(y, good, weak, seed=4)


def test_bootstrap_separates_a_real_gain_from_none() -> None:
    y, good, weak = scores(2)
    assert paired_bootstrap_auprc_gain(y, good, weak).lower > 0.05
    same = paired_bootstrap_auprc_gain(y, good, good)
    assert same.gain == 0 and same.lower == 0 == same.upper  # paired: a model against itself has no spread
    rng = np.random.default_rng(9)
    twin = np.round(rng.random(len(y)) * 0.5 + y * rng.random(len(y)) * 0.6, 3)  # as skilled, other draws
    interval = paired_bootstrap_auprc_gain(y, twin, good)
    assert interval.lower < 0 < interval.upper
