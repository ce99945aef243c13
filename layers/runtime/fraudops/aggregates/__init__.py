"""Entity aggregates: what each account did before this transaction (velocity), declared once and
computed the same way offline (training, back-tests, the Spark job) and online (the API, batch scoring).

    from fraudops.aggregates import AGGREGATE_NAMES, aggregate_store, aggregate_rows, with_aggregates
    frame = with_aggregates(frame)                      # offline: point-in-time columns for every row
    values = aggregate_rows(aggregate_store(settings), rows)   # online: read, compute, count once

- ``definitions``: the aggregates (role x measure x window), their names and the words reasons use;
- ``offline``: vectorised point-in-time computation over a table of events;
- ``online``: the same values from hourly buckets, idempotent counting, the ``AggregateStore`` base;
- ``embedded``: the local store (a SQLite file in the state dir; no server);
- ``dynamodb``: the store in AWS (one on-demand table, one batched read and one transaction per event).

Imports only ``fraudops.core``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudops.aggregates.definitions import AGGREGATE_NAMES, AGGREGATES, BY_NAME, Aggregate, aggregate_label
from fraudops.core.exports import lazy_exports

if TYPE_CHECKING:
    from fraudops.aggregates.offline import offline_aggregates, with_aggregates
    from fraudops.aggregates.online import AggregateStore, aggregate_rows
    from fraudops.core.config import Settings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "offline_aggregates": "fraudops.aggregates.offline",
        "with_aggregates": "fraudops.aggregates.offline",
        "AggregateStore": "fraudops.aggregates.online",
        "aggregate_rows": "fraudops.aggregates.online",
    },
)


def aggregate_store(settings: Settings) -> AggregateStore | None:
    """The configured store: embedded (default), DynamoDB (AWS), or None (``aggregate_store=off``)."""
    if settings.aggregate_store == "off":
        return None
    if settings.aggregate_store == "dynamodb":
        from fraudops.aggregates.dynamodb import DynamoDBAggregateStore
        from fraudops.core.errors import ConfigError

        if not settings.aggregate_table:
            raise ConfigError("FRAUDOPS_AGGREGATE_STORE=dynamodb needs FRAUDOPS_AGGREGATE_TABLE (the table's name)")
        return DynamoDBAggregateStore(settings.aggregate_table, settings.aws_region,
                                      settings.dynamodb_endpoint_url, settings.aggregate_ttl_days)  # fmt: skip
    from fraudops.aggregates.embedded import EmbeddedAggregateStore

    return EmbeddedAggregateStore(settings.aggregate_db_file)


__all__ = [
    "AGGREGATES",
    "AGGREGATE_NAMES",
    "BY_NAME",
    "Aggregate",
    "AggregateStore",
    "aggregate_label",
    "aggregate_rows",
    "aggregate_store",
    "offline_aggregates",
    "with_aggregates",
]
