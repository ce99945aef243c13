"""Curation: captured decisions + late labels -> training rows, with label maturity.

Three incremental steps, each committed on its own with its checkpoint in the same Iceberg commit as its
data (the snapshot's properties), so a crash between two steps loses nothing and repeats nothing:

1. **labels**: label objects (``labels/…jsonl`` in the artifact store, one per ``POST /feedback`` call)
   modified since the last checkpoint are appended to the ``labels`` table (append-only events; the
   newest word per transaction wins when read).
2. **decisions**: capture lines not compacted yet are appended to the ``decisions`` table; the
   checkpoint is the last closed hour (its end at least ``SETTLE`` ago, so Firehose's buffer, at most
   900 s, has delivered it) plus the bytes already read of each object after it.
3. **transactions**: a decision becomes a training row with ``isFraud=1`` as soon as a fraud label for
   it exists, with ``isFraud=0`` once ``label_maturity_days`` have passed without one, and is *pending*
   before that (neither trained on, held out nor measured). The checkpoint is the maturity horizon plus
   the ids of fraud rows curated before it, so nothing is ever curated twice.

Running it twice in a row commits nothing the second time. Each run ends with the lake's maintenance
(``fraudops.lake.maintenance``: snapshot expiry, orphan cleanup).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudops.core.config import Settings
from fraudops.core.errors import DataError, StoreError
from fraudops.core.schema import COLUMNS, RAW_FEATURE_COLUMNS
from fraudops.lake import Lake
from fraudops.lake.schemas import DECISIONS, dt_of_time
from fraudops.lake.table import Snapshot
from fraudops.lake.transactions import frame_to_arrow, step_partitions
from fraudops.monitoring.capture import CAPTURE_PREFIX, iter_capture_lines
from fraudops.store import blob_store

log = logging.getLogger(__name__)

SETTLE = timedelta(minutes=20)  # Firehose: buffer interval at most 900 s, then delivery
LABELS_CHECKPOINT = "labels_listed_through"
DECISIONS_CHECKPOINT = "decisions_compacted_through_hour"
DECISIONS_OFFSETS = "decisions_compacted_bytes"
MATURED_CHECKPOINT = "curation_matured_through"
EARLY_FRAUD_IDS = "curation_fraud_ids_after_horizon"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CurationReport:
    labels_added: int = 0
    decisions_added: int = 0
    rows_curated: int = 0
    fraud_curated: int = 0
    pending: int = 0
    matured_through: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- 1. labels ---------------------------------------------------------------------------------------


def compact_labels(settings: Settings, lake: Lake, now: datetime) -> int:
    """Label objects written since the checkpoint -> label events (each object read once: one GET per
    ``POST /feedback`` call, however many labels it carried)."""
    from fraudops.monitoring.labels import LABELS_PREFIX, parse_label_object

    table = lake.labels
    current = table.snapshot()
    checkpoint = current.properties.get(LABELS_CHECKPOINT)
    since = datetime.fromisoformat(checkpoint) if checkpoint else _EPOCH
    store = blob_store(settings)
    listed = store.list_keys_modified(LABELS_PREFIX)
    # A label written while this runs may carry a slightly older time than the newest seen: re-read the
    # last minute next time (identical events are dropped below; the newest word wins anyway).
    horizon = (now - timedelta(minutes=1)).isoformat()
    fresh = [key for key, modified in listed if modified >= since]
    events: list[dict[str, Any]] = []
    for key in fresh:
        body = store.get_or_none(key)
        if body is not None:
            events += parse_label_object(key, body)
    known = _latest_labels(lake) if events else {}
    events = [e for e in events if known.get(e["transaction_id"]) != (e["is_fraud"], e["received_at"])]
    if not events and checkpoint:
        return 0
    writer = table.writer("append")
    if events:
        frame = pa.Table.from_pylist(events)
        writer.write(frame, [dt_of_time(e["received_at"]) for e in events])
    writer.commit({LABELS_CHECKPOINT: horizon}, check=_nobody_else_committed(current, LABELS_CHECKPOINT))
    return len(events)


def _latest_labels(lake: Lake) -> dict[str, tuple[bool, datetime]]:
    data = lake.labels.read(columns=["transaction_id", "is_fraud", "received_at"]).to_pandas()
    if data.empty:
        return {}
    data = data.sort_values("received_at", kind="stable").drop_duplicates("transaction_id", keep="last")
    return {
        tid: (bool(flag), when.to_pydatetime())
        for tid, flag, when in zip(data["transaction_id"], data["is_fraud"], data["received_at"], strict=True)
    }


def read_lake_labels(lake: Lake) -> dict[str, bool]:
    """transaction id -> the newest label (label reads cost a request per partition file, not per label)."""
    return {tid: flag for tid, (flag, _) in _latest_labels(lake).items()}


# --- 2. decisions ------------------------------------------------------------------------------------


def decision_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {"fraudops_capture", "time", "request_id", "transaction_id", "model_version", "probability",
             "prediction", "threshold", "transaction"}  # fmt: skip
    features = [c.name for c in DECISIONS.columns if c.name in COLUMNS]
    rows = []
    for record in records:
        transaction = record.get("transaction") or {}
        extra = {k: v for k, v in record.items() if k not in known}
        rows.append({
            "decision_time": datetime.fromisoformat(record["time"]),
            "request_id": str(record.get("request_id") or ""),
            "transaction_id": record.get("transaction_id"),
            "model_version": str(record.get("model_version")),
            "probability": float(record["probability"]),
            "prediction": float(record["prediction"]),
            "threshold": float(record["threshold"]),
            **{name: transaction.get(name) for name in features},
            "details": json.dumps(extra, default=str) if extra else None,
        })  # fmt: skip
    return rows


def compact_decisions(settings: Settings, lake: Lake, now: datetime, settle: timedelta = SETTLE) -> int:
    """New capture lines -> the decisions table, one commit.

    The checkpoint is the last *closed* hour (its end ``settle`` ago: Firehose has delivered it) plus, for
    the hours after it, how many bytes of each capture object are already compacted. Firehose objects
    never change; a local capture file only grows (appended lines), so the next run reads from that
    offset, and only up to the last complete line."""
    table = lake.decisions
    current = table.snapshot()
    store = blob_store(settings)
    closed_through = current.properties.get(DECISIONS_CHECKPOINT)
    offsets: dict[str, int] = dict(current.properties.get(DECISIONS_OFFSETS, {}))
    last_closed = (now - settle).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    keys = [k for k in store.list_keys(CAPTURE_PREFIX) if closed_through is None or _hour_of(k) > closed_through]
    writer = table.writer("append")
    added = 0
    new_offsets = dict(offsets)
    for key in keys:
        body = store.get_or_none(key)
        if body is None:
            continue
        start = offsets.get(key, 0)
        if body[:2] == b"\x1f\x8b":  # a Firehose object: whole, once
            if start:
                continue
            chunk, end = body, len(body)
        else:
            end = body.rfind(b"\n") + 1  # complete lines only: a line being written waits for the next run
            chunk = body[start:end]
        if end <= start:
            continue
        rows = decision_rows(iter_capture_lines(chunk))
        if rows:
            writer.write(pa.Table.from_pylist(rows), [dt_of_time(r["decision_time"]) for r in rows])
            added += len(rows)
        new_offsets[key] = end
    closed = [h for h in {_hour_of(k) for k in new_offsets} if _hour(h) <= last_closed]
    through = max([closed_through or "", *closed]) or None
    new_offsets = {k: v for k, v in new_offsets.items() if through is None or _hour_of(k) > through}
    if added == 0 and through == closed_through and new_offsets == offsets:
        return 0
    writer.commit({DECISIONS_CHECKPOINT: through, DECISIONS_OFFSETS: new_offsets},
                  check=_nobody_else_committed(current, DECISIONS_CHECKPOINT, DECISIONS_OFFSETS))  # fmt: skip
    return added


class CurationConflictError(DataError):
    """Another curation or compaction committed onto the checkpoint this one started from."""


def compact_retrying(compaction: Callable[[], int], attempts: int = 3) -> int:
    """Run a compaction; when another one committed meanwhile (its rows are in), compact what is left."""
    for _ in range(attempts - 1):
        try:
            return compaction()
        except CurationConflictError:
            continue
    return compaction()


def _nobody_else_committed(read: Snapshot, *checkpoints: str) -> Callable[[Snapshot], None]:
    """Refuse a commit onto checkpoints another compaction moved after ``read``: both read the same new
    lines, so committing both would store them twice (the hourly schedule and the state machine's Curate
    step can overlap). The loser commits nothing; its next run starts from the winner's checkpoint."""

    def check(latest: Snapshot) -> None:
        if any(latest.properties.get(name) != read.properties.get(name) for name in checkpoints):
            raise CurationConflictError("another curation committed meanwhile; nothing was added, run it again")

    return check


