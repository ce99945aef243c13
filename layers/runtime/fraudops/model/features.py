"""The one feature definition, used by training, evaluation and serving alike (no skew).

``build_features`` turns raw PaySim columns (arrays of any length, one row at serving time) into the
model matrix. A model stores the names of the features it was trained on in its ``FeatureSpec``, and
serving builds exactly those, in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from fraudops.aggregates.definitions import AGGREGATE_NAMES
from fraudops.core.errors import FeatureMismatchError
from fraudops.core.schema import RAW_FEATURE_COLUMNS, TRANSACTION_TYPES

FEATURE_CODE_VERSION: Final = "1"

ArrayLike = npt.ArrayLike
Columns = Mapping[str, Any]


def _as_float(columns: Columns, name: str) -> np.ndarray:
    return np.asarray(columns[name], dtype=np.float64)


def _type_is(type_name: str) -> Callable[[Columns], np.ndarray]:
    def feature(columns: Columns) -> np.ndarray:
        return (np.asarray(columns["type"]) == type_name).astype(np.float64)

    return feature


def _balance_error_orig(c: Columns) -> np.ndarray:
    """Money that left the origin without showing in its balance (PaySim's strongest fraud signal)."""
    return _as_float(c, "newbalanceOrig") + _as_float(c, "amount") - _as_float(c, "oldbalanceOrg")


def _balance_error_dest(c: Columns) -> np.ndarray:
    return _as_float(c, "oldbalanceDest") + _as_float(c, "amount") - _as_float(c, "newbalanceDest")


def _origin_emptied(c: Columns) -> np.ndarray:
    return ((_as_float(c, "oldbalanceOrg") > 0) & (_as_float(c, "newbalanceOrig") == 0)).astype(np.float64)


def _dest_balances_zero(c: Columns) -> np.ndarray:
    zero = (_as_float(c, "oldbalanceDest") == 0) & (_as_float(c, "newbalanceDest") == 0)
    return (zero & (_as_float(c, "amount") > 0)).astype(np.float64)


def _amount_to_balance(c: Columns) -> np.ndarray:
    return _as_float(c, "amount") / (_as_float(c, "oldbalanceOrg") + 1.0)


def _column(name: str) -> Callable[[Columns], np.ndarray]:
    """A feature that is a column of its own (an entity aggregate, computed before the features)."""

    def feature(columns: Columns) -> np.ndarray:
        return _as_float(columns, name)

    return feature


def _hour_of_day(c: Columns) -> np.ndarray:
    return np.asarray(c["step"], dtype=np.int64) % 24


_FEATURES: Final[dict[str, Callable[[Columns], np.ndarray]]] = {
    **{f"type_{t}": _type_is(t) for t in TRANSACTION_TYPES},
    "step": lambda c: _as_float(c, "step"),
    "amount": lambda c: _as_float(c, "amount"),
    "oldbalanceOrg": lambda c: _as_float(c, "oldbalanceOrg"),
    "newbalanceOrig": lambda c: _as_float(c, "newbalanceOrig"),
    "oldbalanceDest": lambda c: _as_float(c, "oldbalanceDest"),
    "newbalanceDest": lambda c: _as_float(c, "newbalanceDest"),
    "balance_error_orig": _balance_error_orig,
    "balance_error_dest": _balance_error_dest,
    "origin_emptied": _origin_emptied,
    "dest_balances_zero": _dest_balances_zero,
    "amount_to_balance": _amount_to_balance,
    "hour_of_day": _hour_of_day,
    # Entity aggregates (fraudops.aggregates): computed before the features, offline by
    # ``with_aggregates`` and online by the aggregate store, and passed in as columns of their own.
    **{name: _column(name) for name in AGGREGATE_NAMES},
}

FEATURE_SETS: Final[dict[str, tuple[str, ...]]] = {
    # What a first notebook does: amount, time and type.
    "seed": ("amount", "step", *(f"type_{t}" for t in TRANSACTION_TYPES)),
    # Ours: balances, PaySim's balance-error features, the takeover pattern and the hour, not the
    # absolute step (a model should not learn the calendar of its training month).
    "engineered": (
        *(f"type_{t}" for t in TRANSACTION_TYPES),
        "amount",
        "oldbalanceOrg",
        "newbalanceOrig",
        "oldbalanceDest",
        "newbalanceDest",
        "balance_error_orig",
        "balance_error_dest",
        "origin_emptied",
        "dest_balances_zero",
        "amount_to_balance",
        "hour_of_day",
    ),
}
# Ours plus what each account did before (velocity): the model sees history, not one transaction alone.
FEATURE_SETS["velocity"] = (*FEATURE_SETS["engineered"], *AGGREGATE_NAMES)


class _ArrayColumns(Mapping[str, np.ndarray]):
    """Each raw column converted to an array once (features read ``amount`` five times): at 1,000 rows
    from a request's lists, or 1M rows from a frame, the conversions cost more than the arithmetic."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None:
            array = np.asarray(self._columns[name])
            if array.dtype == object:  # strings from a pandas frame: fixed-width compares are vectorised
                array = array.astype(str) if name == "type" else array.astype(np.float64)
            self._arrays[name] = array
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def build_features(columns: Columns, feature_names: Sequence[str]) -> np.ndarray:
    """Raw columns -> float32 matrix (rows x features), in the order of ``feature_names``."""
    unknown = [name for name in feature_names if name not in _FEATURES]
    if unknown:
        raise FeatureMismatchError(f"unknown feature(s): {', '.join(unknown)}")
    arrays = _ArrayColumns(columns)
    values = [_FEATURES[name](arrays) for name in feature_names]
    matrix = np.empty((len(values[0]) if values else 0, len(values)), dtype=np.float32)
    for position, value in enumerate(values):
        matrix[:, position] = value
    return matrix


@dataclass(frozen=True)
class FeatureSpec:
    """Saved with every model: what to build from a request and how to turn a score into a decision."""

    feature_names: tuple[str, ...]
    threshold: float
    feature_set: str = "engineered"
    raw_columns: tuple[str, ...] = RAW_FEATURE_COLUMNS
    feature_code_version: str = FEATURE_CODE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregates(self) -> tuple[str, ...]:
        """The entity aggregates this model was trained with (its spec file lists them too)."""
        return tuple(name for name in self.feature_names if name in AGGREGATE_NAMES)

    def validate(self) -> None:
        unknown = [name for name in self.feature_names if name not in _FEATURES]
        if unknown:
            raise FeatureMismatchError(f"model needs feature(s) {', '.join(unknown)} that this code does not build")
        missing = [c for c in self.raw_columns if c not in RAW_FEATURE_COLUMNS]
        if missing:
            raise FeatureMismatchError(f"model expects request field(s) {', '.join(missing)} the API lacks")
        if not 0.0 <= self.threshold <= 1.0:
            raise FeatureMismatchError(f"threshold {self.threshold} is not a probability")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aggregates": list(self.aggregates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        try:
            return cls(
                feature_names=tuple(data["feature_names"]),
                threshold=float(data["threshold"]),
                feature_set=str(data.get("feature_set", "engineered")),
                raw_columns=tuple(data.get("raw_columns", RAW_FEATURE_COLUMNS)),
                feature_code_version=str(data.get("feature_code_version", FEATURE_CODE_VERSION)),
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FeatureMismatchError(f"feature spec is malformed: {error}") from error
