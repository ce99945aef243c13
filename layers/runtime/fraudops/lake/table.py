"""One lake table: its committed manifest, an all-or-nothing writer and a pruning reader.

The commit protocol (the same on S3 and in a folder):

1. a writer puts new Parquet objects under ``<table>/dt=.../part-<commit id>-<n>.parquet``; nobody
   reads them yet, because readers read only the files a manifest names;
2. it then creates ``<table>/_manifests/<version + 1>.json``, naming every file of the new state, with a
   create-if-absent write. That single write is the commit: before it the previous version is the
   table, exactly; after it the new one is. A crash or ``kill -9`` before it leaves orphan objects,
   which no manifest reader sees; a writer that lost the race to another one retries on the newer version.

Athena (partition projection) reads every object under a partition, not the manifest. ``vacuum`` runs
only after a replacing commit (of ``transactions``: the other tables are append-only): it deletes the
replaced version's files at once and orphans older than ``ORPHAN_GRACE_SECONDS``, so a folder reader
sees orphans until such a vacuum (docs/lake.md says how long; the Iceberg move, issue 29, removes this).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.core.errors import DataError, StoreError
from fraudops.lake.schemas import COMPRESSION, PARTITION_COLUMN, SCHEMA_VERSION_KEY, TableSchema, partition_dir
from fraudops.lake.storage import LakeStorage

logger = logging.getLogger(__name__)

MANIFESTS = "_manifests"
_VERSION_DIGITS = 12
FLUSH_ROWS = 1_000_000  # rows buffered across partitions before parts are written (bounds a writer's memory)
# An object no manifest names is deleted by ``vacuum`` only once its writer started this long ago (the
# commit id's time): until then it may be a running writer's. docs/lake.md states it (a test pins the two).
ORPHAN_GRACE_SECONDS = 3600.0
_COMMIT_ATTEMPTS = 8


@dataclass(frozen=True)
class DataFile:
    key: str  # relative to the lake root
    dt: str
    rows: int
    bytes: int
    commit: str

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "dt": self.dt, "rows": self.rows, "bytes": self.bytes, "commit": self.commit}


@dataclass(frozen=True)
class Manifest:
    table: str
    version: int
    schema_version: int
    files: tuple[DataFile, ...] = ()
    committed_at: str = ""
    operation: str = "create"
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def partitions(self) -> list[str]:
        return sorted({f.dt for f in self.files})

    def to_bytes(self) -> bytes:
        body = {
            "table": self.table,
            "version": self.version,
            "schema_version": self.schema_version,
            "committed_at": self.committed_at,
            "operation": self.operation,
            "rows": self.rows,
            "properties": self.properties,
            "files": [f.as_json() for f in self.files],
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        files = tuple(DataFile(**entry) for entry in body["files"])
        return cls(
            table=body["table"],
            version=int(body["version"]),
            schema_version=int(body["schema_version"]),
            files=files,
            committed_at=body.get("committed_at", ""),
            operation=body.get("operation", ""),
            properties=body.get("properties", {}),
        )


def _manifest_key(table: str, version: int) -> str:
    return f"{table}/{MANIFESTS}/{version:0{_VERSION_DIGITS}d}.json"


class LakeTable:
    def __init__(self, storage: LakeStorage, schema: TableSchema) -> None:
        self.storage = storage
        self.schema = schema
        self.name = schema.name

    # --- reading ---------------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The newest committed version (version 0, empty, before the first commit)."""
        keys = [k for k in self.storage.list_keys(f"{self.name}/{MANIFESTS}/") if k.endswith(".json")]
        for key in reversed(keys):
            data = self.storage.get(key)
            if data is None:
                continue
            manifest = Manifest.from_bytes(data)
            if manifest.schema_version > self.schema.version:
                raise DataError(
                    f"the lake's {self.name} table was written with schema version {manifest.schema_version}, "
                    f"newer than this code's {self.schema.version}: upgrade fraudops"
                )
            return manifest
        return Manifest(self.name, 0, self.schema.version)

    def files(self, newest_days: int | None = None, dts: Iterable[str] | None = None) -> list[DataFile]:
        """The committed files, optionally only the newest ``newest_days`` partitions or the given ones
        (partition pruning from the manifest alone: no listing, no file opened)."""
        files = list(self.manifest().files)
        if dts is not None:
            wanted = set(dts)
            files = [f for f in files if f.dt in wanted]
        if newest_days:
            keep = set(sorted({f.dt for f in files})[-newest_days:])
            files = [f for f in files if f.dt in keep]
        return sorted(files, key=lambda f: (f.dt, f.key))

    def read(self, columns: Sequence[str] | None = None, files: Sequence[DataFile] | None = None) -> pa.Table:
        """The committed rows of ``files`` (default: all), only ``columns`` (column pruning: the other
        column chunks are never read), with ``dt`` from each file's partition when asked for."""
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
                parquet = pq.ParquetFile(handle, read_dictionary=dictionary)
                version = (parquet.schema_arrow.metadata or {}).get(SCHEMA_VERSION_KEY, b"0")
                if int(version) > self.schema.version:
                    raise DataError(f"{data_file.key} has schema version {int(version)}: upgrade fraudops")
                table = parquet.read(columns=columns)
        except (OSError, pa.ArrowInvalid) as error:
            raise StoreError(f"cannot read {self.storage.uri(data_file.key)}: {error}") from error
        wanted = pa.schema([self._read_field(c) for c in columns])
        if table.schema != wanted:
            table = table.cast(wanted)
        if with_dt:
            dt = pa.repeat(pa.scalar(data_file.dt, pa.string()), len(table))
            table = table.append_column(pa.field(PARTITION_COLUMN, pa.string(), nullable=False), dt)
        return table

    def _read_field(self, name: str) -> pa.Field:
        field = self.schema.arrow_schema.field(name)
        if name in self.schema.dictionary_columns:
            return field.with_type(pa.dictionary(pa.int32(), field.type))
        return field

    # --- writing ---------------------------------------------------------------------------------

    def writer(self, operation: str = "append") -> TableWriter:
        return TableWriter(self, operation)

    def commit(
        self,
        build: Callable[[Manifest], tuple[list[DataFile], dict[str, Any]] | None],
        operation: str,
    ) -> Manifest | None:
        """Commit the state ``build(current)`` returns (all files, properties), or nothing if it returns
        None. Retried on a newer version when another writer committed first."""
        for _ in range(_COMMIT_ATTEMPTS):
            current = self.manifest()
            built = build(current)
            if built is None:
                return None
            files, properties = built
            manifest = Manifest(
                table=self.name,
                version=current.version + 1,
                schema_version=self.schema.version,
                files=tuple(sorted(files, key=lambda f: (f.dt, f.key))),
                committed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                operation=operation,
                properties=properties,
            )
            if self.storage.put_if_absent(_manifest_key(self.name, manifest.version), manifest.to_bytes()):
                return manifest
        raise StoreError(f"could not commit to the lake's {self.name} table: {_COMMIT_ATTEMPTS} concurrent commits")

    def vacuum(self, keep_versions: int = 5, orphan_grace_seconds: float = ORPHAN_GRACE_SECONDS) -> int:
        """Delete the data objects the newest manifest does not name: at once those an older manifest named
        (a replaced version), after ``orphan_grace_seconds`` those no manifest named (a crashed writer's,
        or a running writer's not yet committed); and all but the newest ``keep_versions`` manifests.
        Returns how many objects went."""
        manifest_keys = [k for k in self.storage.list_keys(f"{self.name}/{MANIFESTS}/") if k.endswith(".json")]
        if not manifest_keys:
            return 0
        live = {f.key for f in self.manifest().files}
        once_committed: set[str] = set()
        for key in manifest_keys[:-1]:
            data = self.storage.get(key)
            if data is not None:
                once_committed |= {f.key for f in Manifest.from_bytes(data).files}
        now = datetime.now(UTC)
        doomed = []
        for key in self.storage.list_keys(f"{self.name}/{PARTITION_COLUMN}="):
            if key in live:
                continue
            if key in once_committed or (now - _written_at(key)).total_seconds() > orphan_grace_seconds:
                doomed.append(key)
        doomed += manifest_keys[:-keep_versions]
        self.storage.delete(doomed)
        return len(doomed)


