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
    from fraudops.core.config import Settings
    from fraudops.stages.promote import run_promotion

    return run_promotion(Settings(**settings_values)).outcome


# --- faults at every write of a change of Production (any backend) ----------------------------------------


class Killed(BaseException):
    """``kill -9`` at this write: not an Exception, so no ``except Exception`` handler runs, and every
    write after it fails the same way (a dead process writes nothing more)."""


@dataclass
class WriteFaults:
    """Count the storage writes of a command, or break them from write ``fail_at`` on: ``kind`` "kill"
    (nothing more is written) or "disk_full" (ENOSPC on files, SQLite's "database or disk is full" on
    the registry; deleting a file still works, as on a real full disk)."""

    fail_at: int | None = None
    kind: str = "kill"
    writes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def hit(self, what: str, delete: bool = False, registry: bool = False) -> None:
        import errno
        import sqlite3

        self.writes.append(what)
        if self.fail_at is None or len(self.writes) < self.fail_at:
            return
        if self.kind == "kill":
            self.failed.append(what)
            raise Killed(f"killed at write {len(self.writes)} ({what})")
        if delete:
            return
        self.failed.append(what)
        if registry:
            raise sqlite3.OperationalError("database or disk is full")
        raise OSError(errno.ENOSPC, "No space left on device", what)


REGISTRY_WRITES = ("set_registered_model_alias", "delete_registered_model_alias", "set_model_version_tag",
                   "set_registered_model_tag")  # fmt: skip


@contextlib.contextmanager
def write_faults(faults: WriteFaults) -> Iterator[WriteFaults]:
    """Every write a change of Production makes goes through these: the blob stores (artifacts, intents,
    history, manifest) and the MLflow client (alias, tags)."""
    import mlflow
    import pytest

    monkeypatch = pytest.MonkeyPatch()

    from fraudops.store.blobs import LocalBlobStore, S3BlobStore

    def wrap(owner: Any, name: str, **kind: bool) -> None:
        original = getattr(owner, name)

        def faulty(self: Any, *args: Any, **kwargs: Any) -> Any:
            faults.hit(f"{owner.__name__}.{name}({args[0] if args else ''})", **kind)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, faulty)

    for store in (LocalBlobStore, S3BlobStore):
        wrap(store, "put")
        wrap(store, "delete", delete=True)
    for name in REGISTRY_WRITES:
        wrap(mlflow.MlflowClient, name, registry=True)
    try:
        yield faults
    finally:
        monkeypatch.undo()


def rollback_in_child(settings_values: dict[str, Any]) -> str:
    """One `fraudops rollback --from 2` in its own process, as a second terminal would run it."""
    from fraudops.core.config import Settings
    from fraudops.core.errors import PromotionError
    from fraudops.stages.rollback import rollback

    try:
        return rollback(Settings(**settings_values), "v2 misbehaves", from_version="2").action
    except PromotionError as error:
        return f"refused: {error}"
