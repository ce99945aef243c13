"""Monitor Lambda (scheduled by EventBridge, or on demand): drift, volume and realized performance of
a window of captured decisions; publishes every figure as EMF metrics and may start a retraining."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.core.config import get_settings
from fraudops.core.observability import route_core_logs
from fraudops.stages.events import parse_monitor_input
from fraudops.stages.monitor import (
    metric_points,
    monitor_window,
    run_monitor,
    start_retraining_execution,
    summary,
)

logger = Logger()
metrics = Metrics()
tracer = Tracer()
route_core_logs(logger)


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_monitor_input(event)
    settings = get_settings()
    # The default window ends one capture delivery delay ago and starts where the last one ended.
    since, until = monitor_window(settings, datetime.now(UTC), request.since, request.until)
    report = run_monitor(settings, since, until, trigger=start_retraining_execution(settings))
    for name, value, dimensions in metric_points(report):
        with single_metric(name=name, unit=MetricUnit.NoUnit, value=value, namespace="fraudops") as metric:
            for key, dimension in {"service": "fraudops-monitor", **dimensions}.items():
                metric.add_dimension(name=key, value=dimension)
    result = summary(report) | {"html_key": report["html_key"]}
    logger.info("monitor window", extra=result)
    return result
