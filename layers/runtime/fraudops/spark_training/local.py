"""``fraudops train --engine spark`` and the emulated EMR job: the same job on PySpark in local mode,
then the register step, in one process.

Until the lake holds the transactions (the lake issue), a laptop whose data is only the SQLite table
gets it staged once as Parquet in the lake's layout (``transactions/dt=YYYY-MM-DD/part-0.parquet``,
one partition per PaySim day) under the run's folder, so Spark reads what it reads in AWS.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fraudops.config import Settings
from fraudops.spark_training.job import spark_session, train_on_spark
from fraudops.spark_training.plan import window_files
from fraudops.spark_training.register import register_spark_output
from fraudops.spark_training.storage import join_uri
from fraudops.tracking import TrainingResult

log = logging.getLogger(__name__)

STEPS_PER_DAY = 24
EPOCH = date(2026, 1, 1)  # the date of PaySim step 0 in partition names


def stage_sqlite_as_parquet(settings: Settings, folder: Path) -> list[str]:
    """The SQLite transactions table as Hive-partitioned Parquet under ``folder`` (one file per day)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraudops.data import load_training_frame

    frame = load_training_frame(settings.db_path)
    frame["type"] = frame["type"].astype(str)
    files = []
    for day, part in frame.groupby(frame["step"].to_numpy() // STEPS_PER_DAY, sort=True):
        dt = (EPOCH + timedelta(days=int(day))).isoformat()
        path = folder / "transactions" / f"dt={dt}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), path, compression="zstd")
        files.append(str(path))
    log.info("staged %d rows of %s as %d Parquet partitions in %s", len(frame), settings.db_path, len(files), folder)
    return files


def run_local_spark_training(
    settings: Settings,
    feature_set: str = "engineered",
    tags: dict[str, str] | None = None,
    files: list[str] | None = None,
) -> TrainingResult:
    """Train on PySpark local mode (``spark_workers`` workers) and register the version."""
    run = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    base = join_uri(settings.spark_output_root, run)
    if files is None:
        files = window_files(settings)
    if not files:
        files = stage_sqlite_as_parquet(settings, Path(base) / "input")
    output_uri = join_uri(base, "output")
    with spark_session(settings) as spark:
        train_on_spark(spark, files, settings, output_uri, feature_set)
    return register_spark_output(settings, output_uri, tags)
