"""The transactions table in PaySim terms: write batches of rows (all or nothing), read a training
window (column and partition pruning), and describe what was read (the dataset MLflow records)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudops.core.errors import DataError
from fraudops.core.schema import COLUMNS, LABEL, RAW_FEATURE_COLUMNS, TRANSACTION_TYPES
from fraudops.lake.schemas import DATE_FORMAT, TRANSACTIONS, TRANSACTIONS_EPOCH
from fraudops.lake.table import DataFile, LakeTable, Snapshot

ProgressCallback = Callable[[int], None]
ENTITY_COLUMNS = ("nameOrig", "nameDest")  # read only for the entity aggregates
MAX_STEP_PROPERTY = "max_step"


def step_partitions(steps: np.ndarray) -> pa.Array:
    """Each row's ``dt`` from its step (vectorised: one date string per distinct day)."""
    days = np.asarray(steps, dtype=np.int64) // 24
    unique, inverse = np.unique(days, return_inverse=True)
    names = np.array(
        [(TRANSACTIONS_EPOCH + timedelta(days=int(d))).strftime(DATE_FORMAT) for d in unique], dtype=object
    )
    return pa.array(names[inverse], type=pa.string())


def frame_to_arrow(frame: pd.DataFrame, source: str) -> pa.Table:
    """PaySim rows (a DataFrame with at least COLUMNS) as the table's Arrow rows."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"transactions lack the columns {', '.join(missing)}")
    data = {column: frame[column].to_numpy() for column in COLUMNS}
    data["type"] = frame["type"].astype(str).to_numpy()
    data["source"] = np.full(len(frame), source, dtype=object)
    ids = frame["transaction_id"] if "transaction_id" in frame.columns else pd.Series([None] * len(frame))
    data["transaction_id"] = ids.astype(object).where(ids.notna(), None).to_numpy()
    return pa.table(data)


def write_transaction_frames(
    table: LakeTable,
    batches: Iterable[pd.DataFrame],
    append: bool = False,
    progress: ProgressCallback | None = None,
    source: str = "import",
    properties: dict[str, Any] | None = None,
) -> int:
    """Write PaySim rows all or nothing: nothing is visible until the one Iceberg commit at the end, and
    an exception, Ctrl-C or ``kill -9`` before it leaves the table exactly as it was.

    ``append`` adds rows whose steps are all newer than the table's (history is not rewritten); without
    it the rows replace the table."""
    if table.name != TRANSACTIONS.name:
        raise ValueError("write_transaction_frames writes the transactions table")
    current = table.snapshot()
    floor = _max_step(current) if append else None
    if append and current.version == 0:
        raise DataError("--append needs existing transactions in the lake: import or generate some first")
    writer = table.writer("append" if append else "replace")
    max_step = floor if floor is not None else -1
    try:
        for batch in batches:
            if len(batch) == 0:
                continue
            steps = batch["step"].to_numpy()
            if floor is not None and int(steps.min()) <= floor:
                raise DataError(
                    f"--append adds new steps only: this data has step {int(steps.min())}, but the table already "
                    f"holds steps up to {floor}; nothing was added"
                )
            writer.write(frame_to_arrow(batch, source), step_partitions(steps))
            max_step = max(max_step, int(steps.max()))
            if progress:
                progress(writer.rows)

        def check(latest: Snapshot) -> None:
            if floor is not None and _max_step(latest) != floor:
                raise DataError("another writer appended transactions meanwhile; nothing was added, run it again")

        writer.commit({**(properties or {}), MAX_STEP_PROPERTY: max_step}, check=check)
    except BaseException:
        writer.abort()
        raise
    return writer.rows


def _max_step(snapshot: Snapshot) -> int | None:
    value = snapshot.properties.get(MAX_STEP_PROPERTY)
    return None if value is None else int(value)


# --- reading for training -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """The rows a training run read, and exactly where they came from (for ``mlflow.log_input``)."""

    frame: pd.DataFrame
    table_version: int
    files: list[DataFile]
    uris: list[str]
    partitions: list[str] = field(default_factory=list)
    snapshot_id: int | None = None  # the Iceberg snapshot read: `fraudops train --snapshot` reads it again
    table_uri: str = ""

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def fraud_rows(self) -> int:
        return int(self.frame[LABEL].sum())

    def digest(self) -> str:
        return files_digest(self.files)

    def describe(self) -> dict[str, Any]:
        return describe_dataset(self.table_version, self.files, self.uris, self.rows, self.fraud_rows,
                                self.snapshot_id, self.table_uri)  # fmt: skip


def files_digest(files: Iterable[DataFile]) -> str:
    """Content digest of committed files (each file is immutable: key + size + rows)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.key}\x1f{f.bytes}\x1f{f.rows}\n".encode())
    return digest.hexdigest()


