"""One lake table: an Apache Iceberg table (pyiceberg), its snapshots, a writer, a pruning reader, and
the maintenance Iceberg leaves to its users (snapshot expiry, orphan-file cleanup).

What Iceberg gives: one atomic commit per write (the catalog's pointer to a new metadata file), so every
engine that reads the table through a catalog (Athena, Spark, pyiceberg, us) sees the previous snapshot
or the new one, never a crashed writer's files; and time travel to any snapshot not yet expired.

What this module adds on top:

- **checks re-run on every commit attempt**: a writer commits ``build(current)``, which may refuse (the
  --append newer-steps rule, a curation checkpoint another run moved); pyiceberg's own retry would
  re-apply onto a newer snapshot without asking, so it is off (``catalog.TABLE_PROPERTIES``) and
  ``LakeTable.commit`` retries instead, a bounded number of times, re-running ``build``;
- **properties in the snapshot**: a writer's properties (checkpoints, ``max_step``) are one JSON value
  in the snapshot's summary, committed in the same commit as the rows (``snapshot(...).properties``);
- **the pruning reader**: pyiceberg plans the files (``plan_files`` with a ``dt`` filter: only the
  manifests' partition values are read), then our pyarrow reader reads only the columns asked for,
  straight from the objects (ranged reads on S3), ``dt`` from the partition value, ``type`` as a
  dictionary (against the old layout's reader: benchmarks/bench_lake.py, docs/lake.md);
- **maintenance**: ``expire_snapshots`` (pyiceberg's, older than the retention) and ``remove_orphans``
  (pyiceberg 0.12 has none): objects under the table no retained snapshot or metadata file names, older
  than ``ORPHAN_GRACE_SECONDS`` (a running writer's files are young).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.core.config import Settings
from fraudops.core.errors import DataError, StoreError
from fraudops.lake.schemas import PARTITION_COLUMN, TableSchema
from fraudops.lake.storage import LakeStorage

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile as IcebergDataFile
    from pyiceberg.table import Table

logger = logging.getLogger(__name__)

FLUSH_ROWS = 1_000_000  # rows buffered before data files are written (bounds a writer's memory)
# An object no retained snapshot names is deleted by ``remove_orphans`` only once it is this old: until
# then it may be a running writer's. docs/lake.md states it (a test pins the two).
ORPHAN_GRACE_SECONDS = 3600.0
COMMIT_ATTEMPTS = 8
PROPERTIES_KEY = "fraudops.properties"  # the writer's properties, one JSON value in the snapshot summary
OPERATION_KEY = "fraudops.operation"


class CommitOutcomeUnknownError(StoreError):
    """The catalog call failed in a way that does not say whether the commit landed: the writer must not
    delete its files (a snapshot may name them)."""


@dataclass(frozen=True)
class DataFile:
    """One committed Parquet file of a snapshot, as planned by pyiceberg."""

    key: str  # relative to the lake root
    dt: str
    rows: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "dt": self.dt, "rows": self.rows, "bytes": self.bytes}


@dataclass(frozen=True)
class Snapshot:
    """One committed state of a table (``snapshot_id`` None and ``version`` 0 before the first commit).
    ``version`` is the snapshot's sequence number: it grows by one per commit of the table."""

    table: str
    snapshot_id: int | None
    version: int
    rows: int
    committed_at: str = ""
    operation: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


