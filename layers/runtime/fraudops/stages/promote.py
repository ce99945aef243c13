"""Promotion: score the candidate and the current Production version on the same, current held-out data
and move the Production alias only when the candidate is better.

Order of writes (``stages/change.py``): evaluate (read-only) -> compiled trees (content-addressed) ->
the change written ahead -> alias, then decision tags, in one registry session (one conditional S3
write in AWS) -> history event -> serving manifest. A fault leaves the old state, or the new one with
its (pending) history event; the next change or ``reconcile`` completes it. Re-running a promotion is
safe: a candidate that already is Production only re-publishes the manifest, and a promotion with an
idempotency key already used reports what that key did and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.core.config import Settings
from fraudops.core.errors import (
    ArtifactMissingError,
    FeatureMismatchError,
    MetricsError,
    ModelLoadError,
    PromotionError,
    StoreError,
    TrainingError,
)
from fraudops.core.schema import LABEL
from fraudops.decisions.money import CostModel, MoneyMetrics, money_metrics
from fraudops.decisions.policy import Bands
from fraudops.lake import Lake
from fraudops.lake.transactions import read_training_data
from fraudops.model.artifacts import BOOSTER_ARTIFACT, SPEC_ARTIFACT
from fraudops.model.fraud_model import FraudModel
from fraudops.model.metrics import EvaluationMetrics, GainInterval, evaluate, paired_bootstrap_auprc_gain
from fraudops.production import history
from fraudops.production.change import (
    CHANGE_TAG,
    Progress,
    apply_in_session,
    complete_pending,
    earlier_change,
    finish,
    production_model_version,
    publish_if_stale,
    reporting_faults,
    write_tags,
)
from fraudops.production.history import Intent, ProductionChange
from fraudops.production.promotion import ALREADY_PRODUCTION, KEPT, MANUAL, PROMOTED, PromotionRules, decide
from fraudops.serving.compiled import UnsupportedModelError
from fraudops.serving.treecompiler import compile_booster
from fraudops.store import (
    ModelStore,
    ServingManifest,
    blob_store,
    model_file_uri,
    read_uri,
    sha256_hex,
    with_registry_retries,
)
from fraudops.store.blobs import portable_location
from fraudops.store.manifest import compiled_key as compiled_store_key
from fraudops.training.dataset import holdout_slice, raw_columns

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

TAG_PREFIX = "fraudops.promotion."
# What /model shows: ranking metrics and money (holdout, at the version's own bands).
MANIFEST_METRICS = ("auprc", "roc_auc", "recall_at_1pct_fpr", "money_fraud_amount_caught", "money_amount_recall",
                    "money_alerts_per_1000", "money_flagged_per_1000", "money_savings")  # fmt: skip


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    candidate_version: str
    previous_production_version: str | None
    production_version: str | None
    outcome: str  # "promoted" | "kept" | "manual" | "already_production"
    reason: str
    candidate_metrics: dict[str, float] | None
    production_metrics: dict[str, float] | None
    margin: float
    holdout_rows: int
    gain: dict[str, float] | None = None  # AUPRC gain with its paired-bootstrap interval

    @property
    def promoted(self) -> bool:
        return self.outcome in {PROMOTED, MANUAL}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}


@dataclass
class LoadedVersion:
    version: ModelVersion
    model: FraudModel
    booster_sha256: str
    spec_sha256: str
    artifact_location: str


def load_version(settings: Settings, client: MlflowClient, version: ModelVersion) -> LoadedVersion:
    """Fetch a registered version's booster and feature spec and load them exactly as the API will.
    A missing or unloadable artifact is a ModelLoadError (the version is refused); S3 being unreachable
    is a StoreError (the promotion fails and is retried, nothing is decided)."""
    location = artifact_location(client, version)
    try:
        booster_raw = read_uri(settings, model_file_uri(location, BOOSTER_ARTIFACT))
        spec_raw = read_uri(settings, model_file_uri(location, SPEC_ARTIFACT))
    except ArtifactMissingError as error:
        raise ModelLoadError(f"version {version.version}: {error}") from error
    model = FraudModel.from_bytes(booster_raw, spec_raw, version=str(version.version), n_threads=0)
    return LoadedVersion(version, model, sha256_hex(booster_raw), sha256_hex(spec_raw), location)


def _compiled_trees(loaded: LoadedVersion) -> bytes | None:
    """The verified compiled trees the API serves; None if they cannot express this booster."""
    try:
        return compile_booster(loaded.model.booster).to_bytes()
    except UnsupportedModelError as error:
        log.warning("version %s: no compiled trees, the API will serve the booster itself: %s",
                    loaded.version.version, error)  # fmt: skip
        return None


def artifact_location(client: MlflowClient, version: ModelVersion) -> str:
    """Where the version's model files live in S3 (the SQLite registry keeps the id only in `source`)."""
    model_id = getattr(version, "model_id", None)
    if not model_id and str(version.source).startswith("models:/m-"):
        model_id = str(version.source).removeprefix("models:/")
    if not model_id:
        raise ModelLoadError(f"version {version.version} has no logged model (source {version.source})")
    return str(client.get_logged_model(model_id).artifact_location)


