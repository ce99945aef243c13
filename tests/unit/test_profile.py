"""Issue 9: PSI and reference profiles on known distributions."""

from __future__ import annotations

import numpy as np
import pytest

from fraudops.monitoring.profile import (
    ACT,
    WATCH,
    bin_edges,
    build_profile,
    category_shares,
    compare,
    level,
    psi,
    shares,
)


def test_psi_of_identical_distributions_is_zero_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 50_000)
    edges = bin_edges(reference)
    assert len(edges) == 9
    base = shares(reference, edges)
    assert sum(base) == pytest.approx(1.0) and all(abs(s - 0.1) < 0.01 for s in base)
    same = psi(base, shares(rng.normal(0, 1, 50_000), edges))
    small = psi(base, shares(rng.normal(0.2, 1, 50_000), edges))
    large = psi(base, shares(rng.normal(1.0, 1, 50_000), edges))
    assert same < 0.01 < small < WATCH < ACT < large
    # A known value: all of the reference's mass in one of two bins against an even split.
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(1.8) - 0.4 * np.log(0.2), rel=1e-3)


def test_point_masses_stay_in_one_bin() -> None:
    values = np.r_[np.zeros(7_000), np.linspace(1, 100, 3_000)]
    edges = bin_edges(values)
    assert edges[0] > 0 and edges[0] < 1e-9  # just above zero: every zero lands in the first bin
    assert shares(np.zeros(10), edges)[0] == 1.0
    nudged = np.float32(0.123456)
    assert shares([float(nudged)], bin_edges(np.full(100, nudged, dtype=np.float64)))[0] == 1.0


def test_levels_and_categories() -> None:
    assert [level(0.05), level(0.1), level(0.24), level(0.25)] == ["stable", "watch", "watch", "act"]
    assert category_shares(["TRANSFER", "TRANSFER", "PAYMENT", "CASH_OUT"]) == {
        "CASH_IN": 0.0, "CASH_OUT": 0.25, "DEBIT": 0.0, "PAYMENT": 0.25, "TRANSFER": 0.5,
    }  # fmt: skip
    assert psi([0.25, 0.75], [0.0, 1.0]) > ACT  # an empty bin counts (smoothed), no division by zero


def test_profile_then_compare_flags_only_what_moved() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    train = np.column_stack([rng.lognormal(10, 1, n), rng.integers(0, 2, n)])
    types = rng.choice(["PAYMENT", "TRANSFER"], n, p=[0.8, 0.2])
    scores = rng.beta(0.5, 20, n)
    profile = build_profile(train, ["amount", "flag"], types, scores, threshold=0.2)
    assert profile["expected_flagged_rate"] == pytest.approx(float(np.mean(scores >= 0.2)))
    stable = compare(profile, train[:5000], ["amount", "flag"], types[:5000], scores[:5000])
    assert stable["drifted"] == [] and stable["score"]["level"] == "stable"
    moved = np.column_stack([train[:5000, 0] * 3, train[:5000, 1]])
    shifted_types = rng.choice(["PAYMENT", "TRANSFER"], 5000, p=[0.3, 0.7])
    drifted = compare(profile, moved, ["amount", "flag"], shifted_types, scores[:5000])
    assert drifted["drifted"] == ["amount", "type"]
    assert drifted["features"]["flag"]["level"] == "stable"
