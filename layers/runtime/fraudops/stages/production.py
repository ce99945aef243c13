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

from fraudops import history
from fraudops.config import Settings
from fraudops.errors import FeatureMismatchError, ModelLoadError, PromotionError, StoreError
from fraudops.promotion import RECONCILED, ROLLED_BACK
from fraudops.stages.promote import (
    MANIFEST_METRICS,
    _load_version,
    _LoadedVersion,
    _manifest_for,
    production_model_version,
)
from fraudops.store import ModelStore, ServingManifest, publish_manifest, read_manifest, with_registry_retries
from fraudops.store.registry import MLFLOW_NOT_FOUND_CODES

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProductionAction:
    action: str  # "rolled_back" | "reconciled" | "in_sync"
    from_version: str | None
    to_version: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verified(settings: Settings, client: MlflowClient, version: str) -> _LoadedVersion:
    """The version's files, loaded and checksummed as promotion does; refuse anything else."""
    from mlflow.exceptions import MlflowException

    try:
        model_version = client.get_model_version(settings.model_name, version)
    except MlflowException as error:
        if error.error_code in MLFLOW_NOT_FOUND_CODES:
            raise PromotionError(f"{settings.model_name} has no version {version}; nothing was changed") from None
        raise
    try:
        return _load_version(settings, client, model_version)
    except (ModelLoadError, FeatureMismatchError) as error:
        raise PromotionError(f"version {version} cannot be served ({error}); nothing was changed") from error


def _run_metrics(client: MlflowClient, loaded: _LoadedVersion) -> dict[str, float]:
    metrics = client.get_run(str(loaded.version.run_id)).data.metrics
    return {name: float(metrics[f"holdout_{name}"]) for name in MANIFEST_METRICS
            if f"holdout_{name}" in metrics}  # fmt: skip


def _publish(settings: Settings, loaded: _LoadedVersion, metrics: dict[str, float]) -> None:
    version = str(loaded.version.version)
    try:
        publish_manifest(settings, _manifest_for(settings, loaded, metrics))
    except Exception as error:
        raise StoreError(
            f"version {version} is Production in the registry but the serving manifest could not be "
            f"written ({error}); run `fraudops reconcile` to publish it"
        ) from error


@with_registry_retries()
def rollback(
    settings: Settings, reason: str, to_version: str | None = None, actor: str | None = None
) -> ProductionAction:
    """Put ``to_version`` (default: the version Production had before the current one) back."""
    if not reason.strip():
        raise PromotionError("a rollback needs a reason (--reason)")
    with ModelStore(settings).session() as client:
        current_version = production_model_version(client, settings)
        current = str(current_version.version) if current_version else None
        target = to_version or history.previous_production(settings, current)
        if target is None:
            raise PromotionError(
                f"the history names no version before {current or 'the current one'}: say which with --to"
            )
        if target == current:
            raise PromotionError(f"version {target} already is Production; nothing was changed")
        loaded = _verified(settings, client, target)
        metrics = _run_metrics(client, loaded)
        client.set_registered_model_alias(settings.model_name, settings.production_alias, target)
        client.set_model_version_tag(settings.model_name, target, "fraudops.production.rolled_back_from",
                                     current or "none")  # fmt: skip
    # The registry session has committed (in AWS: one conditional write); now the record and the manifest.
    history.record(settings, ROLLED_BACK, current, target, reason, actor)
    _publish(settings, loaded, metrics)
    log.info("rolled back %s from version %s to %s: %s", settings.model_name, current, target, reason)
    return ProductionAction(ROLLED_BACK, current, target, reason)


def serving_state(settings: Settings) -> tuple[str | None, str | None]:
    """(the version the registry's alias names, the version the manifest serves)."""
    with ModelStore(settings).session() as client:
        alias = production_model_version(client, settings)
    manifest, _ = read_manifest(settings)
    return (str(alias.version) if alias else None), (manifest.version if manifest else None)


@with_registry_retries()
def reconcile(settings: Settings, actor: str | None = None) -> ProductionAction:
    """Make the manifest follow the registry's alias (after verifying that version's files)."""
    with ModelStore(settings).session() as client:
        alias_version = production_model_version(client, settings)
        manifest, _ = read_manifest(settings)
        served = manifest.version if manifest else None
        if alias_version is None:
            return ProductionAction("in_sync", served, None, "the registry has no Production alias; nothing to do")
        target = str(alias_version.version)
        if served == target:
            return ProductionAction("in_sync", served, target, f"version {target} is both Production and served")
        loaded = _verified(settings, client, target)
        metrics = _run_metrics(client, loaded)
    reason = f"the registry's '{settings.production_alias}' alias names version {target}, but {served} was served"
    history.record(settings, RECONCILED, served, target, reason, actor)
    _publish(settings, loaded, metrics)
    log.info("reconciled: serving version %s (was %s)", target, served)
    return ProductionAction(RECONCILED, served, target, reason)


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
    return _manifest_for(settings, loaded, metrics)
