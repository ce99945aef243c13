"""Issue 29: `fraudops lake migrate` turns a lake written by the old code (our manifests, from git at
61f7ff9, run in a subprocess) into Iceberg tables without losing a row (counts and a digest compared,
and the rows read back by an independent pyiceberg reader), idempotent, and crash-safe under kill -9."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudops.core.config import Settings
from fraudops.core.errors import DataError
from fraudops.lake import Lake
from fraudops.lake.transactions import read_training_data
from tests.helpers.processes import kill_when_marked

ROOT = Path(__file__).resolve().parents[2]
OLD_MAIN = "61f7ff9"  # the last commit with the manifest layout
KEY = ["step", "nameOrig", "amount", "source", "dt"]

OLD_LABELS = """
from datetime import UTC, datetime
import pyarrow as pa
from fraudops.config import Settings
from fraudops.lake import Lake
table = Lake(Settings()).labels
writer = table.writer("append")
when = datetime(2026, 3, 1, tzinfo=UTC)
events = [{"transaction_id": f"t-{i}", "is_fraud": i % 3 == 0, "received_at": when, "source": "test"}
          for i in range(50)]
writer.write(pa.Table.from_pylist(events), ["2026-03-01"] * len(events))
writer.commit({"labels_listed_through": when.isoformat()})
"""

BLOCKED_MIGRATION = """
import pathlib, sys, time
from pyiceberg.catalog.sql import SqlCatalog
marker = pathlib.Path(sys.argv[1])
real = SqlCatalog.commit_table
def commit_table(self, tbl, requirements, updates):
    marker.write_text("about to create the table with its rows")
    time.sleep(600)
SqlCatalog.commit_table = commit_table
from fraudops_dev.cli import main
sys.exit(main(["lake", "migrate"]))
"""


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", OLD_MAIN], capture_output=True).returncode != 0:
        pytest.skip(f"the old layout's code ({OLD_MAIN}) is not in this clone")
    target = tmp_path_factory.mktemp("old-code")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_MAIN, "layers/runtime", "devtools"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _old(old_code: Path, state: Path, *argv: str) -> None:
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(state),
           "PYTHONPATH": f"{old_code}/layers/runtime:{old_code}/devtools"}  # fmt: skip
    subprocess.run([sys.executable, *argv], env=env, check=True, capture_output=True, cwd=state.parent)


def old_lake(old_code: Path, state: Path) -> Path:
    """A lake made by the old code: a replace, another replace (the first one vacuumed), an append, labels
    with a checkpoint, and a crashed writer's orphan part that no manifest names."""
    state.mkdir(parents=True)
    _old(old_code, state, "-m", "fraudops_dev.cli", "generate", "--rows", "4000", "--seed", "1")
    _old(old_code, state, "-m", "fraudops_dev.cli", "generate", "--rows", "6000", "--seed", "2")
    _old(old_code, state, "-m", "fraudops_dev.cli", "generate", "--rows", "1500", "--seed", "3", "--append",
         "--step-offset", "2000")  # fmt: skip
    _old(old_code, state, "-c", OLD_LABELS)
    lake = state / "lake"
    committed = sorted((lake / "transactions").rglob("*.parquet"))[0]
    (committed.parent / "part-20260101T000000-crashed-00000.parquet").write_bytes(committed.read_bytes())
    return lake


def old_rows(lake: Path, table: str) -> tuple[dict[str, Any], pa.Table]:
    """The newest old manifest and exactly the rows it names (the old readers' answer), with ``dt``."""
    manifest = json.loads(sorted((lake / table / "_manifests").glob("*.json"))[-1].read_bytes())
    parts = [
        pq.read_table(lake / f["key"]).append_column("dt", pa.array([f["dt"]] * f["rows"])) for f in manifest["files"]
    ]
    return manifest, pa.concat_tables(parts)


def independent(lake: Path, table: str) -> pa.Table:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("fraudops", uri=f"sqlite:///{lake}/catalog.db", warehouse=lake.as_uri())
    return catalog.load_table(("fraudops", table)).scan().to_arrow()


