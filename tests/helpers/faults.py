"""Fault injection at the S3 boundary, for the reliability tests.

``S3Faults`` hooks botocore's ``before-send`` event on the default boto3 session, which both our own
S3 client and MLflow's artifact client are made from, so a chosen S3 call fails as a network failure
would (``EndpointConnectionError``) or is slowed down. The code under test is not edited: its clients
are simply re-created after the hook is installed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError

from fraudops.store import reset_s3_clients


@dataclass
class S3Faults:
    """Which S3 calls to break. ``fail_when(call_number, operation, params)`` decides per call."""

    fail_when: Callable[[int, str, dict[str, Any]], bool] = lambda n, op, p: False
    delay_seconds: float = 0.0
    calls: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _before_send(self, request: Any, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "before-send.s3.?")).rsplit(".", 1)[-1]
        with self._lock:
            number = len(self.calls) + 1
            self.calls.append(operation)
            fail = self.fail_when(number, operation, {"url": request.url})
            if fail:
                self.failures.append(f"{number}:{operation}")
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if fail:
            raise EndpointConnectionError(endpoint_url=request.url)


@contextlib.contextmanager
def s3_faults(faults: S3Faults) -> Iterator[S3Faults]:
    session = boto3._get_default_session()
    session.events.register("before-send.s3", faults._before_send, unique_id="fraudops-s3-faults")
    reset_s3_clients()
    try:
        yield faults
    finally:
        session.events.unregister("before-send.s3", unique_id="fraudops-s3-faults")
        reset_s3_clients()


def fail_operation(
    operation: str, url_part: str = "", times: int = 1_000_000
) -> Callable[[int, str, dict[str, Any]], bool]:
    """Fail the first ``times`` calls of ``operation`` whose URL contains ``url_part``."""
    seen = {"n": 0}

    def decide(number: int, op: str, params: dict[str, Any]) -> bool:
        if op == operation and url_part in params["url"]:
            seen["n"] += 1
            return seen["n"] <= times
        return False

    return decide


def fail_from_call(first: int) -> Callable[[int, str, dict[str, Any]], bool]:
    """S3 goes down at call ``first`` and stays down (retries included)."""
    return lambda number, op, params: number >= first


def fail_everything() -> Callable[[int, str, dict[str, Any]], bool]:
    return lambda number, op, params: True


def promote_in_child(settings_values: dict[str, Any]) -> str:
    """Run in a separate process (spawn): one promotion, as a second Lambda would. Returns the outcome."""
    import os

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from fraudops.config import Settings
    from fraudops.stages.promote import run_promotion

    return run_promotion(Settings(**settings_values)).outcome
