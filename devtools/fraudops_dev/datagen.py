"""A PaySim-like transaction generator whose marginals follow the published dataset.

The figures it aims at (type mix, fraud rate, fraud only in TRANSFER/CASH_OUT, 743 hourly steps, the
isFlaggedFraud rule, merchant destinations with zero balances) are in docs/data.md. Everything is
vectorised numpy so the full 6.36M rows generate in seconds; the output is deterministic per seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from fraudops.core.schema import COLUMNS, TRANSACTION_TYPES

PAYSIM_ROWS: Final = 6_362_620
N_STEPS: Final = 743
FRAUD_RATE: Final = 8_213 / PAYSIM_ROWS  # 0.129 %
FLAG_THRESHOLD: Final = 200_000.0
MAX_FRAUD_TRANSFER: Final = 10_000_000.0  # PaySim fraudsters split larger balances

# Share of rows per type in the published sample (sums to 1).
TYPE_SHARES: Final = {
    "CASH_IN": 1_399_284 / PAYSIM_ROWS,
    "CASH_OUT": 2_237_500 / PAYSIM_ROWS,
    "DEBIT": 41_432 / PAYSIM_ROWS,
    "PAYMENT": 2_151_495 / PAYSIM_ROWS,
    "TRANSFER": 532_909 / PAYSIM_ROWS,
}

# (median, sigma) of a lognormal per type, fitted to the published medians and means.
AMOUNT_LOGNORMAL: Final = {
    "CASH_IN": (143_000.0, 0.85),
    "CASH_OUT": (147_000.0, 0.85),
    "DEBIT": (3_000.0, 1.1),
    "PAYMENT": (9_500.0, 0.8),
    "TRANSFER": (486_000.0, 1.1),
}

# Relative activity per hour of day: quiet nights, busy days (PaySim's daily cycle).
HOUR_WEIGHTS: Final = np.array(
    [0.10, 0.04, 0.02, 0.01, 0.01, 0.02, 0.05, 0.2, 0.5, 0.8, 1.0, 1.0,
     1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 0.6, 0.4, 0.2]
)  # fmt: skip

# Share of fraud TRANSFERs above FLAG_THRESHOLD that the platform's rule halts (16 of 4,097 in PaySim).
FLAG_PROBABILITY: Final = 0.0065

_TYPE_CODES: Final = {name: code for code, name in enumerate(TRANSACTION_TYPES)}

# Documented drift scenarios (docs/monitoring.md):
# - "evasive-takeover": fraudsters adapt. The takeover TRANSFER leaves 10-40% of the victim's balance
#   behind (the origin is no longer emptied) and mules' balances are updated, while legitimate
#   TRANSFERs grow 4x and become six times as common (a new payout product, say). The trained model leans on exactly the
#   signals that vanish, so its recall falls; the amounts and the mix shift, so drift shows.
DRIFT_SCENARIOS: Final = ("none", "evasive-takeover")


@dataclass(frozen=True)
class GeneratorConfig:
    n_rows: int
    seed: int = 42
    fraud_rate: float = FRAUD_RATE
    drift: str = "none"  # one of DRIFT_SCENARIOS
    step_offset: int = 0  # shift every step (traffic that comes after the training month)

    def __post_init__(self) -> None:
        if self.n_rows < 1:
            raise ValueError("n_rows must be at least 1")
        if not 0 <= self.fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        if self.drift not in DRIFT_SCENARIOS:
            raise ValueError(f"drift must be one of {', '.join(DRIFT_SCENARIOS)}")


def step_weights() -> np.ndarray:
    """Probability of each step 1..743: the daily cycle, busier in the first 400 hours as in PaySim."""
    steps = np.arange(1, N_STEPS + 1)
    weights = HOUR_WEIGHTS[steps % 24] * np.where(steps <= 400, 1.0, 0.35)
    return np.asarray(weights / weights.sum())


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return np.round(rng.lognormal(np.log(median), sigma, size), 2)


def generate_arrays(config: GeneratorConfig) -> dict[str, np.ndarray]:
    """All columns as numpy arrays (names as integer ids), sorted by step. Pure: same seed, same data."""
    rng = np.random.default_rng(config.seed)
    n = config.n_rows

    steps = rng.choice(np.arange(1, N_STEPS + 1), size=n, p=step_weights())
    if n >= N_STEPS:  # every hour of the month appears, as in the published sample
        steps[:N_STEPS] = np.arange(1, N_STEPS + 1)
    type_probs = np.array([TYPE_SHARES[t] for t in TRANSACTION_TYPES])
    if config.drift == "evasive-takeover":
        type_probs[_TYPE_CODES["TRANSFER"]] *= 6.0
    types = rng.choice(len(TRANSACTION_TYPES), size=n, p=type_probs / type_probs.sum()).astype(np.int8)

    amount = np.empty(n)
    for name, code in _TYPE_CODES.items():
        mask = types == code
        median, sigma = AMOUNT_LOGNORMAL[name]
        if config.drift == "evasive-takeover" and name == "TRANSFER":
            median *= 4.0
        amount[mask] = _lognormal(rng, median, sigma, int(mask.sum()))

    is_cash_in = types == _TYPE_CODES["CASH_IN"]
    is_payment = types == _TYPE_CODES["PAYMENT"]

    # Origin balances: PaySim lets many accounts transact from a zero balance.
    old_orig = np.where(rng.random(n) < 0.33, 0.0, _lognormal(rng, 60_000.0, 1.6, n))
    # A few legitimate customers also empty their account (hard negatives for the model).
    empties = (~is_cash_in) & (rng.random(n) < 0.002)
    old_orig = np.where(empties, amount, old_orig)
    new_orig = np.where(is_cash_in, old_orig + amount, np.maximum(old_orig - amount, 0.0))

    # Destinations: merchants (M..., all PAYMENTs) carry zero balances. Customer accounts start at zero
    # a third of the time; their balance is sometimes not updated (PaySim's stale balances), but both
    # balances staying at zero is rare for legitimate money movements (0.06% in the published sample).
    old_dest = np.where(is_payment | (rng.random(n) < 0.35), 0.0, _lognormal(rng, 500_000.0, 1.5, n))
    new_dest = np.where(is_cash_in, np.maximum(old_dest - amount, 0.0), old_dest + amount)
    not_updated = (~is_payment) & (old_dest > 0) & (rng.random(n) < 0.08)
    both_zero = (~is_payment) & (rng.random(n) < 0.0006)
    new_dest = np.where(is_payment | not_updated, old_dest, new_dest)
    old_dest = np.where(both_zero, 0.0, old_dest)
    new_dest = np.where(both_zero, 0.0, new_dest)

    name_orig = rng.integers(1_000_000_000, 2_000_000_000, size=n)
    name_dest = rng.integers(1_000_000_000, 2_000_000_000, size=n)
    is_fraud = np.zeros(n, dtype=np.int8)
    is_flagged = np.zeros(n, dtype=np.int8)

    _inject_account_takeovers(
        rng, config, steps, types, amount, old_orig, new_orig, old_dest, new_dest,
        name_orig, name_dest, is_fraud, is_flagged,
    )  # fmt: skip

    order = np.argsort(steps, kind="stable")
    return {
        "step": (steps[order] + config.step_offset).astype(np.int32),
        "type": types[order],
        "amount": amount[order],
        "nameOrig": name_orig[order],
        "oldbalanceOrg": np.round(old_orig[order], 2),
        "newbalanceOrig": np.round(new_orig[order], 2),
        "nameDest": name_dest[order],
        "destIsMerchant": is_payment[order],
        "oldbalanceDest": np.round(old_dest[order], 2),
        "newbalanceDest": np.round(new_dest[order], 2),
        "isFraud": is_fraud[order],
        "isFlaggedFraud": is_flagged[order],
    }


def _inject_account_takeovers(
    rng: np.random.Generator,
    config: GeneratorConfig,
    steps: np.ndarray,
    types: np.ndarray,
    amount: np.ndarray,
    old_orig: np.ndarray,
    new_orig: np.ndarray,
    old_dest: np.ndarray,
    new_dest: np.ndarray,
    name_orig: np.ndarray,
    name_dest: np.ndarray,
    is_fraud: np.ndarray,
    is_flagged: np.ndarray,
) -> None:
    """Turn pairs of rows into PaySim's fraud pattern: a TRANSFER empties the victim into a mule's
    account, and the mule cashes the same amount out in the same hour. Fraud ignores the daily cycle."""
    transfers = np.flatnonzero(types == _TYPE_CODES["TRANSFER"])
    cash_outs = np.flatnonzero(types == _TYPE_CODES["CASH_OUT"])
    n_pairs = min(round(config.n_rows * config.fraud_rate / 2), len(transfers), len(cash_outs))
    if n_pairs == 0:
        return
    transfer_rows = rng.choice(transfers, size=n_pairs, replace=False)
    cash_out_rows = rng.choice(cash_outs, size=n_pairs, replace=False)
    takeover_steps = rng.integers(1, N_STEPS + 1, size=n_pairs)

    victim_balance = _lognormal(rng, 250_000.0, 1.4, n_pairs) + 100.0
    stolen = np.minimum(victim_balance, MAX_FRAUD_TRANSFER)
    mule_zero_share = 0.6  # PaySim: mules' balances often stay at zero
    if config.drift == "evasive-takeover":
        stolen = np.round(stolen * rng.uniform(0.6, 0.9, n_pairs), 2)  # leave some behind
        mule_zero_share = 0.05
    mule_dest_zero = rng.random(n_pairs) < mule_zero_share
    mule_old = np.where(mule_dest_zero, 0.0, _lognormal(rng, 100_000.0, 1.5, n_pairs))
    mule_new = np.where(mule_dest_zero, 0.0, mule_old + stolen)
    flagged = (stolen > FLAG_THRESHOLD) & (rng.random(n_pairs) < FLAG_PROBABILITY)

    steps[transfer_rows] = takeover_steps
    amount[transfer_rows] = stolen
    old_orig[transfer_rows] = victim_balance
    # A halted (flagged) transfer moves nothing: balances stay as they were.
    new_orig[transfer_rows] = np.where(flagged, victim_balance, victim_balance - stolen)
    old_dest[transfer_rows] = mule_old
    new_dest[transfer_rows] = np.where(flagged, mule_old, mule_new)
    is_fraud[transfer_rows] = 1
    is_flagged[transfer_rows] = flagged.astype(np.int8)

    mule_ids = name_dest[transfer_rows]
    mule_had_balance = rng.random(n_pairs) < 0.8
    agent_old = np.where(rng.random(n_pairs) < 0.3, 0.0, _lognormal(rng, 300_000.0, 1.5, n_pairs))
    steps[cash_out_rows] = takeover_steps
    amount[cash_out_rows] = stolen
    name_orig[cash_out_rows] = mule_ids
    old_orig[cash_out_rows] = np.where(mule_had_balance, stolen, 0.0)
    new_orig[cash_out_rows] = 0.0
    old_dest[cash_out_rows] = agent_old
    new_dest[cash_out_rows] = agent_old + stolen
    is_fraud[cash_out_rows] = 1


def to_frame(arrays: dict[str, np.ndarray], start: int = 0, stop: int | None = None) -> pd.DataFrame:
    """Rows [start, stop) in the PaySim schema, with names as PaySim strings (C.../M...)."""
    part = slice(start, stop)
    dest_prefix = np.where(arrays["destIsMerchant"][part], "M", "C")
    return pd.DataFrame(
        {
            "step": arrays["step"][part],
            "type": np.asarray(TRANSACTION_TYPES, dtype=object)[arrays["type"][part]],
            "amount": arrays["amount"][part],
            "nameOrig": "C" + pd.Series(arrays["nameOrig"][part]).astype(str),
            "oldbalanceOrg": arrays["oldbalanceOrg"][part],
            "newbalanceOrig": arrays["newbalanceOrig"][part],
            "nameDest": pd.Series(dest_prefix) + pd.Series(arrays["nameDest"][part]).astype(str),
            "oldbalanceDest": arrays["oldbalanceDest"][part],
            "newbalanceDest": arrays["newbalanceDest"][part],
            "isFraud": arrays["isFraud"][part],
            "isFlaggedFraud": arrays["isFlaggedFraud"][part],
        },
        columns=list(COLUMNS),
    )


def generate_frames(config: GeneratorConfig, chunk_rows: int = 500_000) -> Iterator[pd.DataFrame]:
    """The generated table in chunks, so writing the full size never holds 12M name strings at once."""
    arrays = generate_arrays(config)
    for start in range(0, config.n_rows, chunk_rows):
        yield to_frame(arrays, start, min(start + chunk_rows, config.n_rows))


def generate(config: GeneratorConfig) -> pd.DataFrame:
    return to_frame(generate_arrays(config))