def _sorted(rows: pa.Table, key: list[str]) -> list[tuple[object, ...]]:
    columns = rows.select(key).to_pydict()
    return sorted(zip(*(columns[k] for k in key), strict=True), key=repr)


def _cli(state: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    from fraudops_dev.cli import main

    from fraudops.core.config import get_settings

    os.environ["FRAUDOPS_STATE_DIR"] = str(state)
    try:
        get_settings.cache_clear()
        capsys.readouterr()
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)
    finally:
        os.environ.pop("FRAUDOPS_STATE_DIR")
        get_settings.cache_clear()


def test_migrate_keeps_every_row_of_an_old_lake_and_a_second_run_does_nothing(
    old_code: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    lake = old_lake(old_code, state)
    manifest, expected = old_rows(lake, "transactions")
    labels_manifest, expected_labels = old_rows(lake, "labels")
    assert expected.num_rows == 7_500 == manifest["rows"]
    settings = Settings(state_dir=state)
    with pytest.raises(DataError, match="fraudops lake migrate"):  # the new code refuses the old layout
        Lake(settings).transactions.snapshot()

    report = {r["table"]: r for r in _cli(state, ["lake", "migrate"], capsys)}
    assert report["transactions"]["outcome"] == "migrated" and report["transactions"]["rows"] == 7_500
    assert report["transactions"]["manifest_version"] == manifest["version"] == 3
    assert report["labels"]["outcome"] == "migrated" and report["labels"]["rows"] == 50
    assert report["decisions"]["outcome"] == "nothing to migrate"
    rows = independent(lake, "transactions")  # not the orphan's rows, not the replaced version's
    assert rows.num_rows == 7_500 and _sorted(rows, KEY) == _sorted(expected, KEY)
    labels = independent(lake, "labels")
    assert _sorted(labels, ["transaction_id", "is_fraud"]) == _sorted(expected_labels, ["transaction_id", "is_fraud"])
    # the old properties carry on: --append's newer-steps rule, curation's checkpoint
    snapshot = Lake(settings).transactions.snapshot()
    assert snapshot.properties["max_step"] == manifest["properties"]["max_step"]
    assert (
        Lake(settings).labels.snapshot().properties["labels_listed_through"]
        == labels_manifest["properties"]["labels_listed_through"]
    )
    assert read_training_data(Lake(settings).transactions).rows == 7_500

    again = {r["table"]: r for r in _cli(state, ["lake", "migrate"], capsys)}
    assert again["transactions"]["outcome"] == "already migrated" and again["labels"]["outcome"] == "already migrated"
    assert Lake(settings).transactions.snapshot() == snapshot  # nothing committed

    # the old objects are orphans of the new tables: the maintenance deletes them, the rows stay
    assert Lake(settings).transactions.remove_orphans(grace_seconds=0) >= len(manifest["files"]) + 1
    assert not list((lake / "transactions").glob("dt=*/*")) and not list((lake / "transactions").glob("_manifests/*"))
    assert independent(lake, "transactions").num_rows == 7_500


def test_a_migration_killed_midway_reruns_and_lands_every_row_once(
    old_code: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    lake = old_lake(old_code, state)
    _, expected = old_rows(lake, "transactions")
    kill_when_marked(BLOCKED_MIGRATION, tmp_path / "marker", env={"FRAUDOPS_STATE_DIR": str(state)})
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("fraudops", uri=f"sqlite:///{lake}/catalog.db", warehouse=lake.as_uri())
    assert not catalog.table_exists(("fraudops", "transactions"))  # killed before its one commit: no table

    report = {r["table"]: r for r in _cli(state, ["lake", "migrate"], capsys)}
    assert report["transactions"]["outcome"] == "migrated"
    rows = independent(lake, "transactions")
    assert rows.num_rows == 7_500 and _sorted(rows, KEY) == _sorted(expected, KEY)  # every row once
