"""What every handler shares besides its module-level ``Logger()``, ``Metrics()`` and ``Tracer()``
(configured by ``POWERTOOLS_SERVICE_NAME`` and friends from the template): the core package's
``fraudops.*`` loggers write the handler's structured JSON too, and chatty libraries stay quiet."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "fraudops")
if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")  # no X-Ray daemon outside Lambda


def route_core_logs(logger: Logger) -> None:
    logging.getLogger("fraudops").setLevel(logger.log_level)
    copy_config_to_registered_loggers(source_logger=logger, include={"fraudops"})
    for noisy in ("botocore", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
