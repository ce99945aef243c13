"""One retraining at a time, held with a conditional write (as the registry is updated).

The retrain state machine used to count its RUNNING executions with ``ListExecutions``, which AWS
documents as eventually consistent ("results are best effort and may not reflect very recent updates",
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html): a scheduled
start and a drift start moments apart could both train, or both stop. Now each execution's first step
writes a lease object conditionally (``If-None-Match: *`` when there is none, ``If-Match: <ETag>`` to
take over a released or expired one); S3 lets exactly one of two writes conditioned on the same state
succeed (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). The loser
does nothing and ends as Succeeded with the reason in its output (a skip is not a failure, so the
failed-retraining alarm stays quiet). The last steps release the lease, on success and on failure;
an execution that dies without releasing (aborted, timed out) holds it at most ``LEASE_SECONDS``,
the state machine's own ``TimeoutSeconds``, so a lease never expires under a live execution.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudops.store.blobs import BlobStore, PreconditionFailed

LOCK_KEY = "retraining/lock.json"
LEASE_SECONDS = 7200  # == TimeoutSeconds of infra/statemachine/retrain.asl.json (a test keeps them equal)
ATTEMPTS = 5  # each lost race means another writer moved the object: re-read and decide again


@dataclass(frozen=True)
class LockOutcome:
    acquired: bool
    holder: str | None  # the execution holding the lease after this call
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(store: BlobStore) -> tuple[dict[str, Any] | None, str | None]:
    found = store.get_with_etag(LOCK_KEY)
    if found is None:
        return None, None
    body, etag = found
    try:
        lease = json.loads(body)
    except ValueError:
        lease = {}  # unreadable: treated as released, and replaced conditionally like any other
    return (lease if isinstance(lease, dict) else {}), etag


def acquire(store: BlobStore, execution: str, now: datetime | None = None) -> LockOutcome:
    """Take the lease for ``execution`` unless another live execution holds it. Idempotent: a retried
    step of the execution that holds it gets it again."""
    now = now or datetime.now(UTC)
    for _ in range(ATTEMPTS):
        lease, etag = _read(store)
        holder = (lease or {}).get("execution")
        if holder == execution:
            return LockOutcome(True, execution, "this execution already holds the lease")
        expires = (lease or {}).get("expires_at")
        if holder and expires and datetime.fromisoformat(expires) > now:
            return LockOutcome(False, str(holder), f"another retraining ({holder}) holds the lease until {expires}")
        record = {
            "execution": execution,
            "acquired_at": now.isoformat(),
            "expires_at": (now + timedelta(seconds=LEASE_SECONDS)).isoformat(),
            "replaced": holder,  # an expired holder, for the record
        }
        try:
            store.put_if(LOCK_KEY, json.dumps(record).encode(), etag)
        except PreconditionFailed:
            continue  # someone else wrote first: look again
        reason = f"took over the expired lease of {holder}" if holder else "the lease was free"
        return LockOutcome(True, execution, reason)
    raise PreconditionFailed(f"the retraining lease kept changing during {ATTEMPTS} attempts")


def release(store: BlobStore, execution: str, now: datetime | None = None) -> bool:
    """Give the lease back if ``execution`` holds it (True); never touches another execution's lease."""
    now = now or datetime.now(UTC)
    for _ in range(ATTEMPTS):
        lease, etag = _read(store)
        if lease is None or lease.get("execution") != execution:
            return False
        record = {"execution": None, "released_by": execution, "released_at": now.isoformat()}
        try:
            store.put_if(LOCK_KEY, json.dumps(record).encode(), etag)
        except PreconditionFailed:
            continue
        return True
    return False
