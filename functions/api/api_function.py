"""API Lambda (container image): FastAPI through Mangum behind API Gateway.

The app and the model cache live at module level, so a warm container reuses both.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, cast

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from fraudops.api import build_default_app, invalid_event_response
from fraudops.observability import observability
from fraudops.serving import ModelUnavailableError

# The API publishes only the cold-start metric; Powertools would warn on every warm invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")
obs = observability("fraudops-api")
logger, metrics = obs.logger, obs.metrics

app = build_default_app()
asgi_handler = Mangum(app, lifespan="off")
# Fetch the Production model during the init phase, not on the first request. With nothing loadable
# this records the problem and the API answers 503 until a model appears (no crash loop).
with contextlib.suppress(ModelUnavailableError):
    app.state.model_provider.get()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    problem = invalid_event_response(event)
    if problem is not None:
        logger.warning("not an API Gateway proxy event", extra={"problem": problem["body"]})
        return problem
    # Powertools and Mangum type the same Lambda context with two different protocols.
    response: dict[str, Any] = asgi_handler(event, cast(Any, context))
    return response
