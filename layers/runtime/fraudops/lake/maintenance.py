"""The lake's upkeep, a step of the hourly curation schedule (``run_curation``): Iceberg keeps every
snapshot and every file one ever named until told otherwise, and never deletes a crashed writer's files.

- **snapshot expiry** (pyiceberg's ``expire_snapshots``): snapshots older than
  ``lake_snapshot_retention_days`` go (never the current one, nor a tagged one); time travel and
  ``fraudops train --snapshot`` reach back that far;
- **orphan cleanup** (``LakeTable.remove_orphans``, ours: pyiceberg 0.12 has none): files no retained
  snapshot or metadata file names, older than ``ORPHAN_GRACE_SECONDS``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fraudops.core.config import Settings
from fraudops.lake import TABLES, Lake

log = logging.getLogger(__name__)


def maintain_lake(settings: Settings, lake: Lake | None = None) -> dict[str, dict[str, int]]:
    """Expire old snapshots, then delete orphans, table by table: {table: {expired, orphans}}."""
    lake = lake or Lake(settings)
    retention = timedelta(days=settings.lake_snapshot_retention_days)
    done: dict[str, dict[str, int]] = {}
    from pyiceberg.exceptions import CommitFailedException

    for name in TABLES:
        table = lake.table(name)
        try:
            expired = table.expire_snapshots(retention)
        except CommitFailedException as error:  # a writer committed meanwhile: the next run expires them
            log.info("snapshot expiry of %s lost a race (next run): %s", name, error)
            expired = 0
        done[name] = {"expired": expired, "orphans": table.remove_orphans()}
    log.info("lake maintenance: %s", done)
    return done
