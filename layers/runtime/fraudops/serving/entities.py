"""The entity aggregates of the transactions being scored, from the aggregate store (``fraudops.aggregates``):
merged into each row before its features, its policy rules and its reasons.

Every row gets every aggregate (a policy rule may name any of them, whatever the model uses). With no store
(``aggregate_store=off``), or when the store cannot be reached, the values are missing (NaN): the model
treats them as XGBoost's missing values, a rule comparing one is false, and the request is still answered
(a fraud decision that waits on a counter is worse than one without it); the failure is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fraudops.aggregates import AGGREGATE_NAMES, AggregateStore, aggregate_rows

log = logging.getLogger(__name__)


def missing_aggregates() -> dict[str, float]:
    return dict.fromkeys(AGGREGATE_NAMES, math.nan)


def row_aggregates(store: AggregateStore | None, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Each row's aggregates (in the rows' order; every new event counted once), or missing values."""
    if store is None or not rows:
        return [missing_aggregates() for _ in rows]
    try:
        return aggregate_rows(store, rows)
    except Exception as error:  # botocore and sqlite3 raise many kinds; the decision goes on without them
        log.error("entity aggregates unavailable (%s: %s); scoring %d row(s) without them",
                  type(error).__name__, error, len(rows))  # fmt: skip
        return [missing_aggregates() for _ in rows]
