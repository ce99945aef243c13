"""Promote Lambda: compare a version with Production on the same holdout; move the alias if better."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.config import get_settings
from fraudops.data_sync import fetch_training_db
from fraudops.events import parse_promote_input
from fraudops.observability import route_core_logs
from fraudops.stages.promote import run_promotion

logger = Logger()
metrics = Metrics()
tracer = Tracer()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_promote_input(event)
    settings = fetch_training_db(get_settings())
    decision = run_promotion(settings, request.version)
    metrics.add_metric(name="Promoted", unit=MetricUnit.Count, value=1 if decision.promoted else 0)
    logger.info("promotion decision", extra=decision.as_dict())
    return decision.as_dict()
