"""Issue 27 item 9: what docs/lake.md says about a crashed writer's orphans is what the code does: who
sees them, how long they stay, and that a replacing writer's vacuum keeps a young one."""

from __future__ import annotations

import inspect
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
from fraudops_dev.datagen import GeneratorConfig, generate_frames

from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.table import ORPHAN_GRACE_SECONDS, LakeTable, TableWriter
from fraudops.lake.transactions import write_transaction_frames

ROOT = Path(__file__).resolve().parents[2]
LAKE_DOC = ROOT / "docs" / "lake.md"


def test_the_documented_orphan_grace_is_the_codes() -> None:
    section = LAKE_DOC.read_text().split("### Orphans and folder readers", 1)[1].split("\n## ", 1)[0]
    assert inspect.signature(LakeTable.vacuum).parameters["orphan_grace_seconds"].default == ORPHAN_GRACE_SECONDS
    hours = ORPHAN_GRACE_SECONDS / 3600
    assert f"{ORPHAN_GRACE_SECONDS:,.0f} s" in section and "ORPHAN_GRACE_SECONDS" in section
    assert f"**{hours:g} hour{'s' if hours != 1 else ''}**" in section
    assert "indefinitely" in section and "issue 29" in section and "Athena" in section
    # the old claims that were not true
    assert not re.search(r"deletes them after an hour|run by every replacing writer", LAKE_DOC.read_text())


def _orphan(table_dir: Path, started: datetime) -> Path:
    """What a writer killed before its commit leaves: a part named with its commit id (its start time)."""
    committed = sorted(table_dir.rglob("*.parquet"))[0]
    orphan = committed.parent / f"part-{started:%Y%m%dT%H%M%S}-crashedwriter-00000.parquet"
    shutil.copy(committed, orphan)
    return orphan


def _write(lake: Lake, rows: int, seed: int, append: bool = False) -> None:
    frames = generate_frames(GeneratorConfig(rows, seed=seed, step_offset=10_000 if append else 0))
    write_transaction_frames(lake.transactions, frames, append=append, source="generate")


def test_a_replace_keeps_a_young_orphan_that_folder_readers_see_and_deletes_an_old_one(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    lake = Lake(settings)
    _write(lake, 2_000, seed=1)
    folder = Path(settings.lake_root_uri) / "transactions"
    now = datetime.now(UTC)
    young = _orphan(folder, now - timedelta(seconds=ORPHAN_GRACE_SECONDS - 300))
    old = _orphan(folder, now - timedelta(seconds=ORPHAN_GRACE_SECONDS + 300))

    committed_rows = lake.transactions.manifest().rows
    assert lake.transactions.read().num_rows == committed_rows  # the manifest's readers: no orphan
    folder_rows = ds.dataset(folder, format="parquet", partitioning="hive").count_rows()
    assert folder_rows > committed_rows  # a folder reader (Athena) counts the orphans' rows too

    _write(lake, 1_000, seed=2, append=True)  # an append never vacuums
    assert young.exists() and old.exists()

    _write(lake, 1_000, seed=3)  # a replace vacuums: the old orphan goes, the young one stays
    assert young.exists() and not old.exists()
    assert lake.transactions.read().num_rows == 1_000


def test_only_a_replacing_commit_vacuums() -> None:
    """docs/lake.md: nothing else deletes orphans (so those of decisions and labels stay). A new caller
    of vacuum fails this test: then the doc's section needs its new answer."""
    callers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "layers" / "runtime" / "fraudops").rglob("*.py")
        if ".vacuum(" in path.read_text()
    ]
    assert callers == ["layers/runtime/fraudops/lake/table.py"]
    source = inspect.getsource(TableWriter.commit)
    assert 'if self.operation == "replace":\n            self.table.vacuum()' in source
