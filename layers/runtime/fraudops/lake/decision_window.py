"""The monitor's input: one window of captured decisions, read from the lake's ``decisions`` table.

The capture objects that arrived since the last compaction are compacted first (incremental: each
Firehose object is read once, a local capture file from where the last run stopped), then only the
window's ``dt`` partitions and the monitor's columns are read, as columns: a monitor run over a day of
1,000,000 decisions holds a few hundred MB of arrays, not a million parsed JSON objects.

Firehose retries a failed delivery (https://docs.aws.amazon.com/firehose/latest/dev/retry.html), so an
object can arrive twice under two keys and be compacted twice: rows equal in every column, including
``details`` (the capture's ``seq`` keeps two equal decisions of one request apart), count once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from fraudops.core.config import Settings
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.lake import Lake
from fraudops.lake.curation import compact_decisions, compact_retrying
from fraudops.lake.schemas import dt_of_time

WINDOW_COLUMNS = ("decision_time", "request_id", "transaction_id", "model_version", "probability", "prediction",
                  "threshold", *RAW_FEATURE_COLUMNS, "details")  # fmt: skip


def read_decision_window(settings: Settings, since: datetime, until: datetime, now: datetime) -> pd.DataFrame:
    """Decisions with ``since <= decision_time < until``, once each, in time order.

    ``now`` is when the run happens: compaction closes the hours that ended a settle time before it (no
    object can still arrive in them)."""
    lake = Lake(settings)
    compact_retrying(lambda: compact_decisions(settings, lake, now))
    first, last = dt_of_time(since), dt_of_time(until - timedelta(microseconds=1))
    files = lake.decisions.files(first_dt=first, last_dt=last)  # partition pruning, planned by pyiceberg
    frame = lake.decisions.read(columns=list(WINDOW_COLUMNS), files=files).to_pandas()
    times = frame["decision_time"]
    frame = frame[(times >= pd.Timestamp(since)) & (times < pd.Timestamp(until))]
    frame = frame.drop_duplicates(ignore_index=True)
    return frame.sort_values("decision_time", kind="stable", ignore_index=True)
