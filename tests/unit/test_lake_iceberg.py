"""Issue 29, done when: an independent reader (pyiceberg's own catalog API, no fraudops code) sees exactly
the committed rows after a ``kill -9`` of each writer, and two concurrent appends on the SQL catalog both
land. The independent reader opens the catalog file and the warehouse by their paths only."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames

from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.transactions import frame_to_arrow, step_partitions, write_transaction_frames
from fraudops.monitoring.capture import FileCaptureSink, capture_record
from fraudops.monitoring.labels import store_labels
from tests.helpers.processes import kill_when_marked

ROWS = 5_000
KEY = ["step", "nameOrig", "amount", "source"]

# Runs a fraudops CLI command whose Iceberg commit (the SQL catalog's pointer swap) never happens: it
# says so in a marker file with all its data files written, then waits to be killed.
BLOCKED_CHILD = """
import pathlib, sys, time
from pyiceberg.catalog.sql import SqlCatalog
marker, table, argv = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
real = SqlCatalog.commit_table
def commit_table(self, tbl, requirements, updates):
    if tbl.name()[-1] == table:
        marker.write_text("about to commit")
        time.sleep(600)
    return real(self, tbl, requirements, updates)
SqlCatalog.commit_table = commit_table
from fraudops_dev.cli import main
sys.exit(main(argv))
"""


def independent_rows(lake_dir: Path, table: str) -> pa.Table:
    """The table as any Iceberg engine reads it: pyiceberg's catalog (named "fraudops": a SQL catalog's rows are
    per catalog name) and scan, nothing of fraudops."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("fraudops", uri=f"sqlite:///{lake_dir}/catalog.db", warehouse=lake_dir.as_uri())
    return catalog.load_table(("fraudops", table)).scan().to_arrow()


def _sorted(rows: pa.Table, key: list[str]) -> list[tuple[object, ...]]:
    columns = rows.select(key).to_pydict()
    return sorted(zip(*(columns[k] for k in key), strict=True), key=repr)


def _kill_before_commit(settings: Settings, tmp_path: Path, table: str, argv: list[str]) -> None:
    marker = tmp_path / f"marker-{time.monotonic_ns()}"
    kill_when_marked(BLOCKED_CHILD, marker, table, *argv, env={"FRAUDOPS_STATE_DIR": str(settings.state_dir)})


@pytest.fixture
def lake_settings(tmp_path: Path) -> Settings:
    settings = Settings(state_dir=tmp_path / "state")
    frames = generate_frames(GeneratorConfig(ROWS, seed=1))
    write_transaction_frames(Lake(settings).transactions, frames, source="generate")
    return settings


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--rows", "3000", "--seed", "9"],  # replacing
        ["generate", "--rows", "3000", "--seed", "9", "--append", "--step-offset", "5000"],
        ["import-csv", "{csv}"],  # replacing
        ["import-csv", "{csv}", "--append"],
    ],
    ids=["generate", "generate-append", "import", "import-append"],
)
def test_kill_9_of_a_transactions_writer_leaves_exactly_the_committed_rows(
    lake_settings: Settings, tmp_path: Path, argv: list[str]
) -> None:
    csv = tmp_path / "paysim.csv"
    frame = generate(GeneratorConfig(2_000, seed=3))
    frame.assign(step=frame["step"] + 5_000).to_csv(csv, index=False)
    lake_dir = Path(lake_settings.lake_root_uri)
    committed = independent_rows(lake_dir, "transactions")
    assert committed.num_rows == ROWS
    files_before = len(list((lake_dir / "transactions" / "data").rglob("*.parquet")))

    _kill_before_commit(lake_settings, tmp_path, "transactions", [a.format(csv=csv) for a in argv])

    assert len(list((lake_dir / "transactions" / "data").rglob("*.parquet"))) > files_before  # it wrote ...
    after = independent_rows(lake_dir, "transactions")  # ... and no Iceberg reader sees any of it
    assert after.num_rows == ROWS and _sorted(after, KEY) == _sorted(committed, KEY)
    # our reader agrees; the orphans go with the cleanup, the committed files stay
    assert Lake(lake_settings).transactions.read().num_rows == ROWS
    assert Lake(lake_settings).transactions.remove_orphans(grace_seconds=0) > 0
    assert len(list((lake_dir / "transactions" / "data").rglob("*.parquet"))) == files_before
    assert independent_rows(lake_dir, "transactions").num_rows == ROWS


