"""API Lambda (container image): FastAPI through Mangum behind API Gateway.

The app and the model cache live at module level, so a warm container reuses both.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from fraudops.api import build_default_app
from fraudops.core.errors import ModelUnavailableError
from fraudops.core.observability import route_core_logs

# The API publishes only the cold-start metric; Powertools would warn on every warm invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")
# No Tracer here: the X-Ray SDK costs ~160 ms of cold start, and Lambda's active tracing still
# records each invocation without it.
logger = Logger()
metrics = Metrics()
route_core_logs(logger)

app = build_default_app()
asgi_handler = Mangum(app, lifespan="off")
# Fetch the Production model during the init phase, not on the first request. With nothing loadable
# this records the problem and the API answers 503 until a model appears (no crash loop).
with contextlib.suppress(ModelUnavailableError):
    app.state.model_provider.get()


def invalid_event_response(event: Any) -> dict[str, Any] | None:
    """A 400 response for events that are not API Gateway proxy events (Mangum would raise on them)."""
    problem = None
    if not isinstance(event, dict):
        problem = f"event must be a JSON object, got {type(event).__name__}"
    elif not isinstance(event.get("requestContext"), dict):
        problem = "event has no requestContext: not an API Gateway proxy event"
    elif event.get("version") == "2.0":
        if not isinstance(event["requestContext"].get("http"), dict):
            problem = "HTTP API event has no requestContext.http"
    elif not isinstance(event.get("httpMethod"), str) or not isinstance(event.get("path"), str):
        problem = "REST API event lacks httpMethod or path"
    elif event.get("body") is not None and not isinstance(event.get("body"), str):
        problem = "event body must be a string"
    if problem is None:
        return None
    return {
        "statusCode": 400,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"error": "bad_event", "message": problem}),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    problem = invalid_event_response(event)
    if problem is not None:
        logger.warning("not an API Gateway proxy event", extra={"problem": problem["body"]})
        return problem
    # Powertools and Mangum type the same Lambda context with two different protocols.
    sink = app.state.capture
    lost_before = sink.lost if sink is not None else 0
    response: dict[str, Any] = asgi_handler(event, cast(Any, context))
    if sink is not None and sink.lost > lost_before:  # decisions the monitor will never see
        metrics.add_metric(name="CapturesLost", unit=MetricUnit.Count, value=sink.lost - lost_before)
        logger.warning("capture records lost", extra={"lost": sink.lost - lost_before, "problem": sink.last_failure})
    return response
