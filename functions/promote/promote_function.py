"""Promote Lambda: compare a version with Production on the same holdout and move the alias if better;
also rollback, manual promotion, reconcile, the scheduled check and the retraining lease (the ``action``
of the event)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.core.config import get_settings
from fraudops.core.observability import route_core_logs
from fraudops.production.retraining_lock import acquire, release
from fraudops.serving.decide import pin_policy
from fraudops.stages.events import parse_promote_input
from fraudops.stages.promote import run_promotion
from fraudops.stages.rollback import pin_model, reconcile, rollback, serving_state
from fraudops.store.blobs import blob_store

logger = Logger()
metrics = Metrics()
tracer = Tracer()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_promote_input(event)
    actor = request.actor or f"lambda:{context.function_name}:{context.aws_request_id}"
    if request.action == "acquire_lease":  # the retrain state machine's first step: one at a time
        outcome = acquire(blob_store(get_settings()), actor)
        metrics.add_metric(name="RetrainingSkipped", unit=MetricUnit.Count, value=int(not outcome.acquired))
        logger.info("retraining lease", extra=outcome.as_dict())
        return outcome.as_dict()
    if request.action == "release_lease":  # its last step, on success and on failure
        return {"released": release(blob_store(get_settings()), actor)}
    if request.action == "check":  # scheduled: does what is served follow the registry?
        alias, served = serving_state(get_settings())
        metrics.add_metric(name="ServingMatchesRegistry", unit=MetricUnit.Count, value=int(alias == served))
        return {"action": "check", "registry_version": alias, "served_version": served, "in_sync": alias == served}
    if request.action == "pin":  # the batch-scoring state machine's first step
        manifest = pin_model(get_settings(), request.version)
        logger.info("pinned model for batch scoring", extra={"model_version": manifest.version})
        return {"model": asdict(manifest), "policy": pin_policy(get_settings())}
    if request.action == "reconcile":
        action = reconcile(get_settings(), actor, request.version, request.idempotency_key)
        metrics.add_metric(name="Reconciled", unit=MetricUnit.Count, value=int(action.action != "in_sync"))
        return action.as_dict()
    if request.action == "rollback":
        action = rollback(get_settings(), request.reason or "", request.to_version, actor, request.from_version,
                          request.idempotency_key)  # fmt: skip
        metrics.add_metric(name="RolledBack", unit=MetricUnit.Count, value=1)
        logger.info("rollback", extra=action.as_dict())
        return action.as_dict()
    settings = get_settings()
    force_reason = request.reason if request.force else None
    decision = run_promotion(
        settings, request.version, force_reason=force_reason, actor=actor,
        idempotency_key=request.idempotency_key, from_version=request.from_version,
    )  # fmt: skip
    metrics.add_metric(name="Promoted", unit=MetricUnit.Count, value=1 if decision.promoted else 0)
    logger.info("promotion decision", extra=decision.as_dict())
    return decision.as_dict()
