"""Thresholds by money: the cost model, bands that maximise savings under an alert budget, and the
promotion guardrail that keeps a candidate catching less money."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.decisions.money import CostModel, choose_bands, f1_bands, money_metrics
from fraudops.decisions.policy import Bands
from fraudops.promotion import decide
from tests.unit.test_promotion_rules import BASE, RULES, gain

COSTS = CostModel(review_cost=5.0, friction_cost=25.0)


def test_money_metrics_follow_the_documented_cost_model() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.95, 0.6, 0.97, 0.55, 0.1, 0.2])
    amounts = np.array([1000.0, 300.0, 50.0, 20.0, 700.0, 10.0])
    money = money_metrics(labels, scores, amounts, Bands(0.5, 0.9), COSTS)
    # blocked: rows 0 (fraud) and 2 (legitimate); reviewed: rows 1 (fraud) and 3 (legitimate); missed: row 4
    assert (money.blocks, money.reviews, money.legitimate_blocked) == (2, 2, 1)
    assert money.fraud_amount_total == 2000.0 and money.fraud_amount_caught == 1300.0
    assert money.amount_recall == pytest.approx(0.65)
    assert money.savings == pytest.approx(1300.0 - 2 * 5.0 - 1 * 25.0)
    assert money.cost == pytest.approx(700.0 + 2 * 5.0 + 25.0)
    assert money.alerts_per_1000 == pytest.approx(1000 * 2 / 6)
    assert money.flagged_per_1000 == pytest.approx(1000 * 4 / 6)


def _brute_force(labels: np.ndarray, scores: np.ndarray, amounts: np.ndarray, costs: CostModel) -> float:
    thresholds = [*sorted(set(scores.tolist())), None]
    best = -np.inf
    for review in thresholds:
        for block in thresholds:
            r = 2.0 if review is None else review
            if block is not None and block < r:
                continue
            money = money_metrics(labels, scores, amounts, Bands(min(r, 2.0), block), costs)
            if costs.alert_budget_per_1000 is not None and money.alerts_per_1000 > costs.alert_budget_per_1000 + 1e-9:
                continue
            best = max(best, money.savings)
    return float(best)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 20).map(lambda v: v / 20), st.integers(1, 5000).map(float)),
        min_size=3,
        max_size=40,
    ),
    st.floats(0, 50),
    st.floats(0, 500),
    st.one_of(st.none(), st.integers(50, 800).map(float)),
)
def test_chosen_bands_save_the_most_money_within_the_budget(
    rows: list[tuple[bool, float, float]], review_cost: float, friction_cost: float, budget: float | None
) -> None:
    labels = np.array([r[0] for r in rows])
    scores = np.array([r[1] for r in rows])
    amounts = np.array([r[2] for r in rows])
    costs = CostModel(review_cost, friction_cost, budget)
    bands = choose_bands(labels, scores, amounts, costs)
    money = money_metrics(labels, scores, amounts, bands, costs)
    if budget is not None:
        assert money.alerts_per_1000 <= budget + 1e-9
    assert money.savings == pytest.approx(_brute_force(labels, scores, amounts, costs), abs=1e-6)
    assert bands.block_at is None or bands.block_at >= bands.review_at


def test_bands_by_money_beat_the_f1_threshold_on_large_frauds() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(20_000) < 0.01
    scores = np.clip(np.where(labels, rng.beta(4, 2, 20_000), rng.beta(1, 12, 20_000)), 0, 1)
    amounts = np.where(labels, rng.lognormal(12, 1, 20_000), rng.lognormal(8, 1, 20_000))
    bands = choose_bands(labels, scores, amounts, COSTS)
    chosen = money_metrics(labels, scores, amounts, bands, COSTS)
    f1 = money_metrics(labels, scores, amounts, f1_bands(0.6), COSTS)
    assert chosen.savings > f1.savings
    assert chosen.amount_recall > f1.amount_recall


def test_a_candidate_that_catches_less_money_is_kept_despite_a_better_auprc() -> None:
    candidate, production = replace(BASE, auprc=0.85), BASE
    more = money_metrics(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1]), np.array([100.0, 50.0, 5.0]),
                         Bands(0.5), COSTS)  # fmt: skip
    less = money_metrics(np.array([1, 1, 0]), np.array([0.9, 0.3, 0.1]), np.array([100.0, 50.0, 5.0]),
                         Bands(0.5), COSTS)  # fmt: skip
    promote, reason = decide(candidate, production, RULES, gain(candidate, production), (less, more))
    assert promote is False and reason.startswith("money guardrail") and "100 of fraud" in reason
    assert decide(candidate, production, RULES, gain(candidate, production), (more, less))[0] is True
    assert decide(candidate, production, RULES, gain(candidate, production), (more, more))[0] is True


def test_when_nothing_is_worth_flagging_nothing_is_reviewed_even_a_score_of_one() -> None:
    """Hypothesis found it in CI: the fallback band was 1.0, so a legitimate row scored exactly 1.0 was
    reviewed (333 alerts per 1,000 against a budget of 50, and a cost where approving everything saves 0)."""
    labels, scores, amounts = [0, 0, 0], [1.0, 0.5, 0.2], [10.0, 10.0, 10.0]
    costs = CostModel(review_cost=1.0, friction_cost=1.0, alert_budget_per_1000=50.0)
    bands = choose_bands(labels, scores, amounts, costs)
    money = money_metrics(labels, scores, amounts, bands, costs)
    assert (money.reviews, money.blocks, money.savings) == (0, 0, 0.0)