@dataclass(frozen=True)
class _Scored:
    metrics: EvaluationMetrics
    scores: np.ndarray
    money: MoneyMetrics

    def as_dict(self) -> dict[str, float]:
        """Everything the decision records: the ranking metrics and the money at the model's bands."""
        return {**self.metrics.as_dict(), **self.money.as_dict("money_")}


def _score(settings: Settings, loaded: LoadedVersion, holdout: pd.DataFrame) -> _Scored:
    """Ranking metrics, and money at the bands the version carries (chosen by money on its validation)."""
    scores = loaded.model.predict_proba(raw_columns(holdout))
    labels = holdout[LABEL].to_numpy()
    bands = Bands.from_spec(loaded.model.spec.extra, loaded.model.threshold)
    money = money_metrics(labels, scores, holdout["amount"].to_numpy(), bands, CostModel.from_settings(settings))
    return _Scored(evaluate(labels, scores, loaded.model.threshold), scores, money)


def manifest_for(settings: Settings, loaded: LoadedVersion, metrics: dict[str, float]) -> ServingManifest:
    """Also compiles the trees (only for a version a manifest is made for) and stores them, content-addressed
    (so a crash before the manifest is harmless). Called inside the registry session: if that write
    fails, the session ends and nothing changes."""
    compiled_key = compiled_sha256 = None
    compiled = _compiled_trees(loaded)
    if compiled is not None:
        compiled_sha256 = sha256_hex(compiled)
        compiled_key = compiled_store_key(settings, str(loaded.version.version), compiled_sha256)
        try:
            blob_store(settings).put(compiled_key, compiled, content_type="application/octet-stream")
        except Exception as error:  # botocore raises many kinds; the caller needs one with a clear message
            raise StoreError(
                f"cannot store the compiled trees of version {loaded.version.version} ({error}); nothing was changed"
            ) from error
    return ServingManifest(
        model_name=settings.model_name,
        version=str(loaded.version.version),
        run_id=str(loaded.version.run_id),
        model_uri=f"models:/{settings.model_name}/{loaded.version.version}",
        artifact_location=portable_location(settings, loaded.artifact_location),
        booster_sha256=loaded.booster_sha256,
        spec_sha256=loaded.spec_sha256,
        metrics={k: v for k, v in metrics.items() if k in MANIFEST_METRICS},
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        compiled_key=compiled_key,
        compiled_sha256=compiled_sha256,
    )


def _candidate_version(client: MlflowClient, settings: Settings, requested: str | None) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        if requested is not None:
            return client.get_model_version(settings.model_name, str(requested))
        versions = client.search_model_versions(f"name='{settings.model_name}'")
    except MlflowException as error:
        raise PromotionError(f"cannot find {settings.model_name} version {requested or '(latest)'}: {error}") from error
    if not versions:
        raise PromotionError(f"no registered versions of {settings.model_name}: run training first")
    return max(versions, key=lambda v: int(v.version))


@dataclass(frozen=True)
class _Request:
    requested: str | None
    force_reason: str | None
    actor: str | None
    change_id: str
    from_version: str | None


