"""Train Lambda: read the lake's transactions (a window, straight from S3), train XGBoost, log to MLflow
(artifacts in S3), register."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.config import get_settings
from fraudops.events import parse_train_input
from fraudops.observability import route_core_logs
from fraudops.stages.train import run_training

logger = Logger()
metrics = Metrics()
tracer = Tracer()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_train_input(event)
    settings = get_settings()
    result = run_training(settings, feature_set=request.feature_set, tags=request.trigger_tags())
    metrics.add_metric(name="HoldoutAUPRC", unit=MetricUnit.NoUnit, value=result.holdout.auprc)
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=result.total_seconds)
    logger.info("registered a new version", extra=result.summary())
    return result.summary()
