"""The lake: Parquet tables (zstd, Hive-partitioned by ``dt``) with all-or-nothing commits, one layout
in a local folder and in the data bucket. One entry point, ``Lake``; the layout and the schemas are
in ``fraudops.lake.schemas``.

    lake = Lake(settings)
    lake.table("transactions").manifest().rows
    committed_files(settings, "transactions", newest_days=30)   # URIs a Spark or DuckDB job can read

- ``schemas``: the three tables' schemas, declared once and versioned, and the ``dt`` layout;
- ``storage``: a local folder or the data bucket (ranged reads in S3);
- ``table``: manifests, the writer, the pruning reader, vacuum;
- ``transactions``: PaySim rows in, the training window out (``read_training_data``);
- ``curation``: captured decisions + labels -> the labels and decisions tables -> matured training rows;
- ``decision_window``: the monitor's window of decisions, as columns.

Imports ``fraudops.core``, ``store`` and ``monitoring`` (capture and labels, which curation reads).
"""

from __future__ import annotations

from functools import cached_property

from fraudops.core.config import Settings
from fraudops.lake.schemas import (
    DECISIONS,
    LABELS,
    PARTITION_COLUMN,
    TABLES,
    TRANSACTIONS,
    TRANSACTIONS_EPOCH,
    TableSchema,
    dt_of_step,
    dt_of_time,
    first_step_of,
    table_schema,
)
from fraudops.lake.storage import LakeStorage, lake_storage
from fraudops.lake.table import DataFile, LakeTable, Manifest, TableWriter


class Lake:
    """The three tables at ``settings.lake_root_uri``."""

    def __init__(self, settings: Settings, storage: LakeStorage | None = None) -> None:
        self.settings = settings
        self._storage = storage

    @cached_property
    def storage(self) -> LakeStorage:
        return self._storage or lake_storage(self.settings)

    @property
    def root_uri(self) -> str:
        return self.storage.root_uri

    def table(self, name: str) -> LakeTable:
        return LakeTable(self.storage, table_schema(name))

    @property
    def transactions(self) -> LakeTable:
        return self.table(TRANSACTIONS.name)

    @property
    def decisions(self) -> LakeTable:
        return self.table(DECISIONS.name)

    @property
    def labels(self) -> LakeTable:
        return self.table(LABELS.name)

    def file_uris(self, table: str, newest_days: int | None = None) -> list[str]:
        return [self.storage.uri(f.key) for f in self.table(table).files(newest_days=newest_days)]


def committed_files(settings: Settings, table: str = "transactions", newest_days: int | None = None) -> list[str]:
    """The URIs (``s3://…`` or absolute paths) of the Parquet files of ``table``'s newest committed version,
    only the newest ``newest_days`` partitions when given (a training window). Files a crashed or running
    writer left uncommitted are never in it. Each path holds its partition (``…/dt=YYYY-MM-DD/…``)."""
    return Lake(settings).file_uris(table, newest_days)


__all__ = [
    "DECISIONS",
    "LABELS",
    "PARTITION_COLUMN",
    "TABLES",
    "TRANSACTIONS",
    "TRANSACTIONS_EPOCH",
    "DataFile",
    "Lake",
    "LakeStorage",
    "LakeTable",
    "Manifest",
    "TableSchema",
    "TableWriter",
    "committed_files",
    "dt_of_step",
    "dt_of_time",
    "first_step_of",
    "table_schema",
]
