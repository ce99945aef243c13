"""Fraud labels that arrive later (chargebacks, investigations), stored durably beside the captures.

Each call (one ``POST /feedback``, one ``fraudops import-labels`` file) writes **one** object of label
events, ``labels/YYYY/MM/DD/HH/<time>-<id>.jsonl`` (one JSON object per line), whatever its size: a
1,000-label request costs one PUT, not a GET and a PUT per label (at ~20 ms per S3 request that was
~40 s, past API Gateway's 29 s integration timeout). Label events are append-only; the newest word per
transaction wins (by ``received_at``, then by write order), so sending the same label twice is safe and
a changed label replaces the old one. Curation compacts these objects into the lake's ``labels`` table
once each (``fraudops.lake.curation.compact_labels``); the monitor joins the table with decisions.

Objects of the earlier layout (one ``labels/<hash>/<id>.json`` object per transaction) are still read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from fraudops.core.config import Settings
from fraudops.store import blob_store

LABELS_PREFIX = "labels/"


def batch_key(when: datetime) -> str:
    """Where one call's label events go: sorted by time, unique per call."""
    return f"{LABELS_PREFIX}{when:%Y/%m/%d/%H}/{when:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:12]}.jsonl"


def store_labels(settings: Settings, labels: Iterable[tuple[str, bool]], source: str) -> dict[str, int]:
    """Store one call's labels as one object; returns how many were stored and how many ids repeated
    inside the call (the last of them wins). Nothing is read: cost is one request per call."""
    now = datetime.now(UTC)
    received_at = now.isoformat(timespec="milliseconds")  # the lake keeps ms
    latest: dict[str, bool] = {}
    given = 0
    for transaction_id, is_fraud in labels:
        given += 1
        latest.pop(str(transaction_id), None)  # keep the call's order: the last word goes last
        latest[str(transaction_id)] = bool(is_fraud)
    if latest:
        lines = [
            json.dumps({"transaction_id": tid, "is_fraud": flag, "received_at": received_at, "source": source})
            for tid, flag in latest.items()
        ]
        blob_store(settings).put(batch_key(now), ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
    return {"stored": len(latest), "repeated": given - len(latest)}


def parse_label_object(key: str, body: bytes) -> Iterator[dict[str, Any]]:
    """Label events in one object, either layout; a line that is not a label event is skipped."""
    texts = body.decode("utf-8", errors="replace").splitlines() if key.endswith(".jsonl") else [body.decode()]
    for text in texts:
        try:
            record = json.loads(text)
            yield {
                "transaction_id": str(record["transaction_id"]),
                "is_fraud": bool(record["is_fraud"]),
                "received_at": datetime.fromisoformat(record["received_at"]),
                "source": str(record.get("source") or "feedback"),
            }
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line: not a label event


def read_labels(settings: Settings) -> dict[str, bool]:
    """transaction id -> its newest label, straight from the label objects (the local append path and
    tests; the monitor and curation read the lake's compacted ``labels`` table instead)."""
    store = blob_store(settings)
    events: list[tuple[datetime, int, str, bool]] = []
    for order, key in enumerate(store.list_keys(LABELS_PREFIX)):
        body = store.get_or_none(key)
        if body is not None:
            events += [
                (e["received_at"], order, e["transaction_id"], e["is_fraud"]) for e in parse_label_object(key, body)
            ]
    return {tid: flag for _, _, tid, flag in sorted(events, key=lambda e: (e[0], e[1]))}
