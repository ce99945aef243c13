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

# Value rules shared by the API's request model and the CSV importer: a row the API would refuse is
# not training data either.
MONEY_COLUMNS: Final = ("amount", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest")
MAX_MONEY: Final = 1e12  # PaySim's largest balance is ~3.6e8; anything near float32's range is an input error
MAX_STEP: Final = 1_000_000
MAX_NAME_LENGTH: Final = 64

LABEL_COLUMNS: Final = ("isFraud", "isFlaggedFraud")


def parse_integer(raw: str) -> int | None:
    """An integer cell; PaySim exports sometimes write integers as '1.0'. None when it is not one."""
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def parse_flag(column: str, raw: str) -> int:
    """A 0/1 label column (isFraud, isFlaggedFraud) as the importer and batch scoring both read it."""
    number = parse_integer(raw.strip())
    if number is None:
        raise ValueError(f"{column}: {raw!r} is not an integer")
    if number not in (0, 1):
        raise ValueError(f"{column}: {raw!r} is not 0 or 1")
    return number


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