def _hour_of(key: str) -> str:
    return key[len(CAPTURE_PREFIX) : len(CAPTURE_PREFIX) + 13]


def _hour(folder: str) -> datetime:
    return datetime.strptime(folder, "%Y/%m/%d/%H").replace(tzinfo=UTC)


# --- 3. curated transactions -------------------------------------------------------------------------


def curate(settings: Settings, lake: Lake, now: datetime, report: CurationReport) -> None:
    transactions = lake.transactions
    current = transactions.snapshot()
    horizon_before = datetime.fromisoformat(current.properties.get(MATURED_CHECKPOINT, _EPOCH.isoformat()))
    early_before = set(current.properties.get(EARLY_FRAUD_IDS, []))
    horizon = now - timedelta(days=settings.label_maturity_days)
    first_dt = dt_of_time(horizon_before)
    files = lake.decisions.files(first_dt=first_dt)  # partition pruning: older ones are done
    decisions = lake.decisions.read(files=files).to_pandas()
    report.matured_through = max(horizon, horizon_before).isoformat()
    if decisions.empty:
        return
    labels = read_lake_labels(lake)
    usable = decisions["transaction_id"].notna()
    for column in RAW_FEATURE_COLUMNS:
        usable &= decisions[column].notna()
    decisions = decisions[usable]
    decisions = decisions[decisions["decision_time"] > pd.Timestamp(horizon_before)]
    decisions = decisions.sort_values("decision_time", kind="stable").drop_duplicates("transaction_id")
    ids = decisions["transaction_id"].to_numpy()
    fraud = np.array([labels.get(t) is True for t in ids], dtype=bool)
    matured = (decisions["decision_time"] <= pd.Timestamp(horizon)).to_numpy()
    already = np.array([t in early_before for t in ids], dtype=bool)
    take = (fraud | matured) & ~already
    report.pending = int((~fraud & ~matured).sum())
    chosen = decisions[take]
    early_after = sorted({*early_before, *ids[fraud & ~matured]} - set(ids[matured]))
    if chosen.empty:  # nothing new to learn from: committing only a later horizon would change nothing
        return
    rows = pd.DataFrame({column: chosen[column].to_numpy() for column in COLUMNS if column in chosen.columns})
    rows["nameOrig"] = rows["nameOrig"].fillna(pd.Series([f"C{t}" for t in chosen["transaction_id"]]))
    rows["nameDest"] = rows["nameDest"].fillna("C0")
    rows["isFraud"] = fraud[take].astype(np.int8)
    rows["isFlaggedFraud"] = np.int8(0)
    rows["transaction_id"] = chosen["transaction_id"].to_numpy()
    writer = transactions.writer("append")
    if len(rows):
        writer.write(frame_to_arrow(rows, "curated"), step_partitions(rows["step"].to_numpy()))
    properties = {MATURED_CHECKPOINT: report.matured_through, EARLY_FRAUD_IDS: early_after}

    def unchanged(latest: Any) -> None:
        if latest.properties.get(MATURED_CHECKPOINT) != current.properties.get(MATURED_CHECKPOINT):
            raise CurationConflictError("another curation committed meanwhile; nothing was added, run it again")

    writer.commit(properties, check=unchanged)
    report.rows_curated = len(rows)
    report.fraud_curated = int(rows["isFraud"].sum())


