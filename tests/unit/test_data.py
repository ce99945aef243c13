from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames
from fraudops_dev.importer import import_csv
from fraudops_dev.sqlite_io import count_rows, load_training_frame, write_transactions

from fraudops.core.errors import DataError
from fraudops.core.schema import COLUMNS
from fraudops.training.dataset import fingerprint


def test_write_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "fraud.db"
    seen: list[int] = []
    written = write_transactions(
        db, generate_frames(GeneratorConfig(12_345, seed=1), chunk_rows=5_000), progress=seen.append
    )
    assert written == 12_345 == count_rows(db)
    assert seen == [5_000, 10_000, 12_345]
    frame = load_training_frame(db)
    assert frame["step"].is_monotonic_increasing
    assert set(frame.columns) == {
        "step",
        "type",
        "amount",
        "oldbalanceOrg",
        "newbalanceOrig",
        "oldbalanceDest",
        "newbalanceDest",
        "isFraud",
    }


def test_fingerprint_changes_with_data(tmp_path: Path) -> None:
    first = generate(GeneratorConfig(3_000, seed=1))
    second = first.copy()
    second.loc[5, "amount"] += 1
    a, b = fingerprint(first), fingerprint(second)
    assert a.rows == b.rows == 3_000
    assert a.sha256 != b.sha256
    assert fingerprint(first.copy()).sha256 == a.sha256


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fraudops generate"):
        load_training_frame(tmp_path / "absent.db")
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(DataError, match="no 'transactions' table"):
        load_training_frame(tmp_path / "empty.db")


def test_import_csv_reports_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    frame = generate(GeneratorConfig(50, seed=2))
    csv_path = tmp_path / "paysim.csv"
    frame.to_csv(csv_path, index=False)
    lines = csv_path.read_text().splitlines()
    good_row = lines[1].split(",")
    bad_type = good_row.copy()
    bad_type[1] = "BITCOIN"
    bad_amount = good_row.copy()
    bad_amount[2] = "-5"
    missing = good_row.copy()
    missing[4] = ""
    as_float_int = good_row.copy()
    as_float_int[0] = "3.0"  # PaySim exports sometimes write integers like this: accepted
    lines[3] = ",".join(bad_type)
    lines[10] = ",".join(bad_amount)
    lines[20] = ",".join(missing)
    lines[30] = ",".join(as_float_int)
    csv_path.write_text("\n".join(lines) + "\n")

    db = tmp_path / "imported.db"
    report = import_csv(csv_path, db, chunk_rows=7, max_reject_share=0.1)
    assert report.rows_imported == 47 == count_rows(db)
    assert [line for line, _ in report.bad_rows] == [4, 11, 21]
    reasons = [reason for _, reason in report.bad_rows]
    assert (
        reasons[0].startswith("type:") and reasons[1].startswith("amount:") and reasons[2].startswith("oldbalanceOrg:")
    )


def test_import_csv_rejects_wrong_header(tmp_path: Path) -> None:
    csv_path = tmp_path / "other.csv"
    csv_path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="header lacks"):
        import_csv(csv_path, tmp_path / "x.db")


def test_imported_real_schema_round_trips(tmp_path: Path) -> None:
    frame = generate(GeneratorConfig(200, seed=9))
    csv_path = tmp_path / "paysim.csv"
    frame.to_csv(csv_path, index=False)
    db = tmp_path / "imported.db"
    assert import_csv(csv_path, db).bad_rows == []
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM transactions ORDER BY rowid").fetchall()
    assert rows[0] == tuple(frame.iloc[0].tolist())
