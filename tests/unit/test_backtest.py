"""Issue 27 item 4: per list / rule / band performance (exact counts on a hand-built set of decisions),
what the API recorded read back from the lake's ``details``, and ``backtest_policy`` on a hand-built lake:
the draft beside the active policy, labels by the monitor's maturity rule, clear errors, nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fraudops.core.config import Settings
from fraudops.decisions import Bands, DecisionPolicy, publish_policy
from fraudops.decisions.policy import DecidedBy, Decision
from fraudops.lake import Lake, dt_of_time
from fraudops.lake.curation import decision_rows
from fraudops.monitoring.capture import capture_record
from fraudops.stages.backtest import (
    BacktestError,
    backtest_policy,
    decision_labels,
    format_backtest,
    possible_decisions,
    recorded_decisions,
    replay,
    rule_performance,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DRAFT: dict[str, Any] = {
    "name": "draft",
    "bands": {"review_at": 0.5, "block_at": 0.9},
    "rules": [{"name": "big-transfer", "outcome": "review", "when": "type == 'TRANSFER' and amount > 1000"}],
    "lists": {"deny": {"nameDest": ["M-bad"]}},
}
MODEL_BANDS = Bands(0.5, None)
# id, type, amount, nameDest, score, label (1 fraud, 0 legitimate, -1 pending): what the draft decides.
ROWS = [
    ("t0", "TRANSFER", 5000.0, "C1", 0.10, 1),  # rule big-transfer (review): a fraud caught
    ("t1", "TRANSFER", 2000.0, "C1", 0.95, 0),  # rule big-transfer before the bands: legitimate reviewed
    ("t2", "PAYMENT", 100.0, "M-bad", 0.00, 1),  # deny.nameDest (block): a fraud caught
    ("t3", "PAYMENT", 50.0, "C2", 0.95, 0),  # band block: legitimate blocked
    ("t4", "PAYMENT", 60.0, "C2", 0.92, 1),  # band block: a fraud caught
    ("t5", "CASH_OUT", 70.0, "C3", 0.60, 0),  # band review: legitimate reviewed
    ("t6", "CASH_OUT", 80.0, "C3", 0.70, -1),  # band review: pending
    ("t7", "PAYMENT", 90.0, "C4", 0.20, 1),  # band approve: a fraud missed
    ("t8", "PAYMENT", 10.0, "C4", 0.10, 0),  # band approve
    ("t9", "TRANSFER", 500.0, "C5", 0.30, 0),  # band approve (not above 1000)
]


def frame(rows: list[tuple[Any, ...]] = ROWS) -> pd.DataFrame:
    return pd.DataFrame({
        "decision_time": [pd.Timestamp(NOW - timedelta(days=40 if r[5] >= 0 else 1)) for r in rows],
        "transaction_id": [r[0] for r in rows], "model_version": "1", "probability": [r[4] for r in rows],
        "prediction": [1.0 if r[4] >= 0.5 else 0.0 for r in rows], "step": 800, "type": [r[1] for r in rows],
        "amount": [r[2] for r in rows], "nameOrig": "C9", "oldbalanceOrg": 1e4, "newbalanceOrig": 0.0,
        "nameDest": [r[3] for r in rows], "oldbalanceDest": 0.0, "newbalanceDest": 0.0,
    })  # fmt: skip


def rows_by_key(performance: Any) -> dict[tuple[str, str, str], tuple[int, int, float, int, int]]:
    return {r.key: (r.hits, r.frauds, r.fraud_amount, r.legitimate, r.pending) for r in performance.rows}


def test_a_replayed_draft_is_tabulated_by_list_rule_and_band_with_exact_counts() -> None:
    data = frame()
    label = np.array([r[5] for r in ROWS], dtype=np.int8)
    decided = replay(DecisionPolicy.from_dict(DRAFT), data, {"1": MODEL_BANDS})
    result = rule_performance(decided, label, data["amount"].to_numpy())
    assert rows_by_key(result) == {
        ("list", "deny.nameDest", "block"): (1, 1, 100.0, 0, 0),
        ("rule", "big-transfer", "review"): (2, 1, 5000.0, 1, 0),
        ("band", "block", "block"): (2, 1, 60.0, 1, 0),
        ("band", "review", "review"): (2, 0, 0.0, 1, 1),
        ("band", "approve", "approve"): (3, 1, 90.0, 2, 0),
    }
    assert [r.key[0] for r in result.rows] == ["list", "rule", "band", "band", "band"]  # lists, rules, bands
    assert [r.per_1000 for r in result.rows] == [100.0, 200.0, 200.0, 200.0, 300.0]
    assert (result.decisions, result.labeled, result.pending, result.frauds) == (10, 9, 1, 4)
    assert (result.reviews, result.blocks, result.alerts_per_1000, result.flagged_per_1000) == (4, 3, 400.0, 700.0)
    assert (result.frauds_caught, result.fraud_amount, result.fraud_amount_caught) == (3, 5250.0, 5160.0)
    assert (result.legitimate_reviewed, result.legitimate_blocked) == (2, 1)

    # The built-in policy: the model's bands of the version that scored each row (review from 0.5, no block).
    builtin = rule_performance(replay(DecisionPolicy("model bands", None), data, {"1": MODEL_BANDS}), label,
                               data["amount"].to_numpy())  # fmt: skip
    assert rows_by_key(builtin) == {
        ("band", "review", "review"): (5, 1, 60.0, 3, 1),
        ("band", "approve", "approve"): (5, 3, 5190.0, 2, 0),
    }
    assert (builtin.frauds_caught, builtin.legitimate_reviewed, builtin.legitimate_blocked) == (1, 3, 0)


def test_every_list_rule_and_band_of_a_policy_is_shown_even_when_nothing_hit_it() -> None:
    policy = DecisionPolicy.from_dict({**DRAFT, "rules": [*DRAFT["rules"], {"name": "never", "outcome": "block",
                                                                            "when": "amount < 0"}],
                                       "lists": {**DRAFT["lists"], "allow": {"nameOrig": ["C-nobody"]}}})  # fmt: skip
    data = frame()
    result = rule_performance(
        replay(policy, data, {}), [r[5] for r in ROWS], data["amount"], possible_decisions(policy)
    )
    found = rows_by_key(result)
    assert found[("rule", "never", "block")] == (0, 0, 0.0, 0, 0)
    assert found[("list", "allow.nameOrig", "approve")] == (0, 0, 0.0, 0, 0)
    assert found[("rule", "big-transfer", "review")] == (2, 1, 5000.0, 1, 0) and len(found) == 7
    assert result.decisions == 10 and result.blocks == 3  # rows nothing hit change no total
    own = DecisionPolicy.from_dict({"name": "no block", "bands": {"review_at": 0.5, "block_at": None}})
    assert [d.decided_by.name for d in possible_decisions(own)] == ["review", "approve"]
    builtin = DecisionPolicy("model bands", None)
    assert [d.decided_by.name for d in possible_decisions(builtin, [MODEL_BANDS])] == ["review", "approve"]
    assert len(possible_decisions(builtin, [MODEL_BANDS, Bands(0.5, 0.9)])) == 3


def test_each_model_version_replays_with_its_own_bands() -> None:
    data = frame()
    data.loc[5:, "model_version"] = "2"  # t5..t9 scored by a version that reviews from 0.65
    decided = replay(DecisionPolicy("model bands", None), data, {"1": Bands(0.5, 0.93), "2": Bands(0.65, None)})
    assert [d.outcome for d in decided] == ["approve", "block", "approve", "block", "review",
                                            "approve", "review", "approve", "approve", "approve"]  # fmt: skip


def test_the_table_needs_one_label_and_amount_per_decision() -> None:
    with pytest.raises(ValueError, match="one label and one amount per decision"):
        rule_performance([Decision("approve", DecidedBy("band", "approve"))], [1, 0], [1.0])


def test_labels_follow_the_monitors_maturity_rule() -> None:
    data = frame()
    newest = {"t0": True, "t1": False, "t6": False}  # t6: a not-fraud label before maturity: still pending
    label = decision_labels(data, newest, NOW - timedelta(days=30))
    assert label.tolist() == [1, 0, 0, 0, 0, 0, -1, 0, 0, 0]


def test_what_the_api_recorded_is_read_back_from_the_lakes_details() -> None:
    odd = 'say "hi": \\ outcome'  # a rule name JSON must escape, holding the word "outcome" and a colon
    decided = [
        {"outcome": "review", "decided_by": {"kind": "rule", "name": odd}, "policy_version": "3"},
        {"outcome": "block", "decided_by": {"kind": "list", "name": "deny.nameDest"}, "policy_version": "3"},
        None,  # captured before outcomes existed, prediction 1: the F1 threshold's review band
        None,  # ... prediction 0
    ]
    records = [capture_record({"type": "PAYMENT", "amount": 1.0}, f"t{i}", "1", 0.4, float(i == 2), 0.5,
                              "r", NOW, d) for i, d in enumerate(decided)]  # fmt: skip
    data = pd.DataFrame(decision_rows([{**r, "seq": i} for i, r in enumerate(records)]))
    assert recorded_decisions(data) == [
        Decision("review", DecidedBy("rule", odd)),
        Decision("block", DecidedBy("list", "deny.nameDest")),
        Decision("review", DecidedBy("band", "review")),
        Decision("approve", DecidedBy("band", "approve")),
    ]
    assert recorded_decisions(data.iloc[:0]) == []


# --- on a lake ---------------------------------------------------------------------------------------


def lake_settings(tmp_path: Path) -> Settings:
    return Settings(lake_uri=str(tmp_path / "lake"), state_dir=tmp_path / "state")


def write_decisions(settings: Settings, records: list[dict[str, Any]]) -> None:
    decisions = decision_rows(records)
    writer = Lake(settings).decisions.writer("append")
    writer.write(pa.Table.from_pylist(decisions), [dt_of_time(r["decision_time"]) for r in decisions])
    writer.commit()


def fill_lake(settings: Settings, rows: list[tuple[Any, ...]] = ROWS, labels: bool = True) -> None:
    """The decisions as the API captures and curation compacts them, and label events for them."""
    lake = Lake(settings)
    records = []
    for i, (tid, kind, amount, dest, score, label) in enumerate(rows):
        when = NOW - timedelta(days=40 if label >= 0 else 1)
        transaction = {"step": 800, "type": kind, "amount": amount, "nameOrig": "C9", "oldbalanceOrg": 1e4,
                       "newbalanceOrig": 0.0, "nameDest": dest, "oldbalanceDest": 0.0,
                       "newbalanceDest": 0.0}  # fmt: skip
        outcome = {"outcome": "approve", "decided_by": {"kind": "band", "name": "approve"}, "policy_version": "x"}
        records.append({**capture_record(transaction, tid, "1", score, 0.0, 0.5, f"r{i}", when, outcome), "seq": 0})
    write_decisions(settings, records)
    if labels:
        events = [{"transaction_id": r[0], "is_fraud": r[5] == 1, "received_at": NOW - timedelta(hours=1),
                   "source": "test"} for r in rows if r[5] == 1 or r[0] == "t6"]  # fmt: skip
        writer = lake.labels.writer("append")
        writer.write(pa.Table.from_pylist(events), [dt_of_time(e["received_at"]) for e in events])
        writer.commit()


def files_of(*folders: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for folder in folders if folder.exists() for p in folder.rglob("*")}


def test_backtest_policy_replays_the_lake_beside_the_builtin_and_the_published_policy(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    fill_lake(settings)
    before = files_of(tmp_path)
    asked: list[tuple[str, ...]] = []

    def bands(_: Settings, versions: Any) -> dict[str, Bands]:
        asked.append(tuple(versions))
        return {"1": MODEL_BANDS}

    draft = DecisionPolicy.from_dict(DRAFT)
    result = backtest_policy(settings, draft, now=NOW, model_bands=bands)
    assert asked == [("1",)]  # the built-in policy uses the model's bands
    assert result.active_version == "builtin" and result.labels_found == 5
    assert (result.draft.frauds_caught, result.draft.fraud_amount_caught, result.draft.pending) == (3, 5160.0, 1)
    assert rows_by_key(result.active) == {
        ("band", "review", "review"): (5, 1, 60.0, 3, 1),
        ("band", "approve", "approve"): (5, 3, 5190.0, 2, 0),
    }
    assert files_of(tmp_path) == before  # a back-test writes nothing

    text = format_backtest(result)
    assert "beside the built-in (no policy published) policy 'model bands'" in text
    assert "10 captured decisions" in text and "4 confirmed fraud, 5 legitimate, 1 pending" in text
    assert "note: 1 decision(s) pending (no fraud label, younger than the 30-day label maturity)" in text
    line = next(row for row in text.splitlines() if row.startswith("rule big-transfer"))
    active_cells, draft_cells = (part.split() for part in line.split("|")[1:])
    assert active_cells == ["-"] * 5 and draft_cells == ["2", "200.00", "1", "5,000", "1"]
    caught = next(row for row in text.splitlines() if row.startswith("confirmed frauds caught (of 4)"))
    assert caught.split()[-3:] == ["1", "3", "+2"]

    # With a published policy of its own bands, the draft is beside that one and no model bands are read.
    publish_policy(settings, {"name": "live", "bands": {"review_at": 0.9, "block_at": None}}, "v1")
    published = backtest_policy(settings, draft, now=NOW, model_bands=bands)
    assert asked == [("1",)] and published.active_version == "1" and published.active_name == "live"
    assert rows_by_key(published.active)[("band", "review", "review")] == (3, 1, 60.0, 2, 0)
    assert "beside the active v1 policy 'live'" in format_backtest(published)


def test_backtest_says_when_the_lake_has_no_decisions_or_no_labels(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    draft = DecisionPolicy.from_dict(DRAFT)
    with pytest.raises(BacktestError, match="the lake has no captured decisions to back-test on"):
        backtest_policy(settings, draft, now=NOW)
    fill_lake(settings, labels=False)
    with pytest.raises(BacktestError, match=r"no captured decisions in the last 0\.5 days"):
        backtest_policy(settings, draft, days=0.5, now=NOW)
    with pytest.raises(ValueError, match="--days must be a positive number"):
        backtest_policy(settings, draft, days=0, now=NOW)
    result = backtest_policy(settings, draft, now=NOW, model_bands=lambda *_: {"1": MODEL_BANDS})
    assert result.labels_found == 0 and result.draft.frauds == 0
    assert "note: the lake has no labels yet: frauds caught and friction cannot be measured" in format_backtest(result)
    # The newest day holds t6 only.
    recent = backtest_policy(settings, draft, days=2, now=NOW, model_bands=lambda *_: {"1": MODEL_BANDS})
    assert recent.draft.decisions == 1 and json.loads(json.dumps(recent.as_dict()))["draft"]["decisions"] == 1


def test_a_transaction_decided_twice_counts_once(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    fill_lake(settings, [*ROWS, ROWS[0]])  # a client's retry of t0: one payment
    result = backtest_policy(
        settings, DecisionPolicy.from_dict(DRAFT), now=NOW, model_bands=lambda *_: {"1": MODEL_BANDS}
    )
    assert result.draft.decisions == 10 and result.draft.frauds == 4


def test_a_redelivered_capture_counts_once_and_two_equal_decisions_without_an_id_twice(tmp_path: Path) -> None:
    settings = lake_settings(tmp_path)
    transaction = {"step": 800, "type": "PAYMENT", "amount": 5.0}
    records = [{**capture_record(transaction, None, "1", 0.7, 1.0, 0.5, "r1", NOW), "seq": seq} for seq in (0, 1)]
    write_decisions(settings, records)
    write_decisions(settings, records[:1])  # Firehose delivered the first object twice
    result = backtest_policy(
        settings, DecisionPolicy.from_dict(DRAFT), now=NOW, model_bands=lambda *_: {"1": MODEL_BANDS}
    )
    assert result.draft.decisions == 2 and rows_by_key(result.draft)[("band", "review", "review")][0] == 2
