"""Curation: captured decisions + late labels -> training rows, with label maturity; incremental,
idempotent and crash-safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.lake import Lake
from fraudops.lake.curation import pending_count, read_lake_labels, run_curation
from fraudops.monitoring.capture import FileCaptureSink, capture_record
from fraudops.monitoring.labels import store_labels

NOW = datetime.now(UTC).replace(microsecond=0)
TRANSACTION = {"step": 800, "type": "TRANSFER", "amount": 1000.0, "nameOrig": "C1", "oldbalanceOrg": 1000.0,
               "newbalanceOrig": 0.0, "nameDest": "C2", "oldbalanceDest": 0.0, "newbalanceDest": 0.0}  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", label_maturity_days=30)


def capture(settings: Settings, transaction_id: str, days_ago: float, step: int = 800) -> None:
    when = NOW - timedelta(days=days_ago)
    record = capture_record({**TRANSACTION, "step": step}, transaction_id, "3", 0.2, 0.0, 0.5, "req", when)
    FileCaptureSink(settings.local_artifact_dir).write(record, when)


def curated(settings: Settings) -> dict[str, int]:
    rows = Lake(settings).transactions.read(columns=["transaction_id", "isFraud", "source"]).to_pylist()
    assert all(r["source"] == "curated" for r in rows)
    ids = [r["transaction_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a decision was curated twice"
    return {r["transaction_id"]: r["isFraud"] for r in rows}


def test_maturity_decides_between_zero_one_and_pending(settings: Settings) -> None:
    capture(settings, "old-quiet", 40)  # matured without a label: 0
    capture(settings, "old-fraud", 40)
    capture(settings, "new-fraud", 10)  # fraud label arrived early: 1 at once
    capture(settings, "new-quiet", 10)  # neither: pending
    capture(settings, "new-cleared", 10)  # a not-fraud label does not end the window early: pending
    capture(settings, "recent", 0)  # its hour's file is still being appended to
    store_labels(settings, [("old-fraud", True), ("new-fraud", True), ("new-cleared", False)], "test")
    report = run_curation(settings, NOW)
    assert report.labels_added == 3 and report.decisions_added == 6
    assert curated(settings) == {"old-quiet": 0, "old-fraud": 1, "new-fraud": 1}
    assert report.pending == 3 == pending_count(settings, Lake(settings), NOW)
    assert read_lake_labels(Lake(settings)) == {"old-fraud": True, "new-fraud": True, "new-cleared": False}

    versions = {name: Lake(settings).table(name).snapshot().version for name in ("transactions", "decisions")}
    again = run_curation(settings, NOW)  # idempotent: nothing new, nothing committed
    assert (again.labels_added, again.decisions_added, again.rows_curated) == (0, 0, 0)
    assert {name: Lake(settings).table(name).snapshot().version for name in versions} == versions

    later = run_curation(settings, NOW + timedelta(days=25))  # incremental: the 10-day-old ones mature
    assert curated(settings) == {"old-quiet": 0, "old-fraud": 1, "new-fraud": 1, "new-quiet": 0, "new-cleared": 0}
    assert later.decisions_added == 0 and later.rows_curated == 2 and later.pending == 1  # "recent" waits


def test_lines_appended_to_an_open_capture_file_are_compacted_once(settings: Settings) -> None:
    capture(settings, "first", 0)
    assert run_curation(settings, NOW).decisions_added == 1
    capture(settings, "second", 0)  # the same hour's file grows
    capture(settings, "third", 0)
    assert run_curation(settings, NOW).decisions_added == 2
    assert run_curation(settings, NOW + timedelta(hours=3)).decisions_added == 0  # the hour closes: nothing new
    ids = Lake(settings).decisions.read(columns=["transaction_id"]).column(0).to_pylist()
    assert sorted(ids) == ["first", "second", "third"]


def test_a_crash_before_the_commit_leaves_everything_and_the_rerun_completes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture(settings, "a", 40)
    capture(settings, "b", 35)
    store_labels(settings, [("b", True)], "test")
    run_curation(settings, NOW - timedelta(days=20))  # compacts both, curates nothing yet (maturity)
    before = Lake(settings).transactions.snapshot()
    from pyiceberg.catalog.sql import SqlCatalog

    real = SqlCatalog.commit_table

    def crash(self: SqlCatalog, table: Any, requirements: Any, updates: Any) -> Any:
        if table.name()[-1] == "transactions":  # the catalog's pointer swap: Iceberg's one commit write
            raise StoreError("killed")
        return real(self, table, requirements, updates)

    monkeypatch.setattr(SqlCatalog, "commit_table", crash)
    with pytest.raises(StoreError):
        run_curation(settings, NOW)
    assert Lake(settings).transactions.snapshot() == before
    monkeypatch.setattr(SqlCatalog, "commit_table", real)
    run_curation(settings, NOW)
    assert curated(settings) == {"a": 0, "b": 1}


def test_two_compactions_at_once_store_each_decision_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hourly schedule and the state machine's Curate step can overlap: both read the same new lines;
    the second to commit must refuse, not append them again."""
    from fraudops.core.errors import DataError
    from fraudops.lake import curation

    for name in ("x", "y", "z"):
        capture(settings, name, 2)
    real = curation.decision_rows
    raced: list[int] = []
    inside: list[bool] = []

    def meanwhile(records: object) -> list[dict[str, object]]:
        rows = real(records)  # type: ignore[arg-type]
        if not inside:  # another curation reads the same lines and commits first
            inside.append(True)
            raced.append(curation.compact_decisions(settings, Lake(settings), NOW))
        return rows

    monkeypatch.setattr(curation, "decision_rows", meanwhile)
    with pytest.raises(DataError, match="another curation committed meanwhile"):
        curation.compact_decisions(settings, Lake(settings), NOW)
    assert raced == [3]
    ids = Lake(settings).decisions.read(columns=["transaction_id"]).column(0).to_pylist()
    assert sorted(ids) == ["x", "y", "z"]
    monkeypatch.undo()
    assert curation.compact_decisions(settings, Lake(settings), NOW) == 0  # the loser's rerun: nothing new
