"""One change of Production (promote, manual promotion, rollback, reconcile), all or nothing.

The registry's alias and the serving manifest live in two stores, and the local SQLite registry commits
each MLflow call on its own, so no single write can carry a change. The order makes it safe instead:

1. everything content-addressed first (the compiled trees): harmless if nothing follows;
2. the **intent** (``history.Intent``): the history event, the tags and the manifest to come, keyed by
   the change id (an idempotency key's digest);
3. the registry: the alias, then the tags (``decision`` last), in one session (one conditional write of
   the registry object in AWS);
4. the history event, then the serving manifest, then the intent is dropped.

A fault before 3 leaves the old state (the intent is dropped, or ignored: the alias does not name its
version); a fault after it leaves the new state, whose intent counts as its history event until
``complete_pending`` (run first by every change, and by ``reconcile``) finishes steps 3-4. A change
another session wrote ahead and never applied is abandoned with a registry write, so that a racing
session that had not uploaded yet fails its conditional write instead of applying it unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fraudops.core.config import Settings
from fraudops.core.errors import FraudopsError, RegistryConflictError, StoreError
from fraudops.production import history
from fraudops.production.history import Intent, ProductionChange
from fraudops.store import ModelStore, ServingManifest, publish_manifest, read_manifest
from fraudops.store.registry import MLFLOW_NOT_FOUND_CODES, registry_alias_version

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

CHANGE_TAG = "fraudops.production.change_id"  # on the version a change made Production
ABANDONED_TAG = "fraudops.production.abandoned_change"  # on the registered model: a write that fences races


def production_model_version(client: MlflowClient, settings: Settings) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(settings.model_name, settings.production_alias)
    except MlflowException as error:
        if error.error_code in MLFLOW_NOT_FOUND_CODES:
            return None
        raise


def current_production(client: MlflowClient, settings: Settings) -> str | None:
    version = production_model_version(client, settings)
    return str(version.version) if version else None


def write_tags(client: MlflowClient, settings: Settings, tags: dict[str, dict[str, str]]) -> None:
    """``decision`` last: a tag set cut short never shows a decision."""
    for version, values in tags.items():
        for key in sorted(values, key=lambda name: name.endswith(".decision")):
            client.set_model_version_tag(settings.model_name, version, key, values[key])


@dataclass
class Progress:
    """How far a change got, for ``reporting_faults``: written ahead, then committed to the registry."""

    intent: Intent | None = None
    in_registry: bool = False


def apply_in_session(client: MlflowClient, settings: Settings, intent: Intent, progress: Progress) -> None:
    """Steps 2-3, inside the caller's registry session (which decided the change on what it read)."""
    history.write_intent(settings, intent)
    progress.intent = intent
    change = intent.change
    if intent.moves_alias and change.to_version is not None:
        client.set_registered_model_alias(settings.model_name, settings.production_alias, change.to_version)
    write_tags(client, settings, intent.tags)


def finish(settings: Settings, intent: Intent) -> ProductionChange:
    """Step 4, after the registry session committed: history event, manifest, drop the intent."""
    done = history.commit(settings, intent.change)
    if intent.manifest is not None:
        publish_manifest(settings, ServingManifest(**intent.manifest))
        log.info("published serving manifest for version %s", intent.change.to_version)
    history.drop_intent(settings, intent.change.change_id)
    return done


def publish_if_stale(settings: Settings, manifest: ServingManifest) -> bool:
    """Publish ``manifest`` unless the one served already names the same files (a repair, idempotent)."""
    current = readable_manifest(settings)
    if current is not None and (current.version, current.booster_sha256, current.spec_sha256) == (
        manifest.version,
        manifest.booster_sha256,
        manifest.spec_sha256,
    ):
        return False
    publish_manifest(settings, manifest)
    log.info("published serving manifest for version %s", manifest.version)
    return True


