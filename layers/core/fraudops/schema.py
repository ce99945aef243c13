"""The PaySim transaction schema, shared by the generator, the importer, training and the API."""

from __future__ import annotations

from typing import Final

TABLE: Final = "transactions"

COLUMNS: Final = (
    "step",
    "type",
    "amount",
    "nameOrig",
    "oldbalanceOrg",
    "newbalanceOrig",
    "nameDest",
    "oldbalanceDest",
    "newbalanceDest",
    "isFraud",
    "isFlaggedFraud",
)

TRANSACTION_TYPES: Final = ("CASH_IN", "CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER")

# Columns a model may see at decision time (labels and account names are not inputs).
RAW_FEATURE_COLUMNS: Final = (
    "step",
    "type",
    "amount",
    "oldbalanceOrg",
    "newbalanceOrig",
    "oldbalanceDest",
    "newbalanceDest",
)

LABEL: Final = "isFraud"

CREATE_TABLE_SQL: Final = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    step INTEGER NOT NULL CHECK (step >= 0),
    type TEXT NOT NULL CHECK (type IN ('CASH_IN', 'CASH_OUT', 'DEBIT', 'PAYMENT', 'TRANSFER')),
    amount REAL NOT NULL CHECK (amount >= 0),
    nameOrig TEXT NOT NULL,
    oldbalanceOrg REAL NOT NULL,
    newbalanceOrig REAL NOT NULL,
    nameDest TEXT NOT NULL,
    oldbalanceDest REAL NOT NULL,
    newbalanceDest REAL NOT NULL,
    isFraud INTEGER NOT NULL CHECK (isFraud IN (0, 1)),
    isFlaggedFraud INTEGER NOT NULL CHECK (isFlaggedFraud IN (0, 1))
)
"""

CREATE_INDEX_SQL: Final = f"CREATE INDEX IF NOT EXISTS idx_{TABLE}_step ON {TABLE} (step)"
