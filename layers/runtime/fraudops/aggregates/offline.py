"""Point-in-time aggregates for a table of events, vectorised (numpy), as training and back-tests need them.

For each row, each aggregate is over the entity's events strictly before it (``definitions``); nothing
of the row itself or of a later row leaks in. The rows may come in any order across steps; within a step
their order is the event order. Every entity's events must be in the table (a partition by entity, as the
Spark job's ``applyInPandas`` gives, is enough): the result for an entity depends on its rows only.

How, per role: rows are sorted by (entity, step, position) so each entity's events are one run. Counts and
sums over a window are differences of positions and of cumulative sums at the window's first row (a
binary search on the composite key entity x step). Distinct counterparties: an earlier event ``k`` is the
one that counts its counterparty for the events after it up to the next event with the same counterparty,
and while the window still reaches back to ``k``: a range of rows, so one difference array and a cumulative
sum count them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fraudops.aggregates.definitions import (
    AGGREGATES,
    COUNTERPARTY_FIELD,
    ENTITY_FIELD,
    LOOKBACK_HOURS,
    Aggregate,
    Role,
)


def amounts_in_cents(amounts: Any) -> np.ndarray:
    """``definitions.cents`` for an array (``np.rint`` and ``round`` both round half to even)."""
    return np.rint(np.asarray(amounts, dtype=np.float64) * 100).astype(np.int64)


def offline_aggregates(
    columns: Mapping[str, Any], aggregates: Sequence[Aggregate] = AGGREGATES
) -> dict[str, np.ndarray]:
    """Each aggregate's value for every row (float64, NaN where the row has no entity or, for
    ``hours_since_last``, no earlier event in the lookback), in the rows' order. ``columns``: ``step``,
    ``amount``, ``nameOrig``, ``nameDest`` (a DataFrame or a mapping of arrays)."""
    steps = np.asarray(columns["step"], dtype=np.int64)
    n = len(steps)
    if n == 0:
        return {aggregate.name: np.empty(0, dtype=np.float64) for aggregate in aggregates}
    amount_cents = amounts_in_cents(columns["amount"])
    result: dict[str, np.ndarray] = {}
    for role in {aggregate.role for aggregate in aggregates}:
        wanted = [aggregate for aggregate in aggregates if aggregate.role == role]
        result.update(_role_aggregates(role, wanted, steps, amount_cents, columns))
    return {aggregate.name: result[aggregate.name] for aggregate in aggregates}


def _codes(values: Any) -> np.ndarray:
    """Integer codes for entity names (-1 for a missing one)."""
    codes, _ = pd.factorize(pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values)
    return np.asarray(codes, dtype=np.int64)


def _role_aggregates(
    role: Role, wanted: Sequence[Aggregate], steps: np.ndarray, amount_cents: np.ndarray, columns: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    n = len(steps)
    entity = _codes(columns[ENTITY_FIELD[role]])
    counterparty = _codes(columns[COUNTERPARTY_FIELD[role]])
    order = np.lexsort((np.arange(n), steps, entity))  # entity, then step, then position
    e, s, c, a = entity[order], steps[order], counterparty[order], amount_cents[order]

    # Composite key entity x step, ascending along the sorted rows; steps shifted so every window bound
    # (s - 167 .. s + 167) stays inside its entity's span of keys.
    base = int(s.min()) - LOOKBACK_HOURS - 1
    span = int(s.max()) - int(s.min()) + 2 * LOOKBACK_HOURS + 3
    key = e * span + (s - base)
    position = np.arange(n)
    cumulative = np.concatenate([[0], np.cumsum(a)])
    start = np.searchsorted(key, e * span, side="left")  # each row's entity's first row

    sorted_values: dict[str, np.ndarray] = {}
    for aggregate in wanted:
        hours = aggregate.hours
        if aggregate.measure == "hours_since_last":
            has_previous = position > start
            gap = np.where(has_previous, s - s[np.maximum(position - 1, 0)], 0)
            sorted_values[aggregate.name] = np.where(has_previous & (gap < LOOKBACK_HOURS), gap, np.nan)
            continue
        first = np.searchsorted(key, e * span + (s - hours + 1 - base), side="left")
        if aggregate.measure == "count":
            sorted_values[aggregate.name] = (position - first).astype(np.float64)
        elif aggregate.measure == "amount":
            sorted_values[aggregate.name] = (cumulative[position] - cumulative[first]) / 100.0
        else:
            sorted_values[aggregate.name] = _distinct(e, c, s, key, span, base, hours).astype(np.float64)

    missing = e < 0
    values: dict[str, np.ndarray] = {}
    for name, sorted_value in sorted_values.items():
        value = np.empty(n, dtype=np.float64)
        value[order] = np.where(missing, np.nan, sorted_value)
        values[name] = value
    return values


def _distinct(
    e: np.ndarray, c: np.ndarray, s: np.ndarray, key: np.ndarray, span: int, base: int, hours: int
) -> np.ndarray:
    """Distinct counterparties among each row's earlier events in the window (rows sorted as above)."""
    n = len(e)
    position = np.arange(n)
    # The next row of the same (entity, counterparty), or n: a stable sort keeps positions ascending.
    pair = e * (int(c.max()) + 2) + (c + 1)
    by_pair = np.argsort(pair, kind="stable")
    following = np.full(n, n, dtype=np.int64)
    same = pair[by_pair[1:]] == pair[by_pair[:-1]]
    following[by_pair[:-1][same]] = by_pair[1:][same]
    # The last row the window of row k's step still reaches: steps up to s_k + hours - 1, same entity.
    reach = np.searchsorted(key, e * span + (s + hours - 1 - base), side="right") - 1
    last = np.minimum(following, reach)  # row k counts for rows k+1 .. last
    counts = (c >= 0) & (e >= 0) & (last > position)
    difference = np.bincount(position[counts] + 1, minlength=n + 1) - np.bincount(last[counts] + 1, minlength=n + 1)
    return np.cumsum(difference)[:n]


def with_aggregates(frame: pd.DataFrame, aggregates: Sequence[Aggregate] = AGGREGATES) -> pd.DataFrame:
    """``frame`` with one column per aggregate (computed over the frame's own rows)."""
    values = offline_aggregates(frame, aggregates)
    return frame.assign(**values)
