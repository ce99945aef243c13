"""Changing Production by hand: rollback, and reconciling what is served with the registry.

**Which one wins.** The registry's ``production`` alias is the source of truth: it is what promotion
decides, what the MLflow UI shows and what a person moves to roll back. The serving manifest is its
publication for the API (one small object, no MLflow on the request path). When they disagree (a
person moved the alias in the MLflow UI, or a crash fell between the two writes), ``/health`` says so
and ``reconcile`` republishes the manifest for the alias's version, after verifying its files exactly
as promotion does. Every action uses the same safe order: verify -> alias -> history -> manifest.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fraudops.core.config import Settings
from fraudops.core.errors import FeatureMismatchError, ModelLoadError, PromotionError, StoreError
from fraudops.production import history
from fraudops.production.change import (
    CHANGE_TAG,
    Progress,
    apply_in_session,
    complete_pending,
    current_production,
    earlier_change,
    finish,
    readable_manifest,
    reporting_faults,
)
from fraudops.production.history import Intent, ProductionChange
from fraudops.production.promotion import RECONCILED, ROLLED_BACK
from fraudops.stages.promote import MANIFEST_METRICS, LoadedVersion, load_version, manifest_for
from fraudops.store import ModelStore, ServingManifest, read_manifest, with_registry_retries
from fraudops.store.registry import MLFLOW_NOT_FOUND_CODES, registry_alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

ROLLED_BACK_FROM_TAG = "fraudops.production.rolled_back_from"


@dataclass(frozen=True)
class ProductionAction:
    action: str  # "rolled_back" | "reconciled" | "in_sync"
    from_version: str | None
    to_version: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verified(settings: Settings, client: MlflowClient, version: str) -> LoadedVersion:
    """The version's files, loaded and checksummed as promotion does; refuse anything else."""
    from mlflow.exceptions import MlflowException

    try:
        model_version = client.get_model_version(settings.model_name, version)
    except MlflowException as error:
        if error.error_code in MLFLOW_NOT_FOUND_CODES:
            raise PromotionError(f"{settings.model_name} has no version {version}; nothing was changed") from None
        raise
    try:
        return load_version(settings, client, model_version)
    except (ModelLoadError, FeatureMismatchError) as error:
        raise PromotionError(f"version {version} cannot be served ({error}); nothing was changed") from error


def _run_metrics(client: MlflowClient, loaded: LoadedVersion) -> dict[str, float]:
    metrics = client.get_run(str(loaded.version.run_id)).data.metrics
    return {name: float(metrics[f"holdout_{name}"]) for name in MANIFEST_METRICS
            if f"holdout_{name}" in metrics}  # fmt: skip


def _as_action(change: ProductionChange) -> ProductionAction:
    return ProductionAction(change.action, change.from_version, change.to_version, change.reason)


def _last_change_to(settings: Settings, current: str | None) -> str:
    """Why Production is not what the caller expected: the change that made it what it is."""
    for change in reversed(history.read_history(settings, alias_version=current)):
        if change.to_version == current and change.action not in {"kept"}:
            moved = f"{change.from_version or '-'} -> {change.to_version}"
            return f" ({change.action} {moved} at {change.time} by {change.actor})"
    return ""


def rollback(
    settings: Settings,
    reason: str,
    to_version: str | None = None,
    actor: str | None = None,
    from_version: str | None = None,
    idempotency_key: str | None = None,
) -> ProductionAction:
    """Put ``to_version`` (default: the version Production had before the current one) back, provided
    Production still is ``from_version``: a retried or doubled rollback never rolls back twice."""
    if not reason.strip():
        raise PromotionError("a rollback needs a reason (--reason)")
    if from_version is None:
        current = registry_alias_version(settings)
        raise PromotionError(
            "a rollback names the version it rolls back from, so that running it twice cannot roll back twice: "
            f"add --from {current or 'N'}" + (f" (version {current} is Production now)" if current else "")
        )
    complete_pending(settings)  # an interrupted change first (this very rollback, when it is a retry)
    change_id = history.change_id_for(idempotency_key)
    earlier = earlier_change(settings, change_id if idempotency_key else None)
    if earlier is not None:
        return _as_action(earlier)
    return _rollback_in_session(settings, reason, to_version, actor, from_version, change_id)


@with_registry_retries()
def _rollback_in_session(
    settings: Settings, reason: str, to_version: str | None, actor: str | None, from_version: str, change_id: str
) -> ProductionAction:
    progress = Progress()
    with reporting_faults(settings, "rollback", progress):
        with ModelStore(settings).session() as client:
            current = current_production(client, settings)
            if current != from_version:
                raise PromotionError(
                    f"Production is version {current or 'none'}, not {from_version}"
                    f"{_last_change_to(settings, current)}; nothing was changed"
                )
            target = to_version or history.previous_production(settings, current)
            if target is None:
                raise PromotionError(
                    f"the history names no version before {current or 'the current one'}: say which with --to"
                )
            if target == current:
                raise PromotionError(f"version {target} already is Production; nothing was changed")
            loaded = _verified(settings, client, target)
            manifest = manifest_for(settings, loaded, _run_metrics(client, loaded))  # trees stored first
            change = history.new_change(settings, ROLLED_BACK, current, target, reason, actor, change_id=change_id)
            tags = {target: {ROLLED_BACK_FROM_TAG: current or "none", CHANGE_TAG: change.change_id}}
            intent = Intent(change, moves_alias=True, tags=tags, manifest=asdict(manifest))
            apply_in_session(client, settings, intent, progress)
        progress.in_registry = True  # the session committed (in AWS: its conditional upload succeeded)
        finish(settings, intent)
    log.info("rolled back %s from version %s to %s: %s", settings.model_name, current, target, reason)
    return ProductionAction(ROLLED_BACK, current, target, reason)