@with_registry_retries()
def _promote_in_session(
    settings: Settings, holdout: pd.DataFrame, request: _Request
) -> tuple[PromotionDecision, ServingManifest | None]:
    """(the decision, the manifest to re-publish when the candidate already is Production)."""
    progress = Progress()
    with reporting_faults(settings, "promotion", progress):
        decision, intent, manifest = _decide_and_apply(settings, holdout, request, progress)
        if intent is not None:
            progress.in_registry = True  # the session committed (in AWS: its conditional upload succeeded)
            finish(settings, intent)
        elif decision.outcome == KEPT:
            history.commit(settings, history.new_change(  # a kept decision changes nothing else
                settings, KEPT, decision.previous_production_version, decision.production_version,
                decision.reason, request.actor, metrics=_decision_metrics(decision), gain=decision.gain,
                change_id=request.change_id, candidate_version=decision.candidate_version,
                decision=_stored(decision),
            ))  # fmt: skip
    return decision, manifest


def _decision_metrics(decision: PromotionDecision) -> dict[str, Any]:
    return {"candidate": decision.candidate_metrics, "production": decision.production_metrics,
            "holdout_rows": decision.holdout_rows}  # fmt: skip


def _stored(decision: PromotionDecision) -> dict[str, Any]:
    return {key: value for key, value in decision.as_dict().items() if key != "promoted"}


def _decide_and_apply(
    settings: Settings, holdout: pd.DataFrame, request: _Request, progress: Progress
) -> tuple[PromotionDecision, Intent | None, ServingManifest | None]:
    rules = PromotionRules.from_settings(settings)
    store = ModelStore(settings)
    force_reason = request.force_reason
    with store.session() as client:
        candidate_version = _candidate_version(client, settings, request.requested)
        production_version = production_model_version(client, settings)
        previous = str(production_version.version) if production_version else None
        name = settings.model_name
        if request.from_version is not None and previous != request.from_version:
            raise PromotionError(
                f"Production is version {previous or 'none'}, not {request.from_version} as this promotion "
                "expects (someone changed it meanwhile); nothing was changed"
            )

        if previous == str(candidate_version.version):
            loaded = load_version(settings, client, candidate_version)
            metrics = _score(settings, loaded, holdout).as_dict()
            decision = PromotionDecision(
                name, previous, previous, previous, ALREADY_PRODUCTION,
                f"version {previous} already holds the '{settings.production_alias}' alias",
                metrics, metrics, rules.margin, len(holdout),
            )  # fmt: skip
            return decision, None, manifest_for(settings, loaded, metrics)

        candidate: _Scored | None = None
        try:
            loaded_candidate = load_version(settings, client, candidate_version)
            candidate = _score(settings, loaded_candidate, holdout)
        except (ModelLoadError, FeatureMismatchError, MetricsError) as error:
            if force_reason is not None:  # a person asked for this version: say why it cannot be, record nothing
                raise PromotionError(
                    f"version {candidate_version.version} cannot be served ({error}); nothing was changed"
                ) from error
            promote, reason = False, f"candidate refused: {error}"
        candidate_metrics = candidate.metrics if candidate else None
        production_metrics: EvaluationMetrics | None = None
        production: _Scored | None = None
        gain: GainInterval | None = None
        if candidate is not None:
            if production_version is not None:
                try:
                    production = _score(settings, load_version(settings, client, production_version), holdout)
                    production_metrics = production.metrics
                    gain = paired_bootstrap_auprc_gain(
                        holdout[LABEL].to_numpy(), candidate.scores, production.scores,
                        resamples=rules.resamples, confidence=rules.confidence, seed=rules.seed,
                    )  # fmt: skip
                except (ModelLoadError, FeatureMismatchError) as error:
                    log.warning(
                        "Production version %s cannot be loaded (%s); judging the candidate alone", previous, error
                    )
            money = (candidate.money, production.money) if production is not None else None
            promote, reason = decide(candidate.metrics, production_metrics, rules, gain, money)
        outcome = PROMOTED if promote else KEPT
        if force_reason is not None and candidate is not None:  # a person overrules the rule, never the checks
            reason = f"{force_reason} (the rule said {outcome}: {reason})"
            promote, outcome = True, MANUAL

        decided_at = datetime.now(UTC).isoformat(timespec="seconds")
        tags = {
            "decision": outcome,
            "reason": reason,
            "decided_at": decided_at,
            "candidate_auprc": f"{candidate_metrics.auprc:.6f}" if candidate_metrics else "n/a",
            "production_version": previous or "none",
            "production_auprc": f"{production_metrics.auprc:.6f}" if production_metrics else "n/a",
            "margin": str(rules.margin),
            "gain": f"{gain.gain:.6f}" if gain else "n/a",
            "gain_lower": f"{gain.lower:.6f}" if gain else "n/a",
            "gain_upper": f"{gain.upper:.6f}" if gain else "n/a",
            "confidence": str(rules.confidence),
            "candidate_fraud_amount_caught": f"{candidate.money.fraud_amount_caught:.2f}" if candidate else "n/a",
            "production_fraud_amount_caught": f"{production.money.fraud_amount_caught:.2f}" if production else "n/a",
            "holdout_rows": str(len(holdout)),
            "holdout_start_step": str(int(holdout["step"].min())),
        }
        version = str(candidate_version.version)
        version_tags = {version: {TAG_PREFIX + key: value for key, value in tags.items()}}
        decision = PromotionDecision(
            name,
            version,
            previous,
            version if promote else previous,
            outcome,
            reason,
            candidate.as_dict() if candidate else None,
            production.as_dict() if production else None,
            rules.margin,
            len(holdout),
            gain.as_dict() if gain else None,
        )
        if not (promote and candidate):
            write_tags(client, settings, version_tags)
            return decision, None, None
        manifest = manifest_for(settings, loaded_candidate, candidate.as_dict())  # trees stored first
        change = history.new_change(
            settings, outcome, previous, version, reason, request.actor, metrics=_decision_metrics(decision),
            gain=decision.gain, change_id=request.change_id, candidate_version=version, decision=_stored(decision),
        )  # fmt: skip
        version_tags[version][CHANGE_TAG] = change.change_id
        intent = Intent(change, moves_alias=True, tags=version_tags, manifest=asdict(manifest))
        apply_in_session(client, settings, intent, progress)
        return decision, intent, None


