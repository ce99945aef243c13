"""Issue 8: importing or generating data never destroys what was there, whatever goes wrong."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fraudops_dev.cli import main
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames
from fraudops_dev.importer import import_csv
from fraudops_dev.sqlite_io import count_rows, integrity_ok, write_transactions

from fraudops.core.errors import DataError
from fraudops.core.schema import COLUMNS

OLD_ROWS = 5_000


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    db = tmp_path / "fraud.db"
    write_transactions(db, generate_frames(GeneratorConfig(OLD_ROWS, seed=1)))
    return db


def paysim_csv(path: Path, rows: int = 300, seed: int = 3) -> Path:
    generate(GeneratorConfig(rows, seed=seed))[list(COLUMNS)].to_csv(path, index=False)
    return path


def assert_untouched(db: Path, clean: bool = True) -> None:
    assert count_rows(db) == OLD_ROWS
    assert integrity_ok(db)
    if clean:  # a killed writer's temporary file stays until the next writer removes it
        assert not list(db.parent.glob(f".{db.name}.tmp-*"))


@pytest.mark.parametrize("problem", ["header", "zip-of-two", "binary", "latin1", "missing", "too-many-rejects"])
def test_a_bad_file_leaves_the_old_table_intact(populated: Path, tmp_path: Path, problem: str) -> None:
    source = tmp_path / "input.csv"
    if problem == "header":
        source.write_text("a,b,c\n1,2,3\n")
    elif problem == "zip-of-two":
        source = tmp_path / "input.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("a.csv", "x")
            archive.writestr("b.csv", "y")
    elif problem == "binary":
        source.write_bytes(os.urandom(4096))
    elif problem == "latin1":
        text = paysim_csv(tmp_path / "ok.csv").read_text().replace("C", "\xc7", 5)
        source.write_bytes(text.encode("latin-1"))
    elif problem == "missing":
        source = tmp_path / "typo.csv"
    elif problem == "too-many-rejects":
        lines = paysim_csv(tmp_path / "ok.csv").read_text().splitlines()
        source.write_text("\n".join([lines[0]] + [line.replace(",", ",-", 3) for line in lines[1:]]) + "\n")
    with pytest.raises(DataError) as error:
        import_csv(source, populated)
    assert str(source.name) in str(error.value)
    assert_untouched(populated)


def test_the_cli_says_what_is_wrong_without_a_traceback(
    populated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-csv", str(tmp_path / "nope.csv"), "--db", str(populated)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    assert_untouched(populated)


@pytest.mark.parametrize("packing", ["csv", "gz", "zip"])
def test_what_kaggle_serves_is_accepted(populated: Path, tmp_path: Path, packing: str) -> None:
    plain = paysim_csv(tmp_path / "PS_20174392719_1491204439457_log.csv")
    source = plain
    if packing == "gz":
        source = tmp_path / "paysim.csv.gz"
        source.write_bytes(gzip.compress(plain.read_bytes()))
    elif packing == "zip":
        source = tmp_path / "archive.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.write(plain, plain.name)
    report = import_csv(source, populated)
    assert report.rows_imported == 300 and count_rows(populated) == 300 and integrity_ok(populated)


def test_wrong_field_counts_and_api_rules_are_rejects_with_reasons(populated: Path, tmp_path: Path) -> None:
    lines = paysim_csv(tmp_path / "ok.csv", rows=400).read_text().splitlines()
    lines[5] = lines[5] + ",extra"
    first = lines[9].split(",")
    first[4] = "-10.0"  # oldbalanceOrg: the API refuses negative balances
    lines[9] = ",".join(first)
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(lines) + "\n")
    report = import_csv(source, populated)
    assert (6, "12 fields, expected 11") in report.bad_rows
    assert (10, "oldbalanceOrg: '-10.0' is negative") in report.bad_rows
    assert report.rows_imported == 398 and count_rows(populated) == 398


def test_append_adds_new_steps_all_or_nothing(populated: Path, tmp_path: Path) -> None:
    frame = generate(GeneratorConfig(200, seed=5))[list(COLUMNS)]
    later = frame.assign(step=frame["step"] + 1000)
    later.to_csv(tmp_path / "later.csv", index=False)
    assert import_csv(tmp_path / "later.csv", populated, append=True).rows_imported == 200
    assert count_rows(populated) == OLD_ROWS + 200
    with pytest.raises(DataError, match="new steps only"):  # the same file again: old steps
        import_csv(tmp_path / "later.csv", populated, append=True)
    assert count_rows(populated) == OLD_ROWS + 200 and integrity_ok(populated)


def _kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline, "the writer never started"
        time.sleep(0.01)
    time.sleep(0.3)  # well into the write
    process.send_signal(signal.SIGKILL)
    process.wait()


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "fraudops_dev.cli", *args], stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_during_generate_leaves_the_old_table(populated: Path) -> None:
    process = _cli("generate", "--rows", "3000000", "--db", str(populated))
    _kill_when(process, lambda: any(populated.parent.glob(f".{populated.name}.tmp-*")))
    assert_untouched(populated, clean=False)
    write_transactions(populated, generate_frames(GeneratorConfig(OLD_ROWS, seed=2)))
    assert_untouched(populated)


@pytest.mark.slow
def test_sigkill_during_import_and_append_leaves_the_old_table(populated: Path, tmp_path: Path) -> None:
    big = paysim_csv(tmp_path / "big.csv", rows=400_000)
    process = _cli("import-csv", str(big), "--db", str(populated))
    _kill_when(process, lambda: any(populated.parent.glob(f".{populated.name}.tmp-*")))
    assert_untouched(populated, clean=False)

    frame = generate(GeneratorConfig(400_000, seed=4))[list(COLUMNS)]
    frame.assign(step=frame["step"] + 1000).to_csv(big, index=False)
    journal = populated.with_name(populated.name + "-journal")
    process = _cli("import-csv", str(big), "--append", "--db", str(populated))
    _kill_when(process, journal.exists)
    assert_untouched(populated)  # the hot journal was rolled back on open


# --- issue 22 item 5, issue 18 item 8: the rejects file ----------------------------------------------------


def rows_with_rejects(tmp_path: Path, rows: int = 400) -> Path:
    lines = paysim_csv(tmp_path / "ok.csv", rows=rows).read_text().splitlines()
    fields = lines[3].split(",")
    fields[1] = 'PAY"MENT, "quoted"'  # a value with a quote and a comma: one CSV field in the rejects file
    lines[3] = ",".join(fields[:1]) + ',"' + fields[1].replace('"', '""') + '",' + ",".join(fields[2:])
    lines.insert(6, "")  # a blank line is no row and no reject
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(lines) + "\n")
    return source


def read_rejects(path: Path) -> list[list[str]]:
    import csv

    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_the_rejects_file_is_csv_escaped_and_a_blank_line_is_no_reject(populated: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "fraud.rejects.csv"
    report = import_csv(rows_with_rejects(tmp_path), populated, rejects_path=rejects)
    assert len(report.bad_rows) == 1 and report.bad_rows[0][0] == 4
    assert report.rows_read == 400 and report.rows_imported == 399
    table = read_rejects(rejects)
    assert table[0] == ["line", "reason"] and len(table) == 2
    assert table[1][0] == "4" and 'PAY"MENT, "quoted"' in table[1][1]


def test_a_clean_import_clears_the_rejects_file_and_a_refused_one_writes_it(populated: Path, tmp_path: Path) -> None:
    rejects = tmp_path / "fraud.rejects.csv"
    import_csv(rows_with_rejects(tmp_path), populated, rejects_path=rejects)
    assert rejects.exists()
    import_csv(paysim_csv(tmp_path / "clean.csv"), populated, rejects_path=rejects)
    assert not rejects.exists()  # it described the earlier import
    lines = paysim_csv(tmp_path / "bad.csv", rows=50).read_text().splitlines()
    (tmp_path / "bad.csv").write_text("\n".join([lines[0]] + [line.replace(",", ",-", 3) for line in lines[1:]]))
    with pytest.raises(DataError, match=f"all listed in {rejects}"):
        import_csv(tmp_path / "bad.csv", populated, rejects_path=rejects)
    assert len(read_rejects(rejects)) == 51  # every rejected line, not only the 3 in the message
    assert count_rows(populated) == 300


def test_a_full_disk_writing_the_rejects_keeps_the_old_table(
    populated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import fraudops_dev.importer as importer

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(importer, "atomic_write", full)
    rejects = tmp_path / "fraud.rejects.csv"
    with pytest.raises(DataError, match="nothing was imported"):
        import_csv(rows_with_rejects(tmp_path), populated, rejects_path=rejects)
    assert_untouched(populated)
    assert not rejects.exists()


def test_a_full_disk_is_one_line_and_exit_2(
    populated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    import fraudops_dev.importer as importer

    def full(*args: object, **kwargs: object) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(importer, "write_transactions", full)
    assert main(["import-csv", str(paysim_csv(tmp_path / "ok.csv")), "--db", str(populated)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "OperationalError:" not in err
    first = err.splitlines()[0]
    assert first.startswith("fraudops import-csv: error: database or disk is full; nothing was changed")
    assert_untouched(populated)
