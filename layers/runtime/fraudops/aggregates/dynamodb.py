"""The aggregate store in AWS: one DynamoDB table (on-demand, declared in the template).

Layout (partition key ``pk`` only):

- ``<role>#<entity>#d<day>``: one entity's day (``day = step // 24``), with per hour ``hh`` of that day
  ``cHH`` (number of events), ``aHH`` (amount in cents) and ``pHH`` (string set of counterparties);
- ``event#<id>``: the marker of a counted event, ``v`` = the aggregates it was scored with (JSON).

A request reads its two entities' days in the 7-day lookback (8 items each) and its marker: 17 keys in one
``BatchGetItem`` (at most 100 keys and 16 MB per call; unprocessed keys are retried, as the API reference
says a partial result must be). Counting one event is one ``TransactWriteItems``: a ``Put`` of the marker
with ``attribute_not_exists(pk)`` and an ``ADD`` to each entity's day item. The condition failing cancels
the whole transaction (``TransactionCanceledException``, reason ``ConditionalCheckFailed`` for the
marker), so a retried event changes no counter. ``ADD`` creates a missing item and attribute, and a string
set ignores a value already in it. Reads are strongly consistent (``ConsistentRead``): an eventually
consistent read may miss a write of the last second. Items carry ``expires_at`` for the table's TTL
(``aggregate_ttl_days`` after their last write: longer than the lookback).

Docs: BatchGetItem and TransactWriteItems in the DynamoDB API Reference; ADD in "Update expressions";
TransactionCanceledException's CancellationReasons (the reason per action, in order).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from fraudops.aggregates.definitions import HOURS_PER_DAY
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
from fraudops.core.errors import StoreError

MAX_BATCH_KEYS = 100
MAX_UNPROCESSED_ROUNDS = 8


def day_key(entity: str, day: int) -> str:
    return f"{entity}#d{day}"


def marker_key(event_id: str) -> str:
    return f"event#{event_id}"


class DynamoDBAggregateStore(AggregateStore):
    def __init__(self, table: str, region: str, endpoint_url: str | None = None, ttl_days: float = 8.0,
                 client: Any = None) -> None:  # fmt: skip
        self.table = table
        self.ttl_seconds = int(ttl_days * 86_400)
        self._client = client or boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5),
        )  # fmt: skip

    def read(self, entities: Iterable[str], first_step: int, last_step: int, event_ids: Iterable[str]) -> StoreRead:
        days = range(first_step // HOURS_PER_DAY, last_step // HOURS_PER_DAY + 1)
        wanted = {day_key(entity, day): (entity, day) for entity in entities for day in days}
        markers = {marker_key(event_id): event_id for event_id in event_ids}
        histories: dict[str, History] = {}
        recorded: dict[str, dict[str, float]] = {}
        for item in self._get_all([*wanted, *markers]):
            pk = item["pk"]["S"]
            if pk in markers:
                recorded[markers[pk]] = decode_values(item["v"]["S"])
                continue
            entity, day = wanted[pk]
            history = histories.setdefault(entity, {})
            for hour in range(HOURS_PER_DAY):
                count = item.get(f"c{hour:02d}")
                step = day * HOURS_PER_DAY + hour
                if count is None or not first_step <= step <= last_step:
                    continue
                history[step] = Bucket(
                    int(count["N"]), int(item.get(f"a{hour:02d}", {"N": "0"})["N"]),
                    set(item.get(f"p{hour:02d}", {"SS": []})["SS"]),
                )  # fmt: skip
        return StoreRead(histories, recorded)

    def _get_all(self, keys: list[str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), MAX_BATCH_KEYS):
            request: dict[str, Any] = {
                self.table: {"Keys": [{"pk": {"S": key}} for key in keys[start : start + MAX_BATCH_KEYS]],
                             "ConsistentRead": True}
            }  # fmt: skip
            for attempt in range(MAX_UNPROCESSED_ROUNDS):
                response = self._client.batch_get_item(RequestItems=request)
                items += response.get("Responses", {}).get(self.table, [])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StoreError(f"DynamoDB left keys of {self.table} unread after {MAX_UNPROCESSED_ROUNDS} rounds")
        return items

    def record(self, recordings: Sequence[Recording]) -> list[bool]:
        return [self._record_one(recording) for recording in recordings]

    def _record_one(self, recording: Recording) -> bool:
        event = recording.event
        expires = {"N": str(int(time.time()) + self.ttl_seconds)}
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {"pk": {"S": marker_key(event.event_id)}, "v": {"S": encode_values(recording.values)},
                             "expires_at": expires},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]  # fmt: skip
        day, hour = divmod(event.step, HOURS_PER_DAY)
        for role, name in event.names.items():
            if name is None:
                continue
            values: dict[str, Any] = {":one": {"N": "1"}, ":cents": {"N": str(event.cents)}, ":expires": expires}
            add = f"c{hour:02d} :one, a{hour:02d} :cents"
            other = event.counterparty(role)
            if other is not None:
                values[":party"] = {"SS": [other]}
                add += f", p{hour:02d} :party"
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": day_key(entity_key(role, name), day)}},
                        "UpdateExpression": f"SET expires_at = :expires ADD {add}",
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if _marker_existed(error):
                return False
            raise
        return True


def _marker_existed(error: ClientError) -> bool:
    """The transaction was cancelled because the marker (its first action) was already there."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    if reasons:
        return str(reasons[0].get("Code")) == "ConditionalCheckFailed"
    return "ConditionalCheckFailed" in str(error)  # some clients carry the reasons in the message only
