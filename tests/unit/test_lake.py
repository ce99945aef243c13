"""The lake on Iceberg: layout, all-or-nothing commits (also under kill -9), pruning reads, S3 (moto), SQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.core.schema import COLUMNS
from fraudops.lake import Lake, committed_files, dt_of_step
from fraudops.lake.transactions import read_training_data, write_transaction_frames

ROWS = 20_000


@pytest.fixture
def lake_settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


def _populate(settings: Settings, rows: int = ROWS, seed: int = 1) -> Lake:
    lake = Lake(settings)
    write_transaction_frames(lake.transactions, generate_frames(GeneratorConfig(rows, seed=seed)), source="generate")
    return lake


def test_layout_is_hive_partitioned_zstd_parquet_with_paysim_columns(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    files = committed_files(lake_settings, "transactions")
    root = lake_settings.state_dir.resolve() / "lake" / "transactions"
    assert files and all(f.startswith(f"{root.as_uri()}/data/dt=2026-01-") and f.endswith(".parquet") for f in files)
    first = Path(files[0].removeprefix("file://"))
    metadata = pq.ParquetFile(first).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    assert list(COLUMNS) == pq.read_schema(first).names[: len(COLUMNS)]
    iceberg = lake.transactions.iceberg()  # the schema version is a table property now, not a file's
    assert iceberg.metadata.properties["fraudops.schema_version"] == "1" and iceberg.metadata.format_version == 2
    assert [f.name for f in iceberg.spec().fields] == ["dt"] and str(iceberg.spec().fields[0].transform) == "identity"
    assert lake.transactions.snapshot().rows == ROWS
    # the training window: the newest N partitions only
    newest = committed_files(lake_settings, "transactions", newest_days=3)
    assert [f.split("dt=")[1][:10] for f in newest] == sorted({f.split("dt=")[1][:10] for f in files})[-3:]


def test_training_read_prunes_partitions_and_columns(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    everything = read_training_data(lake.transactions)
    window = read_training_data(lake.transactions, newest_days=5)
    assert everything.rows == ROWS and 0 < window.rows < ROWS
    assert window.frame["step"].is_monotonic_increasing
    assert dt_of_step(int(window.frame["step"].min())) == window.partitions[0]
    assert "nameOrig" not in window.frame.columns and len(window.partitions) == 5
    assert window.describe()["digest"] != everything.describe()["digest"]
    assert window.fraud_rows == int(window.frame["isFraud"].sum())


def test_append_takes_new_steps_only_and_replace_replaces(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    later = generate(GeneratorConfig(500, seed=2))
    write_transaction_frames(lake.transactions, [later.assign(step=later["step"] + 1000)], append=True)
    assert lake.transactions.snapshot().rows == ROWS + 500
    with pytest.raises(DataError, match="new steps only"):
        write_transaction_frames(lake.transactions, [later], append=True)
    assert lake.transactions.snapshot().rows == ROWS + 500
    appended = lake.transactions.snapshot()
    write_transaction_frames(lake.transactions, [later])
    assert lake.transactions.snapshot().rows == 500
    # Iceberg keeps the replaced files for time travel until the snapshot expires; then they go
    assert read_training_data(lake.transactions, snapshot_id=appended.snapshot_id).rows == ROWS + 500
    assert lake.transactions.expire_snapshots(timedelta(0)) >= 2
    assert lake.transactions.remove_orphans(grace_seconds=0) > 0
    listed = list((lake_settings.state_dir / "lake" / "transactions").rglob("*.parquet"))
    assert len(listed) == len(lake.transactions.files())  # the replaced files are gone


def test_a_failing_writer_leaves_the_table_exactly(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    before = lake.transactions.snapshot()

    def batches():
        yield generate(GeneratorConfig(1000, seed=3))
        raise DataError("bad row")

    with pytest.raises(DataError):
        write_transaction_frames(lake.transactions, batches())
    assert lake.transactions.snapshot() == before
    assert read_training_data(lake.transactions).rows == ROWS


@pytest.mark.slow
def test_sigkill_during_generate_leaves_the_previous_version(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    before = lake.transactions.snapshot()
    before_files = lake.transactions.files()
    expected = lake.transactions.read().to_pandas()
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(lake_settings.state_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fraudops_dev.cli", "generate", "--rows", "3000000"], env=env, stderr=subprocess.PIPE
    )
    parts = lake_settings.state_dir / "lake" / "transactions"
    deadline = time.monotonic() + 120
    while len(list(parts.rglob("*.parquet"))) <= len(before_files):  # the writer has written new parts
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(list(parts.rglob("*.parquet"))) > len(before_files)  # orphans on disk ...
    assert lake.transactions.snapshot() == before  # ... that no reader sees
    assert lake.transactions.read().to_pandas().equals(expected)
    assert lake.transactions.remove_orphans(grace_seconds=0) > 0
    assert len(list(parts.rglob("*.parquet"))) == len(before_files)


def test_two_writers_racing_for_a_version_both_land(lake_settings: Settings) -> None:
    lake = _populate(lake_settings)
    first, second = lake.transactions.writer("append"), lake.transactions.writer("append")
    rows = generate(GeneratorConfig(100, seed=4))
    from fraudops.lake.transactions import frame_to_arrow, step_partitions

    for writer in (first, second):
        writer.write(frame_to_arrow(rows, "import"), step_partitions(rows["step"].to_numpy()))
    version = lake.transactions.snapshot().version
    landed = first.commit()
    assert landed.version == version + 1
    assert second.commit().version == version + 2  # lost the race for version+1, retried on the newer one
    assert lake.transactions.snapshot().rows == ROWS + 200
    history = lake.transactions.iceberg().metadata.snapshots
    assert len(history) == version + 2 and history[-1].parent_snapshot_id == landed.snapshot_id


@pytest.mark.slow
def test_the_same_lake_in_s3(s3_endpoint: str, tmp_path: Path) -> None:
    import boto3

    bucket = f"data-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    settings = Settings(state_dir=tmp_path, s3_endpoint_url=s3_endpoint, lake_uri=f"s3://{bucket}/lake")
    lake = _populate(settings, rows=5_000)
    files = committed_files(settings, "transactions", newest_days=2)
    assert all(f.startswith(f"s3://{bucket}/lake/transactions/data/dt=") for f in files) and len(files) == 2
    data = read_training_data(lake.transactions)
    assert data.rows == 5_000 and data.uris[0].startswith("s3://")
    local = _populate(Settings(state_dir=tmp_path / "local"), rows=5_000)
    assert data.frame.equals(read_training_data(local.transactions).frame)  # one layout, same rows


def test_sql_counts_what_generate_wrote(lake_settings: Settings, tmp_path: Path, capsys) -> None:
    pytest.importorskip("duckdb")
    from fraudops_dev.cli import main

    os.environ["FRAUDOPS_STATE_DIR"] = str(lake_settings.state_dir)
    try:
        from fraudops.core.config import get_settings

        get_settings.cache_clear()
        assert main(["generate", "--rows", "3000"]) == 0
        capsys.readouterr()
        assert main(["sql", "SELECT count(*) AS n, count(DISTINCT dt) AS days FROM transactions"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "n\tdays" and out[1].split("\t")[0] == "3000"
        assert main(["sql", "SELECT count(*) FROM decisions"]) == 0
        assert capsys.readouterr().out.splitlines()[1] == "0"
    finally:
        os.environ.pop("FRAUDOPS_STATE_DIR")
        get_settings.cache_clear()


@pytest.mark.parametrize("packing", ["csv", "gz", "zip"])
def test_import_csv_into_the_lake_and_append(lake_settings: Settings, tmp_path: Path, packing: str) -> None:
    import gzip
    import zipfile

    from fraudops_dev.importer import import_csv

    lake = _populate(lake_settings, rows=2_000)
    frame = generate(GeneratorConfig(300, seed=3))[list(COLUMNS)]
    plain = tmp_path / "paysim.csv"
    frame.assign(step=frame["step"] + 1000).to_csv(plain, index=False)
    source = plain
    if packing == "gz":
        source = tmp_path / "paysim.csv.gz"
        source.write_bytes(gzip.compress(plain.read_bytes()))
    elif packing == "zip":
        source = tmp_path / "paysim.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.write(plain, plain.name)
    assert import_csv(source, lake.transactions, append=True).rows_imported == 300
    assert lake.transactions.snapshot().rows == 2_300
    before = lake.transactions.snapshot()
    with pytest.raises(DataError, match="new steps only"):
        import_csv(source, lake.transactions, append=True)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError):
        import_csv(tmp_path / "bad.csv", lake.transactions)
    assert lake.transactions.snapshot() == before
    assert import_csv(plain, lake.transactions).rows_imported == 300  # replace
    assert lake.transactions.snapshot().rows == 300


def test_sqlite_in_and_out(lake_settings: Settings, tmp_path: Path, capsys) -> None:
    from fraudops_dev.cli import main
    from fraudops_dev.sqlite_io import count_rows, load_training_frame, write_transactions

    db = tmp_path / "seed.db"
    write_transactions(db, generate_frames(GeneratorConfig(3_000, seed=5)))
    os.environ["FRAUDOPS_LAKE_URI"] = str(lake_settings.state_dir / "lake")
    try:
        from fraudops.core.config import get_settings

        get_settings.cache_clear()
        assert main(["import", str(db)]) == 0
        assert main(["export", str(tmp_path / "out.db")]) == 0
    finally:
        os.environ.pop("FRAUDOPS_LAKE_URI")
        get_settings.cache_clear()
    assert count_rows(tmp_path / "out.db") == 3_000
    assert load_training_frame(tmp_path / "out.db").equals(load_training_frame(db))
