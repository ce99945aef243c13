"""The engine choice: how many rows the training window holds (from the Parquet footers, no data read)
against ``lambda_training_max_rows``. For a Spark training, the window's files are frozen in an input
manifest the job reads, so the job trains on exactly what was counted even if the lake grows meanwhile.

The window is the lake's ``transactions`` table in the agreed layout
(``<lake>/transactions/dt=YYYY-MM-DD/*.parquet``).
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.config import Settings
from fraudops.errors import DataError
from fraudops.spark_training.storage import get_bytes, join_uri, put_bytes
from fraudops.store.s3 import s3_client, split_s3_uri

TABLE = "transactions"
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


def window_files(settings: Settings) -> list[str]:
    """The Parquet files of the training window, as URIs Spark reads (s3:// in AWS, paths locally)."""
    root = settings.lake_root_uri
    if root.startswith("s3://"):
        bucket, prefix = split_s3_uri(join_uri(root, TABLE) + "/")
        paginator = s3_client(settings).get_paginator("list_objects_v2")
        keys = [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
            if item["Key"].endswith(".parquet") and "/dt=" in item["Key"]
        ]
        return [f"s3://{bucket}/{key}" for key in sorted(keys)]
    table = Path(root.removeprefix("file://")) / TABLE
    return [str(path) for path in sorted(table.glob("dt=*/*.parquet"))]


def _footer(settings: Settings, uri: str) -> bytes:
    """A Parquet file's footer (metadata plus the 8-byte trailer): two ranged reads, not the data."""
    if not uri.startswith("s3://"):
        with open(uri, "rb") as handle:
            handle.seek(-8, 2)
            trailer = handle.read(8)
            (length,) = struct.unpack("<i", trailer[:4])
            handle.seek(-(8 + length), 2)
            return handle.read(length + 8)
    bucket, key = split_s3_uri(uri)
    client = s3_client(settings)
    trailer = client.get_object(Bucket=bucket, Key=key, Range="bytes=-8")["Body"].read()
    (length,) = struct.unpack("<i", trailer[:4])
    return bytes(client.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length + 8}")["Body"].read())


def count_rows(settings: Settings, files: list[str]) -> int:
    total = 0
    for uri in files:
        footer = _footer(settings, uri)
        if footer[-4:] != b"PAR1":
            raise DataError(f"{uri} is not a Parquet file")
        total += pq.read_metadata(pa.BufferReader(b"PAR1" + footer)).num_rows
    return total


def plan_training(
    settings: Settings, feature_set: str = "engineered", trigger: dict[str, Any] | None = None
) -> TrainingPlan:
    """Count the window and choose the engine; for Spark, write the input manifest the job reads.
    ``trigger`` (reason, drifted) is handed on to the register step so the version records it."""
    files = window_files(settings)
    rows = count_rows(settings, files)
    limit = settings.lambda_training_max_rows
    if rows <= limit:  # includes an empty lake: the Lambda trains on what it reads today
        return TrainingPlan("lambda", rows, limit, len(files), feature_set)
    run = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    base = join_uri(settings.spark_output_root, run)
    input_uri = join_uri(base, INPUT_MANIFEST)
    put_bytes(settings, input_uri, json.dumps({"files": files, "rows": rows}, indent=1).encode())
    output_uri = join_uri(base, "output")
    register = {"action": "register", "output_uri": output_uri, **(trigger or {})}
    return TrainingPlan("spark", rows, limit, len(files), feature_set, input_uri, output_uri, register)


def read_input_manifest(settings: Settings, input_uri: str) -> list[str]:
    data = get_bytes(settings, input_uri)
    if data is None:
        raise DataError(f"no training input manifest at {input_uri}")
    files = json.loads(data)["files"]
    if not files:
        raise DataError(f"the training input manifest {input_uri} lists no files")
    return [str(uri) for uri in files]