def describe_dataset(
    table_version: int,
    files: list[DataFile],
    uris: list[str],
    rows: int,
    fraud_rows: int,
    snapshot_id: int | None = None,
    table_uri: str = "",
) -> dict[str, Any]:
    """What a training run read, as ``mlflow.log_input`` records it: the same for every engine. The table
    and its Iceberg snapshot id name exactly these rows (time travel), as long as the snapshot is kept."""
    return {
        "table": TRANSACTIONS.name,
        "table_uri": table_uri,
        "snapshot_id": snapshot_id,
        "table_version": table_version,
        "source_uris": uris,
        "partitions": sorted({f.dt for f in files}),
        "rows": rows,
        "fraud_rows": fraud_rows,
        "digest": files_digest(files),
    }


def read_training_data(
    table: LakeTable, newest_days: int | None = None, snapshot_id: int | None = None, aggregates: bool = False
) -> TrainingData:
    """The model's columns and the label for the newest ``newest_days`` partitions (all when None or 0)
    of the current snapshot, or of ``snapshot_id`` (a recorded run's rows again), ordered by step (the
    out-of-time order), ``type`` categorical. pyiceberg plans the files; they are read straight from the
    Parquet objects (ranged reads of the columns asked for; no file is copied first). ``aggregates``: also
    read the account names and add the entity aggregates (``fraudops.aggregates``), point in time over
    the rows read (an account's history before the window is not in them)."""
    snapshot, files = table.snapshot_and_files(newest_days=newest_days or None, snapshot_id=snapshot_id)
    if not files:
        raise DataError(
            f"the lake at {table.storage.root_uri} has no transactions: run `fraudops generate` or "
            "`fraudops import-csv` (or `fraudops import <fraud.db>`) first"
        )
    columns = [*RAW_FEATURE_COLUMNS, LABEL, *(ENTITY_COLUMNS if aggregates else ())]
    arrow = table.read(columns=columns, files=files)
    # Names as categoricals: a code per row, not a Python string (aggregates only need equality).
    frame = arrow.to_pandas(split_blocks=True, self_destruct=True, strings_to_categorical=aggregates)
    del arrow
    # The dtypes the models' signatures were inferred with (int64, as SQLite gave them): Parquet keeps the
    # narrow storage types, training sees the usual ones.
    frame = frame.astype({"step": "int64", LABEL: "int64"})
    frame["type"] = frame["type"].cat.set_categories(list(TRANSACTION_TYPES))
    if not frame["step"].is_monotonic_increasing:  # written in step order: usually already sorted
        frame = frame.sort_values("step", kind="stable", ignore_index=True)
    if len(frame) == 0:
        raise DataError(f"the lake's transactions table at {table.storage.root_uri} is empty")
    if aggregates:
        from fraudops.aggregates import with_aggregates

        frame = with_aggregates(frame)
    return TrainingData(
        frame=frame,
        table_version=snapshot.version,
        files=files,
        uris=[table.storage.uri(f.key) for f in files],
        partitions=sorted({f.dt for f in files}),
        snapshot_id=snapshot.snapshot_id,
        table_uri=table.location,
    )
