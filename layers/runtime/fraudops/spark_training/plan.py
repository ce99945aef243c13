"""The engine choice: how many rows the training window holds against ``lambda_training_max_rows``.

The window is the one the train Lambda reads (``lake.transactions``, the newest ``train_window_days``
partitions of the current Iceberg snapshot, or of a recorded snapshot): its size comes from the files
pyiceberg plans (each data file's row count in the Iceberg manifests), so planning reads no data and never
sees a file a crashed or running writer left uncommitted. For a Spark training the snapshot's window files
are frozen in an input manifest the job reads (with the snapshot id), so the job trains on exactly what was
counted, and on exactly what the Lambda would have read, even if the lake grows meanwhile.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.lake import DataFile, Lake
from fraudops.lake.transactions import describe_dataset
from fraudops.spark_training.storage import get_bytes, join_uri, put_bytes

INPUT_MANIFEST = "input.json"


@dataclass(frozen=True)
class TrainingPlan:
    engine: Literal["lambda", "spark"]
    rows: int
    lambda_max_rows: int
    files: int
    feature_set: str = "engineered"
    input_uri: str | None = None
    output_uri: str | None = None
    register: dict[str, Any] | None = None  # the register step's input, for a Spark training

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingWindow:
    """The committed files of the training window: where they are (URIs Spark reads: ``s3://`` in AWS,
    ``file://`` locally) and what the Iceberg snapshot says of them (partition, rows, bytes)."""

    lake: str
    table_version: int
    files: tuple[DataFile, ...]
    uris: tuple[str, ...]
    newest_days: int | None = None
    snapshot_id: int | None = None
    table_uri: str = ""

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def partitions(self) -> list[str]:
        return sorted({f.dt for f in self.files})

    def describe(self, rows: int, fraud_rows: int) -> dict[str, Any]:
        """The dataset as the Lambda training logs it (``mlflow.log_input``), with the counts Spark read."""
        return describe_dataset(self.table_version, list(self.files), list(self.uris), rows, fraud_rows,
                                self.snapshot_id, self.table_uri)  # fmt: skip

    def to_bytes(self) -> bytes:
        body = {
            "lake": self.lake,
            "table": "transactions",
            "table_version": self.table_version,
            "snapshot_id": self.snapshot_id,
            "table_uri": self.table_uri,
            "newest_days": self.newest_days,
            "rows": self.rows,
            "files": [{**f.as_json(), "uri": uri} for f, uri in zip(self.files, self.uris, strict=True)],
        }
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingWindow:
        body = json.loads(data)
        entries = body["files"]
        return cls(
            lake=str(body["lake"]),
            table_version=int(body["table_version"]),
            files=tuple(DataFile(**{k: v for k, v in entry.items() if k != "uri"}) for entry in entries),
            uris=tuple(str(entry["uri"]) for entry in entries),
            newest_days=body.get("newest_days"),
            snapshot_id=body.get("snapshot_id"),
            table_uri=str(body.get("table_uri", "")),
        )


def training_window(settings: Settings, snapshot_id: int | None = None) -> TrainingWindow:
    """The window the train Lambda reads (``read_training_data(lake.transactions, train_window_days,
    snapshot_id)``), from the Iceberg metadata alone."""
    lake = Lake(settings)
    table = lake.transactions
    newest_days = settings.train_window_days or None
    snapshot, files = table.snapshot_and_files(newest_days=newest_days, snapshot_id=snapshot_id)
    return TrainingWindow(
        lake=lake.root_uri,
        table_version=snapshot.version,
        files=tuple(files),
        uris=tuple(lake.storage.uri(f.key) for f in files),
        newest_days=newest_days,
        snapshot_id=snapshot.snapshot_id,
        table_uri=table.location,
    )


def freeze_window(settings: Settings, window: TrainingWindow) -> tuple[str, str]:
    """Write the window's input manifest under a new run folder: (input URI, output URI) for the job."""
    if not window.files:
        raise DataError(
            f"the lake at {window.lake} has no transactions: run `fraudops generate` or `fraudops import-csv` "
            "(or `fraudops import <fraud.db>`) first"
        )
    run = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    base = join_uri(settings.spark_output_root, run)
    input_uri = join_uri(base, INPUT_MANIFEST)
    put_bytes(settings, input_uri, window.to_bytes())
    return input_uri, join_uri(base, "output")


def plan_training(
    settings: Settings,
    feature_set: str = "engineered",
    trigger: dict[str, Any] | None = None,
    snapshot_id: int | None = None,
) -> TrainingPlan:
    """Count the window (of ``snapshot_id``, or the current snapshot) and choose the engine; for Spark,
    write the input manifest the job reads. ``trigger`` (reason, drifted) is handed on to the register
    step so the version records it."""
    window = training_window(settings, snapshot_id)
    limit = settings.lambda_training_max_rows
    if window.rows <= limit:  # includes an empty lake: the Lambda says what is missing
        return TrainingPlan("lambda", window.rows, limit, len(window.files), feature_set)
    input_uri, output_uri = freeze_window(settings, window)
    register = {"action": "register", "output_uri": output_uri, **(trigger or {})}
    return TrainingPlan("spark", window.rows, limit, len(window.files), feature_set, input_uri, output_uri, register)


def read_input_manifest(settings: Settings, input_uri: str) -> TrainingWindow:
    data = get_bytes(settings, input_uri)
    if data is None:
        raise DataError(f"no training input manifest at {input_uri}")
    window = TrainingWindow.from_bytes(data)
    if not window.files:
        raise DataError(f"the training input manifest {input_uri} lists no files")
    return window
