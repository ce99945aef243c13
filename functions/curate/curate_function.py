"""Curate Lambda (a step of the retrain state machine, before Train, and on its own schedule): captured
decisions + late labels -> the lake's training rows, with label maturity; incremental and idempotent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.core.config import get_settings
from fraudops.core.observability import route_core_logs
from fraudops.lake.curation import run_curation

logger = Logger()
metrics = Metrics()
tracer = Tracer()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    report = run_curation(settings, settle=timedelta(minutes=settings.curation_settle_minutes))
    metrics.add_metric(name="CuratedRows", unit=MetricUnit.Count, value=report.rows_curated)
    metrics.add_metric(name="PendingDecisions", unit=MetricUnit.Count, value=report.pending)
    logger.info("curation", extra=report.as_dict())
    return report.as_dict()
