"""The generator against the published PaySim figures (shared/paysim-reference.md, docs/data.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fraudops_dev.datagen import (
    FLAG_THRESHOLD,
    FRAUD_RATE,
    N_STEPS,
    TYPE_SHARES,
    GeneratorConfig,
    generate,
)

from fraudops.core.schema import COLUMNS


@pytest.fixture(scope="module")
def paysim() -> pd.DataFrame:
    return generate(GeneratorConfig(400_000, seed=11))


def test_schema_and_order(paysim: pd.DataFrame) -> None:
    assert tuple(paysim.columns) == COLUMNS
    assert paysim["step"].is_monotonic_increasing
    assert len(paysim) == 400_000


def test_743_hourly_steps(paysim: pd.DataFrame) -> None:
    assert paysim["step"].min() == 1
    assert paysim["step"].max() == N_STEPS
    assert paysim["step"].nunique() == N_STEPS


def test_type_mix_matches_paysim(paysim: pd.DataFrame) -> None:
    shares = paysim["type"].value_counts(normalize=True)
    for name, expected in TYPE_SHARES.items():
        assert shares[name] == pytest.approx(expected, abs=0.004), name


def test_fraud_rate_and_types(paysim: pd.DataFrame) -> None:
    assert paysim["isFraud"].mean() == pytest.approx(FRAUD_RATE, rel=0.1)
    fraud_types = set(paysim.loc[paysim["isFraud"] == 1, "type"])
    assert fraud_types == {"TRANSFER", "CASH_OUT"}
    by_type = paysim[paysim["isFraud"] == 1]["type"].value_counts()
    assert by_type["TRANSFER"] == by_type["CASH_OUT"]  # one transfer and one cash-out per takeover


def test_takeover_pattern(paysim: pd.DataFrame) -> None:
    """A TRANSFER empties the victim into a mule, who cashes the same amount out in the same hour."""
    fraud = paysim[paysim["isFraud"] == 1]
    transfers = fraud[fraud["type"] == "TRANSFER"]
    cash_outs = fraud[fraud["type"] == "CASH_OUT"]
    merged = transfers.merge(cash_outs, left_on="nameDest", right_on="nameOrig", suffixes=("_t", "_c"))
    assert len(merged) == len(transfers)
    assert (merged["step_t"] == merged["step_c"]).all()
    assert np.allclose(merged["amount_t"], merged["amount_c"])
    unflagged = transfers[transfers["isFlaggedFraud"] == 0]
    assert (unflagged["newbalanceOrig"] <= unflagged["oldbalanceOrg"] - unflagged["amount"] + 0.01).all()
    assert (unflagged["amount"] <= 10_000_000).all()


def test_merchants_carry_zero_balances(paysim: pd.DataFrame) -> None:
    merchants = paysim[paysim["nameDest"].str.startswith("M")]
    assert (merchants["type"] == "PAYMENT").all()
    assert (merchants[["oldbalanceDest", "newbalanceDest"]] == 0).all().all()
    assert paysim["nameOrig"].str.startswith("C").all()


def test_balances_consistent_with_amounts(paysim: pd.DataFrame) -> None:
    legit = paysim[paysim["isFraud"] == 0]
    cash_in = legit[legit["type"] == "CASH_IN"]
    assert np.allclose(cash_in["newbalanceOrig"], cash_in["oldbalanceOrg"] + cash_in["amount"], atol=0.02)
    debits = legit[legit["type"] != "CASH_IN"]
    expected = np.maximum(debits["oldbalanceOrg"] - debits["amount"], 0)
    assert np.allclose(debits["newbalanceOrig"], expected, atol=0.02)
    assert (paysim["amount"] > 0).all()
    numeric = paysim[["amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest"]]
    assert (numeric >= 0).all().all()


def test_amounts_are_heavy_tailed(paysim: pd.DataFrame) -> None:
    transfers = paysim.loc[paysim["type"] == "TRANSFER", "amount"]
    assert transfers.mean() > 1.5 * transfers.median()  # PaySim: mean 910k vs median 486k
    assert transfers.quantile(0.999) > 10 * transfers.median()
    payments = paysim.loc[paysim["type"] == "PAYMENT", "amount"]
    assert payments.median() == pytest.approx(9_500, rel=0.1)


def test_daily_cycle(paysim: pd.DataFrame) -> None:
    hours = (paysim["step"] % 24).value_counts()
    assert hours[12] > 10 * hours[4]  # busy afternoons, quiet nights
    fraud_hours = (paysim.loc[paysim["isFraud"] == 1, "step"] % 24).value_counts()
    # Fraud ignores the cycle, so its share is far higher at night (a signal PaySim is known for).
    night_rate = fraud_hours.reindex(range(0, 6), fill_value=0).sum() / hours.reindex(range(0, 6)).sum()
    day_rate = fraud_hours.reindex(range(10, 18), fill_value=0).sum() / hours.reindex(range(10, 18)).sum()
    assert night_rate > 5 * day_rate


def test_flagged_fraud_rule() -> None:
    frame = generate(GeneratorConfig(200_000, seed=5, fraud_rate=0.2))
    flagged = frame[frame["isFlaggedFraud"] == 1]
    assert len(flagged) > 0
    assert (flagged["type"] == "TRANSFER").all()
    assert (flagged["amount"] > FLAG_THRESHOLD).all()
    assert (flagged["isFraud"] == 1).all()
    # A halted transfer moves nothing.
    assert np.allclose(flagged["newbalanceOrig"], flagged["oldbalanceOrg"])
    big_fraud_transfers = frame[
        (frame["isFraud"] == 1) & (frame["type"] == "TRANSFER") & (frame["amount"] > FLAG_THRESHOLD)
    ]
    assert len(flagged) / len(big_fraud_transfers) < 0.02  # rare, as in PaySim (16 rows)


def test_deterministic_per_seed() -> None:
    first = generate(GeneratorConfig(5_000, seed=3))
    again = generate(GeneratorConfig(5_000, seed=3))
    other = generate(GeneratorConfig(5_000, seed=4))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_small_sizes_and_bad_config() -> None:
    assert len(generate(GeneratorConfig(10))) == 10
    with pytest.raises(ValueError):
        GeneratorConfig(0)
    with pytest.raises(ValueError):
        GeneratorConfig(10, fraud_rate=0.9)
