"""Batch-score Lambda: one batch of the BatchScoreStateMachine's Distributed Map. Runs in the API image
(another command): the same compiled model files, XGBoost's C library for the batch, no xgboost package."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.batch.score import score_batch
from fraudops.core.config import get_settings
from fraudops.core.observability import route_core_logs
from fraudops.stages.events import parse_batch_event

# No Tracer, as in the API handler whose image this runs in: that image has no X-Ray SDK; Lambda's
# active tracing still records each invocation.
logger = Logger()
metrics = Metrics()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=False)  # a batch event holds up to thousands of rows
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = score_batch(get_settings(), parse_batch_event(event))
    metrics.add_metric(name="RowsScored", unit=MetricUnit.Count, value=result.scored)
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=result.rejected)
    logger.info("batch scored", extra=result.as_dict())
    return result.as_dict()
