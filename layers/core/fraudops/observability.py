"""Powertools Logger and Metrics set up once per function, shared by the three handlers. Train and
promote add a Tracer; the API does not: the X-Ray SDK costs ~160 ms of cold start, and Lambda's active
tracing still records each invocation without it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers


@dataclass(frozen=True)
class Observability:
    logger: Logger
    metrics: Metrics


def observability(service: str) -> Observability:
    """Structured JSON logs for the handler *and* the core package's ``fraudops.*`` loggers, EMF
    metrics in the ``fraudops`` namespace; X-Ray tracing is switched off outside Lambda."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", service)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "fraudops")
    if "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    logger = Logger(service=service)
    logging.getLogger("fraudops").setLevel(logger.log_level)
    copy_config_to_registered_loggers(source_logger=logger, include={"fraudops"})
    for noisy in ("botocore", "urllib3", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return Observability(logger=logger, metrics=Metrics(service=service))
