"""Reasons: which features pushed one transaction's score up or down, in words an analyst reads.

The contributions are XGBoost's exact TreeSHAP values (``treeshap.TreeShap`` on the request path;
XGBoost's C library through ctypes for models its tables cannot express: no xgboost package in the API
image). Per row they add up, with the bias, to the model's margin (log-odds), so a reason's
``contribution`` is in log-odds: +1.0 multiplies the odds of fraud by e. A feature no tree splits on
contributes exactly 0 and is never a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from fraudops.aggregates.definitions import AGGREGATES, BY_NAME, aggregate_label
from fraudops.core.schema import TRANSACTION_TYPES

DEFAULT_TOP_REASONS: Final = 3

# Feature -> (what it is, the request field it comes from, when it is one).
FEATURE_LABELS: Final[dict[str, tuple[str, str | None]]] = {
    **{f"type_{t}": (f"transaction type is {t}", "type") for t in TRANSACTION_TYPES},
    "step": ("hour since the start of the data (step)", "step"),
    "amount": ("amount", "amount"),
    "oldbalanceOrg": ("origin balance before", "oldbalanceOrg"),
    "newbalanceOrig": ("origin balance after", "newbalanceOrig"),
    "oldbalanceDest": ("destination balance before", "oldbalanceDest"),
    "newbalanceDest": ("destination balance after", "newbalanceDest"),
    "balance_error_orig": ("money missing from the origin's balance change", None),
    "balance_error_dest": ("money missing from the destination's balance change", None),
    "origin_emptied": ("origin account emptied", None),
    "dest_balances_zero": ("destination balances stay zero", None),
    "amount_to_balance": ("amount relative to the origin balance", None),
    "hour_of_day": ("hour of day", None),
    **{aggregate.name: (aggregate.label(), None) for aggregate in AGGREGATES},
}


# Features whose label depends on the value: (zero or false, positive or true, negative). A balance change
# of exactly the amount is no "money missing"; a type indicator of 0 says the type is *not* that one.
_SIGNED_LABELS: Final[dict[str, tuple[str, str, str]]] = {
    "balance_error_orig": (
        "origin's balance fell by exactly the amount",
        "money missing from the origin's balance change",
        "origin's balance fell by more than the amount",
    ),
    "balance_error_dest": (
        "destination's balance rose by exactly the amount",
        "money missing from the destination's balance change",
        "destination's balance rose by more than the amount",
    ),
}
_FLAG_LABELS: Final[dict[str, str]] = {
    **{f"type_{t}": f"transaction type is not {t}" for t in TRANSACTION_TYPES},
    "origin_emptied": "origin account not emptied",
    "dest_balances_zero": "destination balances not both zero",
}


def feature_label(feature: str, value: float) -> str:
    """The words for ``feature`` at ``value``: a reason must read true for the value it shows (a balance
    error of 0.0 is not "money missing", a type flag of 0 is "type is not ...")."""
    if feature in _SIGNED_LABELS:
        zero, positive, negative = _SIGNED_LABELS[feature]
        if value == 0:
            return zero
        if value > 0 or value < 0:  # NaN (no valid request gives one) keeps the plain label
            return positive if value > 0 else negative
    if feature in BY_NAME:  # "7 transactions from this account in this hour"
        return aggregate_label(feature, value)
    if feature in _FLAG_LABELS and value == 0:
        return _FLAG_LABELS[feature]
    return FEATURE_LABELS.get(feature, (feature, None))[0]


@dataclass(frozen=True)
class Reason:
    feature: str
    label: str
    value: float  # the feature's value for this transaction
    contribution: float  # log-odds added to the score (negative: lowers it)
    field: str | None = None  # the request field it comes from, with the value sent
    field_value: Any = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "feature": self.feature,
            "label": self.label,
            "value": self.value,
            "contribution": self.contribution,
            "direction": "raises" if self.contribution > 0 else "lowers",
        }
        if self.field is not None:
            body["field"], body["field_value"] = self.field, self.field_value
        return body


def top_reasons(
    feature_names: tuple[str, ...],
    features: np.ndarray,
    contributions: np.ndarray,
    transaction: Mapping[str, Any],
    top: int = DEFAULT_TOP_REASONS,
    direction: int = 0,
) -> list[Reason]:
    """The ``top`` features with the largest absolute contributions to one row (``contributions``: that
    row's values without the bias), largest first; zero contributions never count. ``direction`` +1 or
    -1: only contributions that raise (lower) the score, for outcomes a rule or list decided."""
    values = np.asarray(contributions[: len(feature_names)], dtype=np.float64)
    eligible = values if direction == 0 else np.where(values * direction > 0, values, 0.0)
    order = np.argsort(-np.abs(eligible), kind="stable")
    reasons: list[Reason] = []
    for index in order[:top].tolist():
        contribution = float(values[index])
        if eligible[index] == 0.0:
            break
        name = feature_names[index]
        field = FEATURE_LABELS.get(name, (name, None))[1]
        value = float(features[index])
        reasons.append(
            Reason(name, feature_label(name, value), value, contribution, field,
                   transaction.get(field) if field else None)
        )  # fmt: skip
    return reasons
