"""`fraudops lake migrate`: a lake of the old layout (our own manifests, before issue 29) -> Iceberg tables.

For each table with an old manifest (``<table>/_manifests/<version>.json``): the rows of its newest
committed version (never a crashed writer's orphans) are rewritten as Iceberg data files (with ``dt``,
in the Iceberg schema) and the table is **created with them in one catalog commit** (pyiceberg's create
table transaction): a crash or ``kill -9`` before it leaves no table at all, so the next run starts
over and every row lands once; after it, the snapshot records the manifest version it came from
(``migrated_from_manifest_version`` in its properties, beside the old ones: curation's checkpoints,
``max_step``), and a rerun skips the table. Then the row counts and an order-independent digest of the
rows (old files vs the new snapshot's) are compared.

The old objects stay where they were: the next maintenance run deletes them (they are orphans of the
new table, older than the grace).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.lake import TABLES, Lake, LakeTable
from fraudops.lake.schemas import PARTITION_COLUMN, TableSchema
from fraudops.lake.table import FLUSH_ROWS, OPERATION_KEY, PROPERTIES_KEY

log = logging.getLogger(__name__)

MIGRATED_FROM = "migrated_from_manifest_version"
OLD_MANIFESTS = "_manifests"


@dataclass
class TableMigration:
    table: str
    outcome: str  # migrated | already migrated | nothing to migrate
    manifest_version: int = 0
    rows: int = 0
    files: int = 0
    digest: str = ""


def _old_manifest(table: LakeTable) -> dict[str, Any] | None:
    """The newest readable old manifest of ``table`` (what the old readers read), or None."""
    keys = [k for k in table.storage.list_keys(f"{table.name}/{OLD_MANIFESTS}/") if k.endswith(".json")]
    for key in reversed(keys):
        data = table.storage.get(key)
        if data is not None:
            body: dict[str, Any] = json.loads(data)
            if int(body.get("schema_version", 0)) > table.schema.version:
                raise DataError(
                    f"{table.storage.uri(key)} has schema version {body['schema_version']}: upgrade fraudops"
                )
            return body
    return None


def _read_old(table: LakeTable, entry: dict[str, Any]) -> pa.Table:
    with table.storage.open_input(str(entry["key"])) as handle:
        data = pq.read_table(handle)
    missing = [c for c in table.schema.column_names if c not in data.column_names]
    if missing:
        raise DataError(f"{table.storage.uri(entry['key'])} lacks the columns {', '.join(missing)}")
    return data.select(table.schema.column_names).cast(table.schema.arrow_schema)


class RowDigest:
    """An order-independent digest of rows (files and row groups differ between the layouts): the sum and
    the xor of a 64-bit hash per row, with the row count."""

    def __init__(self) -> None:
        self.rows, self._sum, self._xor = 0, 0, 0

    def add(self, data: pa.Table, schema: TableSchema) -> None:
        frame = data.select([*schema.column_names, PARTITION_COLUMN]).to_pandas()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.CategoricalDtype):
                frame[column] = frame[column].astype(str)
        hashes = pd.util.hash_pandas_object(frame.astype({c: "int64" for c in ("isFraud", "isFlaggedFraud", "step")
                                                          if c in frame.columns}), index=False)  # fmt: skip
        values = hashes.to_numpy(dtype="uint64")
        self.rows += len(values)
        self._sum = (self._sum + int(values.sum(dtype="uint64"))) % 2**64
        self._xor ^= int(np.bitwise_xor.reduce(values)) if len(values) else 0

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.rows}:{self._sum}:{self._xor}".encode()).hexdigest()


def _with_dt(data: pa.Table, dt: str) -> pa.Table:
    return data.append_column(PARTITION_COLUMN, pa.array([dt] * len(data), type=pa.string()))


def _migrated_from(table: LakeTable) -> int | None:
    iceberg = table.iceberg()
    for snap in iceberg.metadata.snapshots:
        value = snap.summary[PROPERTIES_KEY] if snap.summary else None
        if value and MIGRATED_FROM in json.loads(value):
            return int(json.loads(value)[MIGRATED_FROM])
    return None


def migrate_table(settings: Settings, table: LakeTable) -> TableMigration:
    from pyiceberg.exceptions import TableAlreadyExistsError
    from pyiceberg.io.pyarrow import _dataframe_to_data_files, schema_to_pyarrow

    from fraudops.lake.catalog import (
        SCHEMA_VERSION_PROPERTY,
        TABLE_PROPERTIES,
        iceberg_schema,
        lake_catalog,
        partition_spec,
        table_exists,
    )

    manifest = _old_manifest(table)
    if manifest is None:
        return TableMigration(table.name, "nothing to migrate")
    version = int(manifest["version"])
    if table_exists(settings, table.name):
        done = _migrated_from(table)
        if done is None:
            raise DataError(
                f"the lake's {table.name} table already exists as an Iceberg table that no migration made, beside "
                f"the old layout's manifests at {table.location}: nothing was changed; move the old files away"
            )
        return TableMigration(table.name, "already migrated", done, table.snapshot().rows)
    entries = sorted(manifest["files"], key=lambda e: (e["dt"], e["key"]))
    catalog = lake_catalog(settings)
    if settings.lake_catalog == "sql":
        catalog.create_namespace_if_not_exists(settings.lake_database)
    transaction = catalog.create_table_transaction(
        (settings.lake_database, table.name),
        iceberg_schema(table.schema),
        location=table.location,
        partition_spec=partition_spec(table.schema),
        properties={**TABLE_PROPERTIES, SCHEMA_VERSION_PROPERTY: str(table.schema.version)},
    )
    metadata, io = transaction.table_metadata, transaction._table.io
    write_schema = schema_to_pyarrow(metadata.schema(), include_field_ids=False)
    write_uuid, counter = uuid.uuid4(), itertools.count(0)
    before, data_files, buffer, buffered = RowDigest(), [], list[pa.Table](), 0
    for entry in entries:
        data = _with_dt(_read_old(table, entry), str(entry["dt"]))
        before.add(data, table.schema)
        buffer.append(data.cast(write_schema))
        buffered += len(data)
        if buffered >= FLUSH_ROWS:
            data_files += list(_dataframe_to_data_files(metadata, pa.concat_tables(buffer), io, write_uuid, counter))
            buffer, buffered = [], 0
    if buffer:
        data_files += list(_dataframe_to_data_files(metadata, pa.concat_tables(buffer), io, write_uuid, counter))
    properties = {**manifest.get("properties", {}), MIGRATED_FROM: version}
    summary = {PROPERTIES_KEY: json.dumps(properties, sort_keys=True, default=str), OPERATION_KEY: "migrate"}
    with transaction.update_snapshot(snapshot_properties=summary).fast_append() as append:
        for data_file in data_files:
            append.append_data_file(data_file)
    try:
        transaction.commit_transaction()  # the table appears with every row, or not at all
    except TableAlreadyExistsError:
        for data_file in data_files:
            io.delete(data_file.file_path)
        raise DataError(f"another migration created the {table.name} table meanwhile: run it again to check") from None
    after = RowDigest()
    for planned in table.files():
        after.add(table.read(files=[planned]), table.schema)
    if (after.rows, after.hexdigest()) != (before.rows, before.hexdigest()) or before.rows != _rows(entries):
        raise DataError(
            f"the migrated {table.name} table holds {after.rows} rows (digest {after.hexdigest()[:12]}), the old "
            f"manifest {before.rows} of {_rows(entries)} (digest {before.hexdigest()[:12]}): investigate before use"
        )
    log.info("migrated %s: %d rows from manifest version %d", table.name, after.rows, version)
    return TableMigration(table.name, "migrated", version, after.rows, len(entries), after.hexdigest())


def _rows(entries: Iterable[dict[str, Any]]) -> int:
    return sum(int(e["rows"]) for e in entries)


def migrate_lake(settings: Settings) -> list[dict[str, Any]]:
    """Every table of the lake at ``settings``; idempotent (see the module doc)."""
    lake = Lake(settings)
    return [asdict(migrate_table(settings, lake.table(name))) for name in TABLES]