class LakeTable:
    def __init__(self, settings: Settings, storage: LakeStorage, schema: TableSchema) -> None:
        self.settings = settings
        self.storage = storage
        self.schema = schema
        self.name = schema.name

    @property
    def location(self) -> str:
        return self.storage.uri(self.name)

    def iceberg(self) -> Table:
        """The Iceberg table, freshly loaded (its newest committed metadata), created at first use: for
        writers (a reader uses ``existing``, and never creates one)."""
        from fraudops.lake.catalog import load_or_create_table

        return load_or_create_table(self.settings, self.schema, self.location, before_create=self._refuse_old_layout)

    def existing(self) -> Table | None:
        """The Iceberg table freshly loaded, or None before its first write (an old-layout lake, or one
        another catalog tracks, is refused as by ``iceberg``)."""
        from fraudops.lake.catalog import load_table

        table = load_table(self.settings, self.schema)
        if table is None:
            self._refuse_old_layout()
        return table

    def _refuse_old_layout(self) -> None:
        """Creating the table where one already is would hide its rows: a lake of the old layout (migrate
        it first), or an Iceberg table another catalog tracks (two catalogs over one location diverge)."""
        if self.storage.list_keys(f"{self.name}/_manifests/0"):
            raise DataError(
                f"the lake's {self.name} table at {self.location} is in the old (pre-Iceberg) layout: run "
                "`fraudops lake migrate` once (docs/lake.md)"
            )
        if [k for k in self.storage.list_keys(f"{self.name}/metadata/") if k.endswith(".metadata.json")]:
            raise DataError(
                f"{self.location} already holds an Iceberg table that the catalog {self.settings.lake_catalog} "
                f"({self.settings.lake_catalog_database_uri if self.settings.lake_catalog == 'sql' else 'Glue'}) "
                "does not know: another catalog tracks it (FRAUDOPS_LAKE_CATALOG / FRAUDOPS_LAKE_CATALOG_URI / "
                "FRAUDOPS_STATE_DIR differ from its writer's); nothing was created"
            )

    # --- reading ---------------------------------------------------------------------------------

    def snapshot(self, snapshot_id: int | None = None) -> Snapshot:
        """The newest committed snapshot, or ``snapshot_id`` (time travel: any snapshot not yet expired)."""
        return self._snapshot_of(self.existing(), snapshot_id)

    def _snapshot_of(self, table: Table | None, snapshot_id: int | None = None) -> Snapshot:
        if table is None:
            snap = None
        else:
            snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
        if table is None or snap is None:
            if snapshot_id is not None:
                raise DataError(f"the lake's {self.name} table has no snapshot {snapshot_id} (expired, or never)")
            return Snapshot(self.name, None, 0, 0)
        summary = snap.summary
        return Snapshot(
            table=self.name,
            snapshot_id=snap.snapshot_id,
            version=int(snap.sequence_number or 0),
            rows=int(summary["total-records"] or 0) if summary else 0,
            committed_at=datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds"),
            operation=str(summary[OPERATION_KEY] or summary.operation.value) if summary else "",
            properties=_properties(table, snap),
        )

    def files(
        self,
        newest_days: int | None = None,
        dts: Iterable[str] | None = None,
        first_dt: str | None = None,
        last_dt: str | None = None,
        snapshot_id: int | None = None,
    ) -> list[DataFile]:
        """The files of the newest snapshot (or ``snapshot_id``), optionally only the given partitions,
        those between ``first_dt`` and ``last_dt``, or the newest ``newest_days`` partitions: planned by
        pyiceberg from the manifests' partition values (no data file opened)."""
        table = self.existing()
        if table is None:
            return []
        return self._planned(table, snapshot_id or _current_id(table), newest_days, dts, first_dt, last_dt)

    def _planned(
        self,
        table: Table | None,
        snapshot_id: int | None,
        newest_days: int | None = None,
        dts: Iterable[str] | None = None,
        first_dt: str | None = None,
        last_dt: str | None = None,
    ) -> list[DataFile]:
        from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, In, LessThanOrEqual

        if table is None or snapshot_id is None:
            return []
        row_filter: BooleanExpression = AlwaysTrue()
        if dts is not None:
            row_filter = In(term=PARTITION_COLUMN, literals=set(dts))
        if first_dt is not None:
            row_filter = And(row_filter, GreaterThanOrEqual(term=PARTITION_COLUMN, value=first_dt))
        if last_dt is not None:
            row_filter = And(row_filter, LessThanOrEqual(term=PARTITION_COLUMN, value=last_dt))
        tasks = table.scan(row_filter=row_filter, snapshot_id=snapshot_id).plan_files()
        files = [
            DataFile(
                self.storage.key_of(t.file.file_path),
                str(t.file.partition[0]),
                t.file.record_count,
                t.file.file_size_in_bytes,
            )
            for t in tasks
        ]
        if newest_days:
            keep = set(sorted({f.dt for f in files})[-newest_days:])
            files = [f for f in files if f.dt in keep]
        return sorted(files, key=lambda f: (f.dt, f.key))

    def snapshot_and_files(
        self, newest_days: int | None = None, snapshot_id: int | None = None
    ) -> tuple[Snapshot, list[DataFile]]:
        """One snapshot and its files, read from one load of the table (a commit in between cannot mix them)."""
        table = self.existing()
        snap = self._snapshot_of(table, snapshot_id)
        return snap, self._planned(table, snap.snapshot_id, newest_days)

    def read(self, columns: Sequence[str] | None = None, files: Sequence[DataFile] | None = None) -> pa.Table:
        """The committed rows of ``files`` (default: all of the newest snapshot), only ``columns`` (column
        pruning: the other column chunks are never read), with ``dt`` from each file's partition."""
        chosen = list(self.files() if files is None else files)
        wanted = list(columns) if columns is not None else [*self.schema.column_names, PARTITION_COLUMN]
        stored = [c for c in wanted if c != PARTITION_COLUMN]
        unknown = [c for c in stored if c not in self.schema.column_names]
        if unknown:
            raise DataError(f"the lake's {self.name} table has no column {', '.join(unknown)}")
        full = self.schema.arrow_schema.append(pa.field(PARTITION_COLUMN, pa.string(), nullable=False))
        if not chosen:
            return full.empty_table().select(wanted)
        workers = 2 if self.storage.local_path(chosen[0].key) else 8  # S3: requests in flight at once
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda f: self._read_file(f, stored, PARTITION_COLUMN in wanted), chosen))
        return pa.concat_tables(parts).select(wanted)

    def _read_file(self, data_file: DataFile, columns: list[str], with_dt: bool) -> pa.Table:
        try:
            with self.storage.open_input(data_file.key) as handle:
                # Low-cardinality text (``type``) stays dictionary-encoded: pandas gets a categorical, never
                # millions of Python strings.
                dictionary = [c for c in columns if c in self.schema.dictionary_columns]
                table = pq.ParquetFile(handle, read_dictionary=dictionary).read(columns=columns)
        except (OSError, pa.ArrowInvalid) as error:
            raise StoreError(f"cannot read {self.storage.uri(data_file.key)}: {error}") from error
        wanted = pa.schema([self._read_field(c) for c in columns])
        if table.schema != wanted:
            table = table.cast(wanted)  # Iceberg's int and µs timestamps back to the declared int8 and ms
        if with_dt:
            dt = pa.repeat(pa.scalar(data_file.dt, pa.string()), len(table))
            table = table.append_column(pa.field(PARTITION_COLUMN, pa.string(), nullable=False), dt)
        return table

    def _read_field(self, name: str) -> pa.Field:
        field = self.schema.arrow_schema.field(name)
        if name in self.schema.dictionary_columns:
            return field.with_type(pa.dictionary(pa.int32(), field.type))
        return field.remove_metadata()

    # --- writing ---------------------------------------------------------------------------------

    def writer(self, operation: str = "append") -> TableWriter:
        return TableWriter(self, operation)

    def commit(
        self,
        build: Callable[[Snapshot], tuple[list[IcebergDataFile], dict[str, Any]] | None],
        operation: Literal["append", "replace"],
    ) -> Snapshot | None:
        """Commit the data files and properties ``build(current)`` returns (appended, or replacing every
        file of ``current``), or nothing if it returns None. When another writer committed first, the
        commit fails as a whole (the catalog's optimistic check) and is retried on the newer snapshot,
        ``build`` re-run on it (so its checks see what the other writer did)."""
        from pyiceberg.exceptions import CommitFailedException

        for attempt in range(COMMIT_ATTEMPTS):
            table = self.iceberg()
            current = self._snapshot_of(table)
            built = build(current)
            if built is None:
                return None
            added, properties = built
            summary = {PROPERTIES_KEY: json.dumps(properties, sort_keys=True, default=str), OPERATION_KEY: operation}
            transaction = table.transaction()
            replaced = (
                [t.file for t in table.scan().plan_files()] if operation == "replace" and current.snapshot_id else []
            )
            if replaced:
                with transaction.update_snapshot(snapshot_properties=summary).overwrite() as overwrite:
                    for data_file in replaced:
                        overwrite.delete_data_file(data_file)
                    for data_file in added:
                        overwrite.append_data_file(data_file)
            else:
                with transaction.update_snapshot(snapshot_properties=summary).fast_append() as append:
                    for data_file in added:
                        append.append_data_file(data_file)
            try:
                committed = transaction.commit_transaction()
            except CommitFailedException as error:  # the catalog refused it: nothing landed
                logger.info("commit to %s lost a race (attempt %d): %s", self.name, attempt + 1, error)
                time.sleep(random.uniform(0.01, 0.05 * 2**attempt))
                continue
            except BaseException as error:  # a lost answer, a kill signal: it may have landed
                raise CommitOutcomeUnknownError(
                    f"the commit to the lake's {self.name} table may or may not have landed ({error!r}); its files "
                    "are kept (the maintenance deletes them if no snapshot names them)"
                ) from error
            return self._snapshot_of(committed)
        raise StoreError(f"could not commit to the lake's {self.name} table: {COMMIT_ATTEMPTS} concurrent commits")

    # --- maintenance -----------------------------------------------------------------------------

    def expire_snapshots(self, older_than: timedelta) -> int:
        """Expire the snapshots older than ``older_than`` (never the current one, nor a tagged one):
        time travel to them ends; their files go with the next ``remove_orphans``."""
        table = self.existing()
        if table is None:
            return 0
        cutoff = datetime.now(UTC) - older_than
        before = len(table.metadata.snapshots)
        current = _current_id(table)
        if not [
            s
            for s in table.metadata.snapshots
            if s.snapshot_id != current and s.timestamp_ms < cutoff.timestamp() * 1000
        ]:
            return 0
        table.maintenance.expire_snapshots().older_than(cutoff).commit()
        return before - len(self.iceberg().metadata.snapshots)

    def remove_orphans(self, grace_seconds: float = ORPHAN_GRACE_SECONDS) -> int:
        """Delete the objects under the table that no retained snapshot and no metadata file names (a
        crashed writer's files, an expired snapshot's, a lost commit's manifests, the old layout's after
        a migration), once older than ``grace_seconds``. Returns how many went. A table never written
        is left alone (its folder may hold an old-layout lake awaiting migration)."""
        table = self.existing()
        if table is None:
            return 0
        referenced = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
        manifests_seen: set[str] = set()
        for snap in table.metadata.snapshots:
            referenced.add(snap.manifest_list)
            for manifest in snap.manifests(table.io):
                if manifest.manifest_path in manifests_seen:
                    continue
                manifests_seen.add(manifest.manifest_path)
                referenced |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io)}
        referenced |= manifests_seen
        keys = {self.storage.key_of(uri) for uri in referenced if self.storage.contains(uri)}
        cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
        doomed = [
            key for key, modified in self.storage.list_keys_modified(f"{self.name}/")
            if key not in keys and modified < cutoff
        ]  # fmt: skip
        self.storage.delete(doomed)
        return len(doomed)


