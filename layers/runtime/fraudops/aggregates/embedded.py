"""The embedded aggregate store: a SQLite file in the state dir, so a laptop needs no server to start.

Same behaviour as the DynamoDB store: hourly buckets per entity, the counterparties per bucket, and a
marker per counted event id, all written in one transaction that first claims the id (``INSERT OR IGNORE``:
an id already there counts nothing). WAL mode, ``synchronous=NORMAL``: a commit does not wait for the disk
(a power cut may lose the last commits, never corrupt the file); one connection behind a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from fraudops.aggregates.online import (
    AggregateStore,
    Bucket,
    History,
    Recording,
    StoreRead,
    decode_values,
    encode_values,
    entity_key,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    entity TEXT NOT NULL, step INTEGER NOT NULL, count INTEGER NOT NULL, cents INTEGER NOT NULL,
    PRIMARY KEY (entity, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counterparties (
    entity TEXT NOT NULL, step INTEGER NOT NULL, counterparty TEXT NOT NULL,
    PRIMARY KEY (entity, step, counterparty)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counted (event_id TEXT PRIMARY KEY, aggregate_values TEXT NOT NULL) WITHOUT ROWID;
"""
_CHUNK = 500  # SQLite's host-parameter limit is 32,766 since 3.32; small IN lists keep plans simple


class EmbeddedAggregateStore(AggregateStore):
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute("PRAGMA busy_timeout=10000")
            self._connection.executescript(_SCHEMA)

    def read(self, entities: Iterable[str], first_step: int, last_step: int, event_ids: Iterable[str]) -> StoreRead:
        keys, ids = sorted(set(entities)), sorted(set(event_ids))
        histories: dict[str, History] = {}
        recorded: dict[str, dict[str, float]] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                part = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                for entity, step, count, cents in self._connection.execute(
                    f"SELECT entity, step, count, cents FROM buckets WHERE entity IN ({marks}) "
                    "AND step BETWEEN ? AND ?",
                    (*part, first_step, last_step),
                ):
                    histories.setdefault(entity, {})[step] = Bucket(count, cents)
                for entity, step, counterparty in self._connection.execute(
                    f"SELECT entity, step, counterparty FROM counterparties WHERE entity IN ({marks}) "
                    "AND step BETWEEN ? AND ?",
                    (*part, first_step, last_step),
                ):
                    histories[entity][step].counterparties.add(counterparty)
            for start in range(0, len(ids), _CHUNK):
                part = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                for found, raw in self._connection.execute(
                    f"SELECT event_id, aggregate_values FROM counted WHERE event_id IN ({marks})", part
                ):
                    recorded[found] = decode_values(raw)
        return StoreRead(histories, recorded)

    def record(self, recordings: Sequence[Recording]) -> list[bool]:
        counted: list[bool] = []
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for recording in recordings:
                    event = recording.event
                    cursor.execute(
                        "INSERT OR IGNORE INTO counted (event_id, aggregate_values) VALUES (?, ?)",
                        (event.event_id, encode_values(recording.values)),
                    )
                    if cursor.rowcount == 0:
                        counted.append(False)
                        continue
                    for role, name in event.names.items():
                        if name is None:
                            continue
                        key = entity_key(role, name)
                        cursor.execute(
                            "INSERT INTO buckets (entity, step, count, cents) VALUES (?, ?, 1, ?) ON CONFLICT "
                            "(entity, step) DO UPDATE SET count = count + 1, cents = cents + excluded.cents",
                            (key, event.step, event.cents),
                        )
                        other = event.counterparty(role)
                        if other is not None:
                            cursor.execute(
                                "INSERT OR IGNORE INTO counterparties (entity, step, counterparty) VALUES (?, ?, ?)",
                                (key, event.step, other),
                            )
                    counted.append(True)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return counted

    def close(self) -> None:
        with self._lock:
            self._connection.close()
