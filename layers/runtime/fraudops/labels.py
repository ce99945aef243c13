"""Fraud labels that arrive later (chargebacks, investigations), stored durably beside the captures.

One small object per transaction (``labels/<hash>/<transaction id>.json``) in the blob store: storing
the same label twice changes nothing (idempotent), a different label replaces the old one (the newest
word wins) and is counted as updated. The monitor joins them with captured decisions by
``transaction_id``; a label whose id matches no decision is listed in its report, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from fraudops.config import Settings
from fraudops.store import blob_store

LABELS_PREFIX = "labels/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _key(transaction_id: str) -> str:
    digest = hashlib.sha256(transaction_id.encode()).hexdigest()
    return f"{LABELS_PREFIX}{digest[:2]}/{_UNSAFE.sub('_', transaction_id)[:80]}-{digest[:12]}.json"


def store_labels(settings: Settings, labels: Iterable[tuple[str, bool]], source: str) -> dict[str, int]:
    store = blob_store(settings)
    counts = {"new": 0, "unchanged": 0, "updated": 0}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for transaction_id, is_fraud in labels:
        key = _key(transaction_id)
        existing = store.get_or_none(key)
        if existing is not None:
            if bool(json.loads(existing)["is_fraud"]) == bool(is_fraud):
                counts["unchanged"] += 1
                continue
            counts["updated"] += 1
        else:
            counts["new"] += 1
        body = {"transaction_id": transaction_id, "is_fraud": bool(is_fraud), "received_at": now, "source": source}
        store.put(key, json.dumps(body).encode())
    return counts


def read_labels(settings: Settings) -> dict[str, bool]:
    store = blob_store(settings)
    labels = {}
    for key in store.list_keys(LABELS_PREFIX):
        body = store.get_or_none(key)
        if body is not None:
            record = json.loads(body)
            labels[str(record["transaction_id"])] = bool(record["is_fraud"])
    return labels
