from __future__ import annotations

from dataclasses import replace

from fraudops.metrics import EvaluationMetrics
from fraudops.promotion import PromotionRules, decide

RULES = PromotionRules(margin=0.002, floor=0.5, guardrail_tolerance=0.02)
BASE = EvaluationMetrics(
    auprc=0.80, roc_auc=0.99, recall_at_1pct_fpr=0.90, precision=0.8, recall=0.7, f1=0.75, threshold=0.9,
    true_positives=70, false_positives=17, true_negatives=9900, false_negatives=30, rows=10017, positives=100,
)  # fmt: skip


def test_first_model_needs_the_floor() -> None:
    assert decide(BASE, None, RULES)[0] is True
    promote, reason = decide(replace(BASE, auprc=0.4), None, RULES)
    assert promote is False and "floor" in reason


def test_better_by_margin_is_promoted() -> None:
    promote, reason = decide(replace(BASE, auprc=0.81), BASE, RULES)
    assert promote is True and "beats" in reason


def test_equal_is_kept() -> None:
    promote, reason = decide(BASE, BASE, RULES)
    assert promote is False and "margin" in reason


def test_better_but_within_margin_is_kept() -> None:
    assert decide(replace(BASE, auprc=0.801), BASE, RULES)[0] is False


def test_worse_is_kept() -> None:
    assert decide(replace(BASE, auprc=0.7), BASE, RULES)[0] is False


def test_guardrail_regression_blocks_promotion() -> None:
    candidate = replace(BASE, auprc=0.85, recall_at_1pct_fpr=0.85)
    promote, reason = decide(candidate, BASE, RULES)
    assert promote is False and "recall_at_1pct_fpr" in reason
    assert decide(replace(candidate, recall_at_1pct_fpr=0.89), BASE, RULES)[0] is True
    assert decide(replace(BASE, auprc=0.85, roc_auc=0.96), BASE, RULES)[0] is False
