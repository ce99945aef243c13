"""Issue 27 item 9, on Iceberg (issue 29): what docs/lake.md says about a crashed writer's orphans is what
the code does: no reader of the table sees them, the maintenance step deletes them after the documented
grace and keeps a younger one, and expired snapshots' files go with it."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

from fraudops_dev.datagen import GeneratorConfig, generate_frames

from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.maintenance import maintain_lake
from fraudops.lake.table import ORPHAN_GRACE_SECONDS, LakeTable
from fraudops.lake.transactions import read_training_data, write_transaction_frames

ROOT = Path(__file__).resolve().parents[2]
LAKE_DOC = ROOT / "docs" / "lake.md"


def test_the_documented_orphan_grace_is_the_codes() -> None:
    section = LAKE_DOC.read_text().split("### Orphans and maintenance", 1)[1].split("\n## ", 1)[0]
    assert inspect.signature(LakeTable.remove_orphans).parameters["grace_seconds"].default == ORPHAN_GRACE_SECONDS
    hours = ORPHAN_GRACE_SECONDS / 3600
    assert f"{ORPHAN_GRACE_SECONDS:,.0f} s" in section and "ORPHAN_GRACE_SECONDS" in section
    assert f"**{hours:g} hour{'s' if hours != 1 else ''}**" in section
    assert "FRAUDOPS_LAKE_SNAPSHOT_RETENTION_DAYS" in section and "curation" in section
    # the old layout's claims are gone with it
    before_migrating = LAKE_DOC.read_text().split("## Migrating")[0]
    assert not re.search(r"vacuum|_manifests/<version>|partition projection", before_migrating)


def _orphan(table_dir: Path, age_seconds: float) -> Path:
    """What a writer killed before its commit leaves: a data file no snapshot names, ``age_seconds`` old."""
    committed = sorted((table_dir / "data").rglob("*.parquet"))[0]
    orphan = committed.parent / f"00000-0-crashed-{int(age_seconds)}.parquet"
    shutil.copy(committed, orphan)
    then = time.time() - age_seconds
    os.utime(orphan, (then, then))
    return orphan


def _write(lake: Lake, rows: int, seed: int, append: bool = False) -> None:
    frames = generate_frames(GeneratorConfig(rows, seed=seed, step_offset=10_000 if append else 0))
    write_transaction_frames(lake.transactions, frames, append=append, source="generate")


def test_maintenance_keeps_a_young_orphan_deletes_an_old_one_and_no_reader_sees_either(tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    settings = Settings(state_dir=tmp_path / "state")
    lake = Lake(settings)
    _write(lake, 2_000, seed=1)
    folder = Path(settings.lake_root_uri) / "transactions"
    young = _orphan(folder, ORPHAN_GRACE_SECONDS - 300)
    old = _orphan(folder, ORPHAN_GRACE_SECONDS + 300)

    committed_rows = lake.transactions.snapshot().rows
    assert lake.transactions.read().num_rows == committed_rows  # the table's readers: no orphan
    assert ds.dataset(folder / "data", format="parquet").count_rows() > committed_rows  # only a folder reader

    maintain_lake(settings)  # the curation schedule's step
    assert young.exists() and not old.exists()
    assert lake.transactions.read().num_rows == committed_rows == 2_000


def test_expired_snapshots_files_go_and_time_travel_reaches_back_to_the_retention(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    lake = Lake(settings)
    _write(lake, 2_000, seed=1)
    first = lake.transactions.snapshot()
    first_files = {f.key for f in lake.transactions.files()}
    _write(lake, 1_000, seed=3)  # a replace: the first snapshot's files stay for time travel ...
    maintain_lake(settings)
    assert read_training_data(lake.transactions, snapshot_id=first.snapshot_id).rows == 2_000
    lake_root = Path(settings.lake_root_uri)
    assert all((lake_root / key).exists() for key in first_files)
    # ... until the snapshot expires (retention 0 days here), then the next cleanup deletes them
    expired = settings.model_copy(update={"lake_snapshot_retention_days": 0.0})
    assert lake.transactions.expire_snapshots(timedelta(0)) == 1
    assert lake.transactions.remove_orphans(grace_seconds=0) >= len(first_files)
    assert not any((lake_root / key).exists() for key in first_files)
    assert maintain_lake(expired)["transactions"] == {"expired": 0, "orphans": 0}
    assert lake.transactions.read().num_rows == 1_000


def test_only_the_maintenance_step_deletes_data_files() -> None:
    """docs/lake.md: the curation run's maintenance is what deletes orphans and expired files (and a
    writer's abort its own files). A new caller fails this test: then the doc's section needs its answer."""
    callers = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "layers" / "runtime" / "fraudops").rglob("*.py")
        if ".remove_orphans(" in path.read_text() or ".expire_snapshots(" in path.read_text()
    )
    assert callers == ["layers/runtime/fraudops/lake/maintenance.py", "layers/runtime/fraudops/lake/table.py"]
    assert "maintain_lake(settings, lake)" in (ROOT / "layers/runtime/fraudops/lake/curation.py").read_text()