def _written_at(key: str) -> datetime:
    """A part's write time, from the commit id in its name (``part-<YYYYmmddTHHMMSS>-<uuid>-<n>``)."""
    name = key.rsplit("/", 1)[-1]
    try:
        return datetime.strptime(name.split("-")[1], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return datetime.min.replace(tzinfo=UTC)  # not ours: old enough to go


class TableWriter:
    """Buffers rows, writes zstd Parquet parts per partition, and commits them in one manifest.

    ``append``: the new files join the current ones. ``replace``: they become the whole table. Nothing
    is visible until ``commit``; a writer that is abandoned (exception, kill) commits nothing.
    """

    def __init__(self, table: LakeTable, operation: str) -> None:
        if operation not in ("append", "replace"):
            raise ValueError(f"operation must be append or replace, not {operation!r}")
        self.table = table
        self.operation = operation
        self.commit_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered = 0
        self._parts = 0
        self.files: list[DataFile] = []
        self.rows = 0

    def write(self, data: pa.Table, dts: Sequence[str] | pa.Array) -> None:
        """Rows in the table's schema, with each row's partition in ``dts``."""
        data = self._conform(data)
        dt_array = pa.array(dts, type=pa.string()) if not isinstance(dts, pa.Array) else dts
        if len(dt_array) != len(data):
            raise ValueError("one partition per row")
        if len(data) == 0:
            return
        import pyarrow.compute as pc

        unique = pc.unique(dt_array).to_pylist()
        for dt in unique:
            part = data if len(unique) == 1 else data.filter(pc.equal(dt_array, dt))
            self._buffers.setdefault(str(dt), []).append(part)
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
        for dt, parts in sorted(self._buffers.items()):
            data = pa.concat_tables(parts)
            key = f"{partition_dir(self.table.name, dt)}/part-{self.commit_id}-{self._parts:05d}.parquet"
            self._parts += 1
            sink = io.BytesIO()
            pq.write_table(data, sink, compression=COMPRESSION, row_group_size=256 * 1024)
            body = sink.getvalue()
            self.table.storage.put(key, body)
            self.files.append(DataFile(key=key, dt=dt, rows=len(data), bytes=len(body), commit=self.commit_id))
        self._buffers.clear()
        self._buffered = 0

    def commit(
        self,
        properties: dict[str, Any] | None = None,
        check: Callable[[Manifest], None] | None = None,
    ) -> Manifest:
        """Write what is buffered, then commit. ``check(current)`` may refuse (raise) against the state
        being committed onto (e.g. --append's newer-steps rule), leaving the table as it was."""
        self.flush()

        def build(current: Manifest) -> tuple[list[DataFile], dict[str, Any]]:
            if check is not None:
                check(current)
            base = list(current.files) if self.operation == "append" else []
            merged = {**current.properties, **(properties or {})} if self.operation == "append" else properties or {}
            return base + self.files, merged

        try:
            manifest = self.table.commit(build, self.operation)
        except BaseException:
            self.abort()
            raise
        assert manifest is not None
        if self.operation == "replace":
            self.table.vacuum()
        return manifest

    def abort(self) -> None:
        """Delete the parts written so far (best effort: ``vacuum`` gets what a kill leaves)."""
        self._buffers.clear()
        try:
            self.table.storage.delete([f.key for f in self.files])
        except StoreError as error:  # the commit's own error is the one raised; say what stays behind
            logger.warning("aborted commit left its parts behind (vacuum removes them later): %s", error)
        self.files = []