def _replayed(change: ProductionChange) -> PromotionDecision:
    stored = change.extra.get("decision")
    if not isinstance(stored, dict):
        raise PromotionError(f"change {change.change_id} was not a promotion ({change.action}); nothing was changed")
    return PromotionDecision(**stored)


def run_promotion(
    settings: Settings,
    candidate_version: str | None = None,
    force_reason: str | None = None,
    actor: str | None = None,
    idempotency_key: str | None = None,
    from_version: str | None = None,
) -> PromotionDecision:
    """Compare ``candidate_version`` (default: the newest) with Production and promote if better.
    With ``force_reason`` a person promotes it whatever the rule says (recorded as manual, the rule's
    verdict beside it); a candidate whose artifacts do not verify is refused all the same.
    ``idempotency_key`` (a Step Functions execution, a retried command): a key already used reports
    that decision again and changes nothing. ``from_version``: refuse unless Production is that version."""
    if force_reason is not None and not force_reason.strip():
        raise PromotionError("a manual promotion needs a reason (--reason)")
    complete_pending(settings)  # an interrupted change first (this very promotion, when it is a retry)
    change_id = history.change_id_for(idempotency_key)
    earlier = earlier_change(settings, change_id if idempotency_key else None)
    if earlier is not None:
        log.info("idempotency key already used (change %s): reporting it, changing nothing", change_id)
        return _replayed(earlier)
    try:
        # The newest matured rows of the lake (curation commits a decision only once its label matured).
        lake = Lake(settings).transactions
        # With the entity aggregates: either model may have been trained with them (the velocity set).
        read = read_training_data(lake, settings.train_window_days or None, aggregates=True)
        holdout = holdout_slice(read.frame, settings)
    except TrainingError as error:
        raise PromotionError(f"cannot build the holdout: {error}") from error
    request = _Request(candidate_version, force_reason, actor, change_id, from_version)
    decision, manifest = _promote_in_session(settings, holdout, request)
    log.info("promotion of %s version %s: %s (%s)", decision.model_name, decision.candidate_version,
             decision.outcome, decision.reason)  # fmt: skip
    if manifest is not None:  # already Production: make sure what is served follows (a repair)
        try:
            publish_if_stale(settings, manifest)
        except Exception as error:
            raise StoreError(
                f"version {manifest.version} is Production in the registry but the serving manifest "
                f"could not be written ({error}); re-run the promotion to publish it"
            ) from error
    return decision
