"""Import the real PaySim CSV (as Kaggle serves it: ``.csv``, ``.csv.gz`` or the ``.zip``) into the lake's
transactions table (or a SQLite file, the way out to other tools).

Every row passes the API's own value rules or is rejected with its line number and reason. The table
is replaced (or, with ``append``, extended) only after the whole file has been read within the reject
limit: a wrong file, a typo in the path or Ctrl-C leave the old data exactly as it was. The rejects file
(every rejected line and why, CSV) describes the last import attempt: it is written, atomically, before
the table changes (so a full disk fails the import, never half of it), also when the import is refused,
and removed by an import that rejects nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from fraudops.core.errors import DataError
from fraudops.core.files import atomic_write
from fraudops.core.schema import (
    COLUMNS,
    LABEL_COLUMNS,
    MAX_MONEY,
    MAX_NAME_LENGTH,
    MAX_STEP,
    MONEY_COLUMNS,
    TRANSACTION_TYPES,
    parse_flag,
    parse_integer,
)
from fraudops.lake import LakeTable
from fraudops.lake.transactions import write_transaction_frames
from fraudops_dev.sqlite_io import ProgressCallback, write_transactions


@dataclass
class ImportReport:
    rows_read: int = 0
    rows_imported: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def parse_row(row: dict[str, str]) -> tuple[object, ...]:
    """One CSV row as a typed tuple in schema order; ValueError names the first bad column."""
    values: list[object] = []
    for column in COLUMNS:
        raw = (row.get(column) or "").strip()
        if raw == "":
            raise ValueError(f"{column}: missing value")
        if column in LABEL_COLUMNS:
            values.append(parse_flag(column, raw))
        elif column == "step":
            number = parse_integer(raw)
            if number is None:
                raise ValueError(f"{column}: {raw!r} is not an integer")
            if not 0 <= number <= MAX_STEP:
                raise ValueError(f"step: {raw!r} is outside 0..{MAX_STEP}")
            values.append(number)
        elif column in MONEY_COLUMNS:
            try:
                amount = float(raw)
            except ValueError:
                raise ValueError(f"{column}: {raw!r} is not a number") from None
            if not math.isfinite(amount):
                raise ValueError(f"{column}: {raw!r} is not finite")
            if amount < 0:
                raise ValueError(f"{column}: {raw!r} is negative")
            if amount > MAX_MONEY:
                raise ValueError(f"{column}: {raw!r} is above {MAX_MONEY:g}")
            values.append(amount)
        elif column == "type":
            if raw not in TRANSACTION_TYPES:
                raise ValueError(f"type: {raw!r} is not one of {', '.join(TRANSACTION_TYPES)}")
            values.append(raw)
        else:
            if len(raw) > MAX_NAME_LENGTH:
                raise ValueError(f"{column}: longer than {MAX_NAME_LENGTH} characters")
            values.append(raw)
    return tuple(values)


def open_text(path: Path) -> IO[str]:
    """The CSV text inside ``path``, whether plain, gzip or a zip with one CSV (by content, not name)."""
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the CSV file (or its .csv.gz / .zip)")
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic.startswith(b"PK\x03\x04"):
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if m.lower().endswith(".csv") and not m.startswith("__MACOSX")]
        if len(members) != 1:
            raise DataError(f"{path}: expected one .csv inside the zip, found {len(members)} ({', '.join(members)})")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", newline="")
    if magic.startswith(b"\x1f\x8b"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _read_chunks(path: Path, report: ImportReport, chunk_rows: int) -> Iterator[list[tuple[object, ...]]]:
    line = 1
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle)
            header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{path}: not a PaySim CSV, the header lacks {', '.join(missing)} (expected: {','.join(COLUMNS)})"
                )
            chunk: list[tuple[object, ...]] = []
            for fields in reader:
                line = reader.line_num
                if not fields:  # a blank line: no row, nothing to reject
                    continue
                report.rows_read += 1
                if len(fields) != len(header):
                    report.bad_rows.append((line, f"{len(fields)} fields, expected {len(header)}"))
                    continue
                try:
                    chunk.append(parse_row(dict(zip(header, fields, strict=True))))
                except ValueError as error:
                    report.bad_rows.append((line, str(error)))
                    continue
                if len(chunk) >= chunk_rows:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text near line {line + 1} (is it the PaySim CSV?)") from None
    except (csv.Error, zipfile.BadZipFile, gzip.BadGzipFile, EOFError) as error:
        raise DataError(f"{path}: cannot be read as CSV near line {line + 1}: {error}") from None


def import_csv(
    csv_path: Path,
    target: Path | LakeTable,
    append: bool = False,
    max_reject_share: float = 0.01,
    chunk_rows: int = 200_000,
    progress: ProgressCallback | None = None,
    rejects_path: Path | None = None,
) -> ImportReport:
    """Import (or append) a PaySim CSV into ``target`` (a lake table, or a SQLite file), all or nothing.
    More than ``max_reject_share`` of rows rejected means a wrong file: nothing changes, and the error
    lists the first reasons (all of them in ``rejects_path``, when given)."""
    report = ImportReport()

    def checked_chunks() -> Iterator[list[tuple[object, ...]]]:
        yield from _read_chunks(csv_path, report, chunk_rows)
        if rejects_path is not None:  # before the table changes: a failure here leaves it as it was
            write_rejects(rejects_path, report.bad_rows)
        if report.rows_read == 0:
            raise DataError(f"{csv_path}: no data rows after the header; nothing was imported")
        if len(report.bad_rows) > max_reject_share * report.rows_read:
            first = "; ".join(f"line {n}: {reason}" for n, reason in report.bad_rows[:3])
            raise DataError(
                f"{csv_path}: {len(report.bad_rows):,} of {report.rows_read:,} rows rejected, more than "
                f"{max_reject_share:.0%}; nothing was imported ({first}"
                + (f"; all listed in {rejects_path})" if rejects_path is not None else ")")
            )

    if isinstance(target, LakeTable):
        frames = (pd.DataFrame(chunk, columns=list(COLUMNS)) for chunk in checked_chunks())
        report.rows_imported = write_transaction_frames(
            target, frames, append=append, progress=progress, source="import", properties={"imported": csv_path.name}
        )
    else:
        report.rows_imported = write_transactions(target, checked_chunks(), append=append, progress=progress)
    return report


def write_rejects(path: Path, bad_rows: list[tuple[int, str]]) -> None:
    """``line,reason`` as CSV (a reason quoting a value with ``"`` or ``,`` stays one field), replaced
    atomically; no rejects removes an older file, which belonged to an earlier import."""
    if not bad_rows:
        path.unlink(missing_ok=True)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line", "reason"])
    writer.writerows(bad_rows)
    try:
        atomic_write(path, buffer.getvalue().encode())
    except OSError as error:
        raise DataError(
            f"cannot write the rejects file {path} ({error.strerror or error}); nothing was imported"
        ) from None


def read_label_file(path: Path) -> list[tuple[str, bool]]:
    """Labels from a CSV (header with transaction_id and is_fraud) or JSON Lines; a bad line is an error
    naming it (labels are few and precious: nothing is skipped silently)."""
    import json

    labels: list[tuple[str, bool]] = []
    with open_text(path) as handle:
        text = handle.read()  # label files are small
    if text.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                    labels.append((str(record["transaction_id"]), _flag(record["is_fraud"])))
                except (ValueError, KeyError, TypeError) as error:
                    raise DataError(f"{path}: line {number}: {error}") from None
        return labels
    reader = csv.DictReader(io.StringIO(text))
    if not {"transaction_id", "is_fraud"} <= set(reader.fieldnames or []):
        raise DataError(f"{path}: the header needs transaction_id and is_fraud")
    for row in reader:
        try:
            labels.append((row["transaction_id"].strip(), _flag(row["is_fraud"])))
        except ValueError as error:
            raise DataError(f"{path}: line {reader.line_num}: {error}") from None
    return labels


def _flag(value: object) -> bool:
    text = str(value).strip().lower()
    if text in {"1", "true", "1.0"}:
        return True
    if text in {"0", "false", "0.0"}:
        return False
    raise ValueError(f"is_fraud must be 0/1 or true/false, got {value!r}")
