"""Captured decisions with their late labels, as PaySim rows: how retraining learns from live traffic.

``labeled_rows`` joins a window's captured transactions with the labels that have arrived and returns
them in the PaySim schema (isFraud from the label). Appended to the training table (``fraudops
append-labeled``), they are the newest steps, so the out-of-time split puts the most recent of them
in the holdout and trains only on what came before: no row from the holdout's future is ever trained
on, and promotion judges candidates on the most recent labeled traffic.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from fraudops.core.config import Settings
from fraudops.core.schema import COLUMNS
from fraudops.monitoring.capture import read_captures
from fraudops.monitoring.labels import read_labels


def labeled_rows(settings: Settings, since: datetime, until: datetime) -> pd.DataFrame:
    labels = read_labels(settings)
    rows = []
    seen: set[str] = set()
    for record in read_captures(settings, since, until):
        transaction_id = record.get("transaction_id")
        if transaction_id not in labels or transaction_id in seen:
            continue  # unlabeled, or the same transaction scored twice: learn from it once
        seen.add(transaction_id)
        transaction = record["transaction"]
        rows.append({
            **{column: transaction.get(column) for column in COLUMNS},
            "nameOrig": transaction.get("nameOrig") or f"C{transaction_id}",
            "nameDest": transaction.get("nameDest") or "C0",
            "isFraud": int(labels[transaction_id]),
            "isFlaggedFraud": 0,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values("step", kind="stable")
