"""The lake: three Apache Iceberg tables (zstd Parquet, partitioned by ``dt``) in one catalog (pyiceberg's
SQL catalog locally, the Glue Data Catalog in AWS), one layout in a local folder and in the data bucket.
One entry point, ``Lake``; the layout and the schemas are in ``fraudops.lake.schemas``.

    lake = Lake(settings)
    lake.table("transactions").snapshot().rows
    committed_files(settings, "transactions", newest_days=30)   # URIs a Spark or DuckDB job can read

- ``schemas``: the three tables' schemas, declared once and versioned, and the ``dt`` layout;
- ``catalog``: the Iceberg catalog and the tables' creation (the only module that builds them);
- ``fileio``: pyiceberg's FileIO for a lake in S3, over our boto3 client (moto included);
- ``storage``: a local folder or the data bucket (ranged reads in S3);
- ``table``: snapshots, the writer, the pruning reader, snapshot expiry and orphan cleanup;
- ``maintenance``: snapshot expiry and orphan cleanup, the curation schedule's last step;
- ``migrate``: the old (manifest) layout -> Iceberg tables (``fraudops lake migrate``);
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
from fraudops.lake.table import DataFile, LakeTable, Snapshot, TableWriter


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
        return LakeTable(self.settings, self.storage, table_schema(name))

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
    """The URIs (``s3://…`` or ``file://…``) of the Parquet files of ``table``'s current Iceberg snapshot,
    only the newest ``newest_days`` partitions when given (a training window), as pyiceberg plans them.
    Files a crashed or running writer left uncommitted are never in it. Each path holds its partition
    (``…/data/dt=YYYY-MM-DD/…``)."""
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
    "Snapshot",
    "TableSchema",
    "TableWriter",
    "committed_files",
    "dt_of_step",
    "dt_of_time",
    "first_step_of",
    "table_schema",
]
