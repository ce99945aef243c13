"""Aggregates where transactions are scored: read the entities' hourly buckets once, compute each event's
values from them in event order, and count the events, each once (by its id).

The store keeps, per entity and step, a bucket: the number of events, their amount in cents and the set
of counterparties. Everything an aggregate needs over any window is a sum or a union of buckets, so the
values computed here from buckets equal ``offline.offline_aggregates`` for the same event order (the
parity test replays 10,000 events through the API to show it). Backends (``AggregateStore``) only read and
write buckets; the arithmetic is here, once.

Idempotency: an event's id is its ``transaction_id`` or, without one, a digest of its fields. Counting is
conditional on the id being new (one SQLite transaction, or one DynamoDB ``TransactWriteItems`` with a
condition on the id's marker), and the marker keeps the values the event was scored with: a retried request
counts nothing and is scored with the same aggregates as the first time.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudops.aggregates.definitions import (
    AGGREGATES,
    ENTITY_FIELD,
    LOOKBACK_HOURS,
    ROLES,
    Aggregate,
    cents,
)

EVENT_FIELDS = ("step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest",
                "oldbalanceDest", "newbalanceDest")  # fmt: skip


@dataclass
class Bucket:
    """One entity's events in one step."""

    count: int = 0
    cents: int = 0
    counterparties: set[str] = field(default_factory=set)


History = dict[int, Bucket]  # step -> bucket, for one entity


def entity_key(role: str, name: str) -> str:
    return f"{role}#{name}"


@dataclass(frozen=True)
class Event:
    """What counting needs of a transaction."""

    event_id: str
    step: int
    cents: int
    names: Mapping[str, str | None]  # role -> entity name (None: not sent)

    def counterparty(self, role: str) -> str | None:
        return self.names["dest" if role == "orig" else "orig"]

    def entities(self) -> list[str]:
        return [entity_key(role, name) for role, name in self.names.items() if name is not None]


def event_id(row: Mapping[str, Any]) -> str:
    """``transaction_id``, or a digest of the transaction's fields (a retried identical body is the same event)."""
    given = row.get("transaction_id")
    if given:
        return f"id:{given}"
    canonical = json.dumps([row.get(name) for name in EVENT_FIELDS], separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def event_of(row: Mapping[str, Any]) -> Event:
    names: dict[str, str | None] = {
        role: (None if row.get(ENTITY_FIELD[role]) is None else str(row[ENTITY_FIELD[role]])) for role in ROLES
    }
    return Event(event_id(row), int(row["step"]), cents(row["amount"]), names)


def values_from(
    histories: Mapping[str, History], event: Event, aggregates: Sequence[Aggregate] = AGGREGATES
) -> dict[str, float]:
    """The event's aggregates from the buckets of its entities (events before it only: the caller
    applies the event after this)."""
    values: dict[str, float] = {}
    for aggregate in aggregates:
        name = event.names[aggregate.role]
        if name is None:
            values[aggregate.name] = math.nan
            continue
        history = histories.get(entity_key(aggregate.role, name), {})
        first = event.step - aggregate.hours + 1
        buckets = [bucket for step, bucket in history.items() if first <= step <= event.step]
        if aggregate.measure == "count":
            values[aggregate.name] = float(sum(bucket.count for bucket in buckets))
        elif aggregate.measure == "amount":
            values[aggregate.name] = sum(bucket.cents for bucket in buckets) / 100.0
        elif aggregate.measure == "distinct":
            values[aggregate.name] = float(len(set().union(*(bucket.counterparties for bucket in buckets))))
        else:
            seen = [step for step, bucket in history.items() if first <= step <= event.step and bucket.count]
            values[aggregate.name] = float(event.step - max(seen)) if seen else math.nan
    return values


def apply(histories: dict[str, History], event: Event) -> None:
    """Count ``event`` in the in-memory buckets (the next events of a batch see it)."""
    for role in ROLES:
        name = event.names[role]
        if name is None:
            continue
        bucket = histories.setdefault(entity_key(role, name), {}).setdefault(event.step, Bucket())
        bucket.count += 1
        bucket.cents += event.cents
        other = event.counterparty(role)
        if other is not None:
            bucket.counterparties.add(other)


@dataclass
class StoreRead:
    histories: dict[str, History]  # entity key -> its buckets in the steps asked for
    recorded: dict[str, dict[str, float]]  # event id -> the values it was scored with


@dataclass(frozen=True)
class Recording:
    event: Event
    values: Mapping[str, float]


class AggregateStore(ABC):
    """Hourly buckets per entity and the ids of the events counted in them."""

    @abstractmethod
    def read(self, entities: Iterable[str], first_step: int, last_step: int, event_ids: Iterable[str]) -> StoreRead:
        """The buckets of ``entities`` in steps ``first_step..last_step`` and the values recorded for any of
        ``event_ids`` already counted: one batched read."""

    @abstractmethod
    def record(self, recordings: Sequence[Recording]) -> list[bool]:
        """Count each event once: True where it was counted now, False where its id was counted before."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""


def aggregate_rows(store: AggregateStore, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Each row's aggregates, in the rows' order (a batch's later rows see its earlier ones), counting
    every new event once. Rows with an id already counted get the values recorded for it."""
    if not rows:
        return []
    events = [event_of(row) for row in rows]
    entities = {key for event in events for key in event.entities()}
    first = min(event.step for event in events) - LOOKBACK_HOURS + 1
    read = store.read(entities, first, max(event.step for event in events), {event.event_id for event in events})
    histories, known = read.histories, dict(read.recorded)
    results: list[dict[str, float]] = []
    new: list[Recording] = []
    for event in events:
        if event.event_id in known:
            results.append(dict(known[event.event_id]))
            continue
        values = values_from(histories, event)
        apply(histories, event)
        known[event.event_id] = values
        new.append(Recording(event, values))
        results.append(values)
    if new:
        store.record(new)
    return results


def encode_values(values: Mapping[str, float]) -> str:
    return json.dumps({name: (None if value != value else value) for name, value in values.items()})


def decode_values(raw: str) -> dict[str, float]:
    return {name: (math.nan if value is None else float(value)) for name, value in json.loads(raw).items()}


def response_values(values: Mapping[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: a missing value (no entity, nothing earlier) is null."""
    return {name: (None if value != value else value) for name, value in values.items()}