def readable_manifest(settings: Settings) -> ServingManifest | None:
    """The published manifest; None when there is none or it cannot be read (then it is republished)."""
    try:
        manifest, _ = read_manifest(settings)
    except StoreError as error:
        log.warning("the serving manifest cannot be read (%s); it will be republished", error)
        return None
    return manifest


@contextmanager
def reporting_faults(settings: Settings, action: str, progress: Progress) -> Iterator[None]:
    """Turn a failure into a message that says which state it left (no intent written: nothing changed;
    the registry session committed: the new state; in between, the registry says)."""
    try:
        yield
    except BaseException as error:
        intent = progress.intent
        if intent is None:
            if isinstance(error, Exception) and not isinstance(error, FraudopsError):
                raise StoreError(f"{action} failed ({_one_line(error)}); nothing was changed") from error
            raise
        change = intent.change
        if isinstance(error, RegistryConflictError):  # the registry upload was refused: nothing applied
            _drop_quietly(settings, change.change_id)
            raise
        try:
            alias = change.to_version if progress.in_registry else registry_alias_version(settings)
        except Exception:  # the registry is unreadable too: say so rather than guess
            alias = None
            state = "the registry cannot be read to tell whether it took effect"
        else:
            state = ""
        if history.applied(intent, alias):
            raise StoreError(
                f"{change.action}: version {change.to_version} is Production in the registry and the change is "
                f"in the history, but completing it failed ({_one_line(error)}); "
                "`fraudops reconcile` (or running this command again) completes it"
            ) from error
        if not state:
            _drop_quietly(settings, change.change_id)
            raise StoreError(
                f"{change.action} failed ({_one_line(error)}); nothing was changed: Production is still "
                f"version {alias or 'none'}"
            ) from error
        raise StoreError(f"{change.action} failed ({_one_line(error)}); {state}: run `fraudops reconcile`") from error


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _drop_quietly(settings: Settings, change_id: str) -> None:
    try:
        history.drop_intent(settings, change_id)
    except Exception as error:  # it stays; the alias does not name it, so it counts for nothing
        log.warning("could not drop the intent of change %s: %s", change_id, error)


def complete_pending(settings: Settings) -> list[ProductionChange]:
    """Finish every change a crash or a fault left written ahead (or abandon one the registry never
    took). Run first by every change of Production: a retry of an interrupted change completes it."""
    intents = history.read_intents(settings)
    if not intents:
        return []
    taken: list[Intent] = []
    with ModelStore(settings).session() as client:
        alias = current_production(client, settings)
        abandoned = []
        for intent in intents:
            if history.applied(intent, alias) or _tagged_with(client, settings, intent):
                write_tags(client, settings, intent.tags)  # a crash may have cut them short
                taken.append(intent)
            else:
                abandoned.append(intent.change.change_id)
        if abandoned:
            client.set_registered_model_tag(settings.model_name, ABANDONED_TAG, ",".join(abandoned))
    completed = [finish(settings, intent) for intent in taken]
    for change_id in abandoned:
        log.warning("change %s was written ahead but never reached the registry: abandoned", change_id)
        history.drop_intent(settings, change_id)
    for change in completed:
        log.warning("completed an interrupted change: %s %s -> %s", change.action, change.from_version,
                    change.to_version)  # fmt: skip
    return completed


def _tagged_with(client: MlflowClient, settings: Settings, intent: Intent) -> bool:
    """The change reached the registry though the alias moved on since (a person moved it)."""
    version = intent.change.to_version
    if not intent.moves_alias or version is None:
        return False
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_model_version(settings.model_name, version).tags
    except MlflowException:
        return False
    return bool(tags.get(CHANGE_TAG) == intent.change.change_id)


def earlier_change(settings: Settings, change_id: str | None) -> ProductionChange | None:
    """The change an idempotency key already made (completed or pending), if any."""
    return history.find_change(settings, change_id) if change_id else None