def pending_count(settings: Settings, lake: Lake, now: datetime | None = None) -> int:
    """Decisions neither fraud-labeled nor past the maturity window: what the monitor reports as pending."""
    now = now or datetime.now(UTC)
    horizon = pd.Timestamp(now - timedelta(days=settings.label_maturity_days))
    decisions = lake.decisions.read(columns=["decision_time", "transaction_id"]).to_pandas()
    if decisions.empty:
        return 0
    recent = decisions[(decisions["decision_time"] > horizon) & decisions["transaction_id"].notna()]
    labels = read_lake_labels(lake)
    return int(sum(1 for t in recent["transaction_id"].unique() if labels.get(t) is not True))


def run_curation(settings: Settings, now: datetime | None = None, settle: timedelta = SETTLE) -> CurationReport:
    """The whole curation stage (CLI ``fraudops curate``, the Curate state, its own schedule)."""
    now = now or datetime.now(UTC)
    lake = Lake(settings)
    report = CurationReport()
    report.labels_added = compact_labels(settings, lake, now)
    report.decisions_added = compact_decisions(settings, lake, now, settle)
    curate(settings, lake, now, report)
    log.info("curation: %s", report.as_dict())
    from fraudops.lake.maintenance import maintain_lake

    try:
        maintain_lake(settings, lake)  # the schedule's upkeep step: snapshot expiry, orphan cleanup
    except StoreError as error:  # curation's commits stand; the next run tries the upkeep again
        log.warning("lake maintenance failed (curation's commits stand; the next run retries): %s", error)
    return report
