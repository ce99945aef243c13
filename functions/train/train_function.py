"""Train Lambda: read the lake's transactions (a window, straight from S3), train XGBoost, log to MLflow
(artifacts in S3), register.

Two more actions for windows too large for one Lambda: ``plan`` counts the window from the lake's manifest
and chooses the engine (the retrain state machine's Choice), ``register`` registers what the EMR Serverless
job wrote."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from fraudops.core.config import get_settings
from fraudops.core.observability import route_core_logs
from fraudops.spark_training import plan_training
from fraudops.spark_training.register import register_spark_output
from fraudops.stages.events import parse_train_input
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
    if request.action == "plan":
        wanted = parse_train_input(request.request or {})  # the execution's input: feature set, trigger
        trigger = {"reason": wanted.reason, "drifted": wanted.drifted}
        plan = plan_training(get_settings(), wanted.feature_set, trigger, wanted.snapshot_id)
        logger.info("training window planned", extra=plan.as_dict())
        return plan.as_dict()
    if request.action == "register":
        result = register_spark_output(get_settings(), str(request.output_uri), tags=request.trigger_tags())
    else:
        result = run_training(get_settings(), feature_set=request.feature_set, tags=request.trigger_tags(),
                              snapshot_id=request.snapshot_id)  # fmt: skip
    metrics.add_metric(name="HoldoutAUPRC", unit=MetricUnit.NoUnit, value=result.holdout.auprc)
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=result.total_seconds)
    logger.info("registered a new version", extra=result.summary())
    return result.summary()
