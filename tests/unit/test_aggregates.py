"""Entity aggregates: the declared definitions, the offline (vectorised) computation, and the online store
computing the same values for the same event order, counting each event once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.aggregates import AGGREGATE_NAMES, BY_NAME, aggregate_label, aggregate_rows, offline_aggregates
from fraudops.aggregates.embedded import EmbeddedAggregateStore
from fraudops.aggregates.online import AggregateStore
from fraudops.decisions.expression import parse_condition
from fraudops.decisions.reasons import feature_label

NAN = math.nan


def _frame(rows: list[tuple[int, float, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["step", "amount", "nameOrig", "nameDest"])


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _store_contents(store: AggregateStore, entities: set[str]) -> dict[str, Any]:
    read = store.read(entities, -10_000, 10_000, [])
    return {
        entity: {step: (b.count, b.cents, sorted(b.counterparties)) for step, b in history.items()}
        for entity, history in read.histories.items()
    }


def test_the_declared_aggregates_have_unique_names_and_the_rule_language_and_reasons_know_them() -> None:
    assert len(AGGREGATE_NAMES) == len(set(AGGREGATE_NAMES)) == 18
    assert {"orig_count_1h", "dest_distinct_24h", "orig_hours_since_last", "dest_amount_7d"} <= set(AGGREGATE_NAMES)
    assert parse_condition("orig_count_1h > 5").matches({"orig_count_1h": 7.0})
    assert not parse_condition("orig_count_1h > 5").matches({"orig_count_1h": NAN})  # unknown: never met
    assert feature_label("orig_count_1h", 7.0) == "7 transactions from this account in this hour"
    assert aggregate_label("dest_distinct_24h", 3.0) == "3 distinct senders to this destination in the last 24 hours"
    assert feature_label("orig_hours_since_last", NAN) == "first time this account is seen in 7 days"
    assert BY_NAME["dest_amount_7d"].hours == 168


def test_a_hand_worked_history() -> None:
    frame = _frame(
        [
            (5, 10.00, "A", "X"),
            (5, 20.00, "A", "Y"),
            (5, 5.00, "A", "X"),
            (5, 7.00, "B", "X"),
            (20, 1.00, "A", "Z"),
            (200, 3.00, "A", "X"),
        ]
    )
    values = offline_aggregates(frame)
    assert values["orig_count_1h"].tolist() == [0, 1, 2, 0, 0, 0]
    assert values["orig_amount_1h"].tolist() == [0, 10.0, 30.0, 0, 0, 0]
    assert values["orig_distinct_24h"].tolist() == [0, 1, 2, 0, 2, 0]
    assert values["orig_count_24h"].tolist() == [0, 1, 2, 0, 3, 0]
    assert values["orig_amount_24h"].tolist() == [0, 10.0, 30.0, 0, 35.0, 0]
    assert values["orig_count_7d"].tolist() == [0, 1, 2, 0, 3, 0]  # step 200: steps 33..200 hold none
    hours = values["orig_hours_since_last"].tolist()
    assert math.isnan(hours[0]) and hours[1:3] == [0, 0] and math.isnan(hours[3]) and hours[4] == 15
    assert math.isnan(hours[5])  # 180 hours: outside the 7-day lookback
    assert values["dest_count_1h"].tolist() == [0, 0, 1, 2, 0, 0]
    assert values["dest_amount_1h"].tolist() == [0, 0, 10.0, 15.0, 0, 0]
    assert values["dest_distinct_24h"].tolist() == [0, 0, 1, 1, 0, 0]  # X's senders before r3: A only


def test_rows_may_come_in_any_order_across_steps_only_within_a_step_does_order_count() -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    frame = _frame(
        list(zip(np.sort(rng.integers(0, 300, n)).tolist(), np.round(rng.uniform(1, 500, n), 2).tolist(),
                 [f"C{i}" for i in rng.integers(0, 40, n)], [f"C{i}" for i in rng.integers(0, 25, n)], strict=True))
    )  # fmt: skip
    expected = offline_aggregates(frame)
    # Steps in reverse, each step's rows in their order: every row keeps its values.
    shuffled = frame.assign(position=np.arange(n)).sort_values("step", ascending=False, kind="stable")
    got = offline_aggregates(shuffled)
    for name in AGGREGATE_NAMES:
        back = pd.Series(got[name], index=shuffled["position"].to_numpy()).sort_index().to_numpy()
        assert np.array_equal(back, expected[name], equal_nan=True), name


names = st.one_of(st.none(), st.sampled_from(["C1", "C2", "C3", "M1", "M2"]))
events = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from([0.0, 0.01, 9.99, 120.5, 1e6]), names, names),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(events, st.integers(1, 9))
def test_the_online_store_gives_the_offline_values_event_by_event(
    generated: list[tuple[int, float, str | None, str | None]], batch: int
) -> None:
    rows = sorted(generated, key=lambda row: row[0])  # time order; a step's rows in the generated order
    frame = _frame(rows)
    offline = offline_aggregates(frame)
    store = EmbeddedAggregateStore(":memory:")
    records = [
        {"step": s, "amount": a, "nameOrig": o, "nameDest": d, "transaction_id": f"t{i}"}
        for i, (s, a, o, d) in enumerate(rows)
    ]
    online: list[dict[str, float]] = []
    for start in range(0, len(records), batch):
        online += aggregate_rows(store, records[start : start + batch])
    for i, values in enumerate(online):
        for name in AGGREGATE_NAMES:
            assert _same(values[name], float(offline[name][i])), (i, name, values[name], offline[name][i])


def test_a_retried_event_counts_nothing_and_gets_the_values_it_was_first_scored_with() -> None:
    store = EmbeddedAggregateStore(":memory:")
    rows = [
        {"step": 7, "amount": 100.0, "nameOrig": "C1", "nameDest": "M1", "transaction_id": "a"},
        {"step": 7, "amount": 50.0, "nameOrig": "C1", "nameDest": "M2", "transaction_id": "b"},
    ]
    first = aggregate_rows(store, rows)
    entities = {"orig#C1", "dest#M1", "dest#M2"}
    counters = _store_contents(store, entities)
    assert counters["orig#C1"] == {7: (2, 15_000, ["M1", "M2"])}
    again = aggregate_rows(store, [rows[1]])  # a client retrying b after a timeout
    assert _store_contents(store, entities) == counters
    assert all(_same(again[0][name], first[1][name]) for name in AGGREGATE_NAMES)
    assert first[1]["orig_count_1h"] == 1.0  # b was scored with a before it, not with itself


def test_an_identical_body_without_an_id_is_the_same_event_and_a_batch_counts_a_repeated_id_once() -> None:
    store = EmbeddedAggregateStore(":memory:")
    body = {"step": 3, "type": "TRANSFER", "amount": 10.0, "nameOrig": "C9", "nameDest": "C8", "oldbalanceOrg": 10.0}
    aggregate_rows(store, [body])
    aggregate_rows(store, [dict(body)])
    assert _store_contents(store, {"orig#C9"})["orig#C9"] == {3: (1, 1_000, ["C8"])}
    repeated = {"step": 4, "amount": 1.0, "nameOrig": "C9", "nameDest": "C7", "transaction_id": "x"}
    values = aggregate_rows(store, [repeated, dict(repeated)])
    assert _store_contents(store, {"orig#C9"})["orig#C9"][4] == (1, 100, ["C7"])
    assert values[0] == values[1]


def test_the_embedded_store_keeps_its_counts_across_restarts(tmp_path: Any) -> None:
    path = tmp_path / "aggregates.db"
    row = {"step": 1, "amount": 2.5, "nameOrig": "C1", "nameDest": "C2", "transaction_id": "once"}
    aggregate_rows(EmbeddedAggregateStore(path), [row])
    reopened = EmbeddedAggregateStore(path)
    aggregate_rows(reopened, [row])  # the same id after a restart: still counted once
    nxt = aggregate_rows(reopened, [{**row, "transaction_id": "next"}])[0]
    assert nxt["orig_count_1h"] == 1.0 and nxt["orig_amount_1h"] == 2.5


@pytest.mark.parametrize("missing", ["nameOrig", "nameDest"])
def test_a_row_without_an_account_name_has_missing_aggregates_for_that_account(missing: str) -> None:
    store = EmbeddedAggregateStore(":memory:")
    row = {"step": 1, "amount": 2.5, "nameOrig": "C1", "nameDest": "C2", missing: None}
    values = aggregate_rows(store, [row, {**row, "amount": 3.0}])[1]
    role = "orig" if missing == "nameOrig" else "dest"
    other = "dest" if role == "orig" else "orig"
    assert all(math.isnan(values[name]) for name in AGGREGATE_NAMES if name.startswith(role))
    assert values[f"{other}_count_1h"] == 1.0 and values[f"{other}_distinct_24h"] == 0.0