def serving_state(settings: Settings) -> tuple[str | None, str | None]:
    """(the version the registry's alias names, the version the manifest serves)."""
    with ModelStore(settings).session() as client:
        alias = current_production(client, settings)
    manifest = readable_manifest(settings)
    return alias, (manifest.version if manifest else None)


def reconcile(
    settings: Settings,
    actor: str | None = None,
    expected_version: str | None = None,
    idempotency_key: str | None = None,
) -> ProductionAction:
    """Make the manifest follow the registry's alias (after verifying that version's files), complete
    a change a crash interrupted, and check that what is served loads. ``expected_version``: refuse
    unless the alias names that version."""
    completed = complete_pending(settings)
    change_id = history.change_id_for(idempotency_key)
    earlier = earlier_change(settings, change_id if idempotency_key else None)
    if earlier is not None:
        return _as_action(earlier)
    action = _reconcile_in_session(settings, actor, expected_version, change_id)
    if completed and action.action == "in_sync":
        last = completed[-1]
        return ProductionAction(
            "completed", last.from_version, last.to_version,
            f"completed an interrupted {last.action} ({last.from_version or '-'} -> {last.to_version}); "
            "it is recorded in the history and served",
        )  # fmt: skip
    return action


@with_registry_retries()
def _reconcile_in_session(
    settings: Settings, actor: str | None, expected_version: str | None, change_id: str
) -> ProductionAction:
    progress = Progress()
    with reporting_faults(settings, "reconcile", progress):
        with ModelStore(settings).session() as client:
            target = current_production(client, settings)
            if expected_version is not None and target != expected_version:
                raise PromotionError(
                    f"the registry's '{settings.production_alias}' alias names version {target or 'none'}, not "
                    f"{expected_version}{_last_change_to(settings, target)}; nothing was changed"
                )
            manifest = readable_manifest(settings)
            served = manifest.version if manifest else None
            if target is None:
                return ProductionAction("in_sync", served, None, "the registry has no Production alias; nothing to do")
            problem = _unservable(settings, manifest) if manifest is not None and served == target else None
            if served == target and problem is None:
                return ProductionAction(
                    "in_sync",
                    served,
                    target,
                    f"version {target} is both Production and served (its files load and match)",
                )
            loaded = _verified(settings, client, target)  # refuses files that do not load: nothing changes
            new_manifest = manifest_for(settings, loaded, _run_metrics(client, loaded))
            unreadable = manifest is None and read_manifest_problem(settings)
            alias_says = f"the registry's '{settings.production_alias}' alias names version {target}"
            if problem:
                reason = (
                    f"version {target} is Production but its served files could not be loaded ({problem}); republished"
                )
            elif unreadable:
                reason = f"{alias_says}, but the serving manifest could not be read ({unreadable})"
            else:
                reason = f"{alias_says}, but {served} was served"
            change = history.new_change(settings, RECONCILED, served, target, reason, actor, change_id=change_id)
            intent = Intent(change, moves_alias=False, manifest=asdict(new_manifest))
            apply_in_session(client, settings, intent, progress)
        progress.in_registry = True  # the session committed (in AWS: its conditional upload succeeded)
        finish(settings, intent)
    log.info("reconciled: serving version %s (was %s)", target, served)
    return ProductionAction(RECONCILED, served, target, reason)


def read_manifest_problem(settings: Settings) -> str | None:
    """Why the serving manifest cannot be read (None: it can, or there is none)."""
    try:
        read_manifest(settings)
    except StoreError as error:
        return str(error)
    return None


def _unservable(settings: Settings, manifest: ServingManifest) -> str | None:
    """Why the API could not serve what the manifest names (None: it loads, checksums match): "in
    sync" is reported only after loading the model as the API does."""
    from fraudops.serving.provider import served_model

    try:
        served_model(settings, manifest)
    except (ModelLoadError, FeatureMismatchError, StoreError) as error:
        return str(error)
    return None


def pin_model(settings: Settings, version: str | None = None) -> ServingManifest:
    """The model a batch-scoring run uses from its first row to its last, fixed once at the start (a
    promotion mid-run does not mix versions): the served Production manifest, or, for back-testing a
    candidate before promotion, the named version's files verified and compiled as promotion does."""
    if version is None:
        manifest, _ = read_manifest(settings)
        if manifest is None:
            raise PromotionError("no model is in Production yet: promote one first, or name a version to score with")
        return manifest
    with ModelStore(settings).session() as client:  # read-only: nothing is written to the registry
        loaded = _verified(settings, client, version)
        metrics = _run_metrics(client, loaded)
    return manifest_for(settings, loaded, metrics)
