"""The history of Production: every decision and every change, who made it and why.

One small JSON object per event beside the artifacts (``history/<model>/<time>-<change id>.json`` in
the blob store: the local folder or the model bucket), so writers never overwrite each other and nothing
is lost on a restart. Listing the prefix gives the events in time order.

A change of Production is written ahead (``intents/<model>/<change id>.json``) before the registry's
alias moves (see ``stages/change.py``). Until the change is completed, its intent counts as its history
event whenever the registry shows it applied (shown with status ``pending``), so the history never
misses a change the registry made, and a change that never reached the registry is never shown.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from fraudops.core.actor import default_actor
from fraudops.core.config import Settings
from fraudops.production.promotion import KEPT
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
    change_id: str = ""  # the idempotency key's digest (or a random id): one change, one event
    status: str = "done"  # "pending": the registry has the change, its completion is under way

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prefix(settings: Settings) -> str:
    return f"history/{settings.model_name}/"


def change_id_for(idempotency_key: str | None) -> str:
    """A caller's idempotency key (a Step Functions execution, a retried CLI command) names one change;
    without one, every call is a new change."""
    if idempotency_key:
        return hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
    return uuid.uuid4().hex[:24]


def new_change(
    settings: Settings,
    action: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
    actor: str | None = None,
    metrics: dict[str, Any] | None = None,
    gain: dict[str, float] | None = None,
    change_id: str | None = None,
    **extra: Any,
) -> ProductionChange:
    return ProductionChange(
        time=datetime.now(UTC).isoformat(timespec="milliseconds"),
        model_name=settings.model_name,
        from_version=from_version,
        to_version=to_version,
        action=action,
        reason=reason,
        actor=actor or default_actor(),
        metrics=metrics,
        gain=gain,
        extra=extra,
        change_id=change_id or change_id_for(None),
    )


def _event_key(settings: Settings, change: ProductionChange) -> str:
    """Fixed by the change itself, so completing a change twice writes one event."""
    stamp = datetime.fromisoformat(change.time).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{_prefix(settings)}{stamp}-{change.change_id}.json"


def _intent_prefix(settings: Settings) -> str:
    return f"intents/{settings.model_name}/"


def commit(settings: Settings, change: ProductionChange) -> ProductionChange:
    """Write the change's history event (idempotent: the key is the change's own)."""
    done = ProductionChange(**{**change.as_dict(), "status": "done"})
    blob_store(settings).put(_event_key(settings, done), json.dumps(done.as_dict(), sort_keys=True).encode())
    return done


@dataclass(frozen=True)
class Intent:
    """A change written ahead: the event, and what completing it still has to write."""

    change: ProductionChange
    moves_alias: bool
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> tags set with the alias
    manifest: dict[str, Any] | None = None  # the serving manifest to publish (ServingManifest.to_json)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Intent:
        data = json.loads(body)
        return cls(**{**data, "change": ProductionChange(**data["change"])})


def write_intent(settings: Settings, intent: Intent) -> None:
    blob_store(settings).put(f"{_intent_prefix(settings)}{intent.change.change_id}.json", intent.to_json())


def drop_intent(settings: Settings, change_id: str) -> None:
    blob_store(settings).delete(f"{_intent_prefix(settings)}{change_id}.json")


def read_intents(settings: Settings) -> list[Intent]:
    """Changes written ahead and not completed yet, oldest first (an unreadable one, cut by a crash
    before its rename could not happen: the write is atomic, so any body here is whole)."""
    store = blob_store(settings)
    intents = []
    for key in store.list_keys(_intent_prefix(settings)):
        body = store.get_or_none(key)
        if key.endswith(".json") and body is not None:
            intents.append(Intent.from_json(body))
    return sorted(intents, key=lambda intent: intent.change.time)


def _committed(settings: Settings, limit: int | None = None) -> list[ProductionChange]:
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


def find_change(settings: Settings, change_id: str) -> ProductionChange | None:
    """The event of an earlier change with this id, completed or still pending."""
    for key in blob_store(settings).list_keys(_prefix(settings)):
        if key.endswith(f"-{change_id}.json"):
            body = blob_store(settings).get_or_none(key)
            if body is not None:
                return ProductionChange(**json.loads(body))
    for intent in read_intents(settings):
        if intent.change.change_id == change_id:
            return ProductionChange(**{**intent.change.as_dict(), "status": "pending"})
    return None


def applied(intent: Intent, alias_version: str | None) -> bool:
    """Did the registry take this change? The alias names its version (the write-ahead order makes this
    the one question: the intent exists before the alias moves, and is dropped only once complete)."""
    return alias_version is not None and alias_version == intent.change.to_version


_READ_IT = "read it"


def read_history(
    settings: Settings, limit: int | None = None, alias_version: str | None = _READ_IT
) -> list[ProductionChange]:
    """Events oldest first; with ``limit``, the newest ``limit`` of them. A change still being completed
    is included (status ``pending``) when the registry shows it applied. ``alias_version``: the
    version the Production alias names, if the caller knows it (else it is read)."""
    # Intents first, committed events second: a change finishes by committing its event and then
    # dropping its intent, so whichever moment it finishes in, one of the two reads sees it.
    intents = read_intents(settings)
    changes = _committed(settings, None if limit is None else limit + 1)
    if intents:
        if alias_version is _READ_IT:
            from fraudops.store.registry import registry_alias_version

            alias_version = registry_alias_version(settings)
        done = {change.change_id for change in changes}
        changes += [
            ProductionChange(**{**intent.change.as_dict(), "status": "pending"})
            for intent in intents
            if intent.change.change_id not in done and applied(intent, alias_version)
        ]
        changes.sort(key=lambda change: change.time)
    if limit is not None:
        changes = changes[-limit:] if limit > 0 else []
    return changes


def previous_production(settings: Settings, current: str | None) -> str | None:
    """The version that was Production before ``current`` became it (the default rollback target)."""
    for change in reversed(read_history(settings, alias_version=current)):
        if change.action != KEPT and change.to_version == current and change.from_version not in (None, current):
            return change.from_version
    return None