def _current_id(table: Table) -> int | None:
    snap = table.current_snapshot()
    return snap.snapshot_id if snap else None


def _properties(table: Table, snap: Any) -> dict[str, Any]:
    """The properties of our newest commit at or before ``snap`` (another engine's commit, e.g. Athena's
    OPTIMIZE, carries none: ours before it still hold)."""
    seen = 0
    while snap is not None and seen < 1000:
        value = snap.summary[PROPERTIES_KEY] if snap.summary else None
        if value is not None:
            return dict(json.loads(value))
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
        seen += 1
    return {}


class TableWriter:
    """Buffers rows, writes them as the table's data files (pyiceberg's writer: zstd Parquet, one folder
    per partition), and commits them in one Iceberg commit.

    ``append``: the new files join the current ones. ``replace``: they become the whole table. Nothing is
    visible until ``commit``; a writer that is abandoned (exception, kill) commits nothing, and its files
    are orphans (``abort`` deletes them; after a kill, ``remove_orphans``).
    """

    def __init__(self, table: LakeTable, operation: str) -> None:
        if operation not in ("append", "replace"):
            raise ValueError(f"operation must be append or replace, not {operation!r}")
        self.table = table
        self.operation: Literal["append", "replace"] = "append" if operation == "append" else "replace"
        self._iceberg = table.iceberg()
        self._uuid = uuid.uuid4()
        self._counter = itertools.count(0)
        self._buffers: list[pa.Table] = []
        self._buffered = 0
        self.data_files: list[IcebergDataFile] = []
        self.rows = 0

    @cached_property
    def _write_schema(self) -> pa.Schema:
        """The Arrow form of the Iceberg schema (int8 -> int32, ms -> µs timestamps, ``dt`` last)."""
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        return schema_to_pyarrow(self._iceberg.schema(), include_field_ids=False)

    def write(self, data: pa.Table, dts: Sequence[str] | pa.Array) -> None:
        """Rows in the table's schema, with each row's partition in ``dts``."""
        data = self._conform(data)
        dt_array = pa.array(dts, type=pa.string()) if not isinstance(dts, pa.Array) else dts
        if len(dt_array) != len(data):
            raise ValueError("one partition per row")
        if len(data) == 0:
            return
        data = data.append_column(PARTITION_COLUMN, dt_array.cast(pa.string()))
        try:
            data = data.cast(self._write_schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise DataError(f"rows do not fit the lake's {self.table.name} schema: {error}") from error
        self._buffers.append(data)
        self._buffered += len(data)
        self.rows += len(data)
        if self._buffered >= FLUSH_ROWS:
            self.flush()

    def _conform(self, data: pa.Table) -> pa.Table:
        schema = self.table.schema.arrow_schema
        missing = [name for name in schema.names if name not in data.column_names]
        if missing:
            raise DataError(f"rows for the lake's {self.table.name} table lack the columns {', '.join(missing)}")
        try:
            return data.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise DataError(f"rows do not fit the lake's {self.table.name} schema: {error}") from error

    def flush(self) -> None:
        """Write what is buffered as data files (not committed: no reader sees them yet)."""
        if not self._buffers:
            return
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        data = pa.concat_tables(self._buffers)
        self._buffers.clear()
        self._buffered = 0
        written = _dataframe_to_data_files(
            table_metadata=self._iceberg.metadata, df=data, io=self._iceberg.io, write_uuid=self._uuid,
            counter=self._counter,
        )  # fmt: skip
        for data_file in written:
            self.data_files.append(data_file)

    def commit(
        self,
        properties: dict[str, Any] | None = None,
        check: Callable[[Snapshot], None] | None = None,
    ) -> Snapshot:
        """Write what is buffered, then commit. ``check(current)`` may refuse (raise) against the snapshot
        being committed onto (e.g. --append's newer-steps rule), leaving the table as it was; it runs
        again on every retry. An append carries the current properties forward (updated by ``properties``);
        a replace starts from ``properties`` alone."""
        self.flush()

        def build(current: Snapshot) -> tuple[list[IcebergDataFile], dict[str, Any]]:
            if check is not None:
                check(current)
            merged = {**current.properties, **(properties or {})} if self.operation == "append" else properties or {}
            return self.data_files, merged

        try:
            snapshot = self.table.commit(build, self.operation)
        except CommitOutcomeUnknownError:
            self.data_files = []  # perhaps committed: never delete them here
            raise
        except BaseException:
            self.abort()
            raise
        assert snapshot is not None
        return snapshot

    def abort(self) -> None:
        """Delete the files written so far (best effort: ``remove_orphans`` gets what a kill leaves)."""
        self._buffers.clear()
        for data_file in self.data_files:
            try:
                self._iceberg.io.delete(data_file.file_path)
            except Exception as error:  # the commit's own error is the one raised; say what stays behind
                logger.warning("aborted commit left %s behind (remove_orphans deletes it later): %s",
                               data_file.file_path, error)  # fmt: skip
        self.data_files = []