def test_kill_9_of_curation_leaves_exactly_the_committed_rows_and_checkpoints(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", label_maturity_days=30)
    now = datetime.now(UTC)
    transaction = {"step": 800, "type": "TRANSFER", "amount": 1000.0, "nameOrig": "C1", "oldbalanceOrg": 1000.0,
                   "newbalanceOrig": 0.0, "nameDest": "C2", "oldbalanceDest": 0.0, "newbalanceDest": 0.0}  # fmt: skip
    for tid, days in (("a", 40), ("b", 35)):
        when = now - timedelta(days=days)
        FileCaptureSink(settings.local_artifact_dir).write(
            capture_record(transaction, tid, "3", 0.2, 0.0, 0.5, "req", when), when
        )
    store_labels(settings, [("b", True)], "test")
    lake_dir = Path(settings.lake_root_uri)

    # the first table curation commits to is labels: killed there, nothing of it is in any table
    _kill_before_commit(settings, tmp_path, "labels", ["curate"])
    assert independent_rows(lake_dir, "labels").num_rows == 0
    assert Lake(settings).labels.snapshot().properties == {}  # no checkpoint moved

    # killed at the transactions commit: labels and decisions committed (with their checkpoints), no curated row
    _kill_before_commit(settings, tmp_path, "transactions", ["curate"])
    assert independent_rows(lake_dir, "labels").num_rows == 1
    assert independent_rows(lake_dir, "decisions").num_rows == 2
    assert independent_rows(lake_dir, "transactions").num_rows == 0
    assert "curation_matured_through" not in Lake(settings).transactions.snapshot().properties

    # the rerun completes: each decision curated once, the checkpoint in the same snapshot as the rows
    from fraudops.lake.curation import run_curation

    run_curation(settings, now)
    rows = independent_rows(lake_dir, "transactions")
    assert sorted(zip(rows["transaction_id"].to_pylist(), rows["isFraud"].to_pylist(), strict=True)) == [
        ("a", 1 - 1),
        ("b", 1),
    ]
    assert independent_rows(lake_dir, "decisions").num_rows == 2  # compacted once, not twice
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("fraudops", uri=f"sqlite:///{lake_dir}/catalog.db", warehouse=lake_dir.as_uri())
    current = catalog.load_table(("fraudops", "transactions")).current_snapshot()
    assert current is not None and current.summary is not None
    assert "curation_matured_through" in (current.summary["fraudops.properties"] or "")


APPENDER = """
import pathlib, sys, time
from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.transactions import frame_to_arrow, step_partitions
from fraudops_dev.datagen import GeneratorConfig, generate
ready, go, seed = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
table = Lake(Settings()).transactions
writer = table.writer("append")
rows = generate(GeneratorConfig(700, seed=seed))
writer.write(frame_to_arrow(rows, "import"), step_partitions(rows["step"].to_numpy()))
writer.flush()
base = table.iceberg()  # both writers start from the same snapshot
ready.write_text(str(base.current_snapshot().snapshot_id))
while not go.exists():
    time.sleep(0.005)
print(writer.commit().version)
"""


def test_two_concurrent_appends_on_the_sql_catalog_both_land(lake_settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(lake_settings.state_dir)}
    go = tmp_path / "go"
    ready = [tmp_path / "ready-1", tmp_path / "ready-2"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(r), str(go), str(seed)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r, seed in zip(ready, (11, 12), strict=True)
    ]
    deadline = time.monotonic() + 180
    while not all(r.exists() for r in ready):
        assert all(c.poll() is None for c in children), [c.stderr.read() for c in children if c.stderr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert ready[0].read_text() == ready[1].read_text()  # the same base snapshot
    go.write_text("go")
    versions = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err[-2000:]
        versions.append(int(out.strip().splitlines()[-1]))
    assert sorted(versions) == [2, 3]  # one after the other, neither lost
    rows = independent_rows(Path(lake_settings.lake_root_uri), "transactions")
    assert rows.num_rows == ROWS + 1_400
    expected = [generate(GeneratorConfig(700, seed=s)) for s in (11, 12)]
    appended = rows.filter(pa.compute.equal(rows["source"], "import"))
    wanted = pa.concat_tables(
        [frame_to_arrow(e, "import").append_column("dt", step_partitions(e["step"].to_numpy())) for e in expected]
    )
    assert _sorted(appended, KEY) == _sorted(wanted, KEY)


def test_a_commit_that_lost_the_race_is_retried_on_the_winners_snapshot(
    lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog refuses a commit onto a stale snapshot (CommitFailedException); the writer retries on
    the newer one, with the files it wrote, and both rows land."""
    from fraudops.lake.table import LakeTable

    table = Lake(lake_settings).transactions
    writer = table.writer("append")
    rows = generate(GeneratorConfig(300, seed=7))
    writer.write(frame_to_arrow(rows, "import"), step_partitions(rows["step"].to_numpy()))
    stale = table.iceberg()
    other = Lake(lake_settings).transactions.writer("append")
    other.write(frame_to_arrow(rows, "generate"), step_partitions(rows["step"].to_numpy()))
    winner = other.commit()
    real, served_stale = LakeTable.iceberg, list[bool]()

    def first_stale(self: LakeTable) -> object:
        if not served_stale:
            served_stale.append(True)
            return stale
        return real(self)

    monkeypatch.setattr(LakeTable, "iceberg", first_stale)
    landed = writer.commit()
    assert served_stale and landed.version == winner.version + 1
    assert independent_rows(Path(lake_settings.lake_root_uri), "transactions").num_rows == ROWS + 600


def test_an_append_refuses_when_another_landed_meanwhile(lake_settings: Settings) -> None:
    """The check runs against the snapshot being committed onto (here --append's newer-steps rule,
    which the other writer's append broke): pyiceberg's own retry would have committed anyway."""
    from fraudops.core.errors import DataError

    lake = Lake(lake_settings)
    later = generate(GeneratorConfig(300, seed=5))
    calls: list[int] = []
    real = lake.transactions.commit

    def sneak_in_first(build: Any, operation: Any) -> Any:
        if not calls:
            calls.append(1)
            other = generate(GeneratorConfig(200, seed=6))
            write_transaction_frames(Lake(lake_settings).transactions, [other.assign(step=other["step"] + 9000)],
                                     append=True)  # fmt: skip
        return real(build, operation)

    table = lake.transactions
    table.commit = sneak_in_first  # type: ignore[method-assign]
    with pytest.raises(DataError, match="another writer appended"):
        write_transaction_frames(table, [later.assign(step=later["step"] + 1000)], append=True)
    assert Lake(lake_settings).transactions.snapshot().rows == ROWS + 200


def test_a_second_catalog_over_the_same_lake_is_refused_not_silently_forked(
    lake_settings: Settings, tmp_path: Path
) -> None:
    """Two SQL catalogs over one location would each hold their own table there and diverge: a catalog
    that does not know a table whose metadata is already at the location refuses to create another."""
    from fraudops.core.errors import DataError

    other = lake_settings.model_copy(update={"lake_catalog_uri": f"sqlite:///{tmp_path}/other-catalog.db"})
    with pytest.raises(DataError, match="another catalog tracks it"):
        Lake(other).transactions.snapshot()
    assert not Lake(other).transactions.storage.list_keys("decisions/")  # the others are still free to create
    assert Lake(other).decisions.snapshot().rows == 0
    assert Lake(lake_settings).transactions.snapshot().rows == ROWS
