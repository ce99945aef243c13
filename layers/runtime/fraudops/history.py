"""The history of Production: every decision and every change, who made it and why.

One small JSON object per event beside the artifacts (``history/<model>/<time>-<id>.json`` in the
blob store: the local folder or the model bucket), so writers never overwrite each other and nothing
is lost on a restart. Listing the prefix gives the events in time order.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from fraudops.config import Settings
from fraudops.promotion import KEPT
from fraudops.store import blob_store


@dataclass(frozen=True)
class ProductionChange:
    time: str
    model_name: str
    from_version: str | None
    to_version: str | None
    action: str
    reason: str
    actor: str
    metrics: dict[str, Any] | None = None  # what the decision used (candidate/production metrics)
    gain: dict[str, float] | None = None  # the AUPRC gain and its confidence interval
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_actor() -> str:
    """Who acts: the Step Functions execution or Lambda request in AWS, else user@host."""
    if "FRAUDOPS_ACTOR" in os.environ:
        return os.environ["FRAUDOPS_ACTOR"]
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        return f"lambda:{os.environ['AWS_LAMBDA_FUNCTION_NAME']}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _prefix(settings: Settings) -> str:
    return f"history/{settings.model_name}/"


def record(
    settings: Settings,
    action: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
    actor: str | None = None,
    metrics: dict[str, Any] | None = None,
    gain: dict[str, float] | None = None,
    **extra: Any,
) -> ProductionChange:
    now = datetime.now(UTC)
    change = ProductionChange(
        time=now.isoformat(timespec="milliseconds"),
        model_name=settings.model_name,
        from_version=from_version,
        to_version=to_version,
        action=action,
        reason=reason,
        actor=actor or default_actor(),
        metrics=metrics,
        gain=gain,
        extra=extra,
    )
    key = f"{_prefix(settings)}{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}.json"
    blob_store(settings).put(key, json.dumps(change.as_dict(), sort_keys=True).encode())
    return change


def read_history(settings: Settings, limit: int | None = None) -> list[ProductionChange]:
    """Events oldest first; with ``limit``, the newest ``limit`` of them."""
    store = blob_store(settings)
    keys = [key for key in store.list_keys(_prefix(settings)) if key.endswith(".json")]
    if limit is not None:
        keys = keys[-limit:] if limit > 0 else []
    changes = []
    for key in keys:
        body = store.get_or_none(key)
        if body is not None:
            changes.append(ProductionChange(**json.loads(body)))
    return changes


def previous_production(settings: Settings, current: str | None) -> str | None:
    """The version that was Production before ``current`` became it (the default rollback target)."""
    for change in reversed(read_history(settings)):
        if change.action != KEPT and change.to_version == current and change.from_version not in (None, current):
            return change.from_version
    return None
