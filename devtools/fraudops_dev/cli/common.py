"""What the command groups share: settings loading, logging, progress lines, error printing, and the
options several groups take."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from pydantic import ValidationError

from fraudops.core.config import Settings, get_settings
from fraudops.core.errors import FraudopsError, disk_full_cause

log = logging.getLogger("fraudops.cli")

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
AddCommand: TypeAlias = Callable[[Subparsers], None]
"""Adds one command's parser (its options, help and handler) to ``fraudops``'s subparsers."""

# These commands read and write the lake; their old --db option is accepted so scripts keep running.
DB_IGNORED = "no effect (kept for old scripts): this command works on the lake (FRAUDOPS_LAKE_URI)"
LAKE_HELP = "the lake's root, a folder or s3://bucket/prefix (default FRAUDOPS_LAKE_URI, <state dir>/lake)"


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "alembic", "mlflow", "werkzeug", "s3transfer", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


class Progress:
    """Prints "rows written" at most once a second (long jobs must show they are alive)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.last, self.started = total, label, 0.0, time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or (self.total and done >= self.total):
            self.last = now
            rate = done / max(now - self.started, 1e-9)
            share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
            print(f"  {self.label}: {done:,}{share}, {rate:,.0f} rows/s", file=sys.stderr, flush=True)


def apply_db_and_lake(args: argparse.Namespace, settings: Settings) -> Settings:
    """--db overrides FRAUDOPS_DB_PATH, --lake FRAUDOPS_LAKE_URI, for this command."""
    if getattr(args, "db", None):
        settings = settings.model_copy(update={"db_path": Path(args.db)})
    if getattr(args, "lake", None):
        settings = settings.model_copy(update={"lake_uri": args.lake})
    return settings


def require_state(settings: Settings) -> Settings:
    """A command that reads state refuses a state folder that holds none (a mistyped FRAUDOPS_STATE_DIR
    would otherwise show an empty history, or have MLflow create an empty registry there)."""
    if settings.tracking_uri or settings.registry_s3_key:
        return settings
    registry = settings.state_dir / "mlflow.db"
    if not registry.is_file():
        raise ValueError(
            f"{settings.state_dir.resolve()} holds no fraudops state (no {registry.name}): check FRAUDOPS_STATE_DIR "
            "(default .fraudops, relative to where you run the command); `fraudops train` creates it"
        )
    return settings


def parse_time(text: str | None) -> datetime | None:
    """--since / --until: an ISO time; one without a zone is taken as UTC."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def load_settings(aws: bool) -> Settings:
    """The settings for a laptop command: S3 mode with no endpoint means the local S3 server, unless
    AWS was asked for."""
    get_settings.cache_clear()
    settings = get_settings()
    if aws:
        settings = settings.model_copy(update={"aws": True})
    if settings.storage == "s3" and not settings.s3_endpoint_url and not settings.aws:
        settings = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{settings.s3_port}"})
    return settings


def settings_problem(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = "FRAUDOPS_" + str(item["loc"][0]).upper() if item.get("loc") else "a setting"
        parts.append(f"{name}={item.get('input')}: {item['msg']}")
    return "invalid setting " + "; ".join(parts) + " (fix or unset the variable)"


def reported_in_one_line(error: Exception, *expected: type[Exception]) -> bool:
    """Errors a user can act on (ours, bad input, the disk, SQLite and MLflow's storage); anything else
    is a bug and keeps its traceback."""
    import sqlite3

    if isinstance(error, (FraudopsError, ValidationError, OSError, ValueError, sqlite3.Error, *expected)):
        return True
    return disk_full_cause(error) is not None or type(error).__module__.split(".")[0] in {"sqlalchemy", "mlflow"}


def one_line_message(error: Exception) -> str:
    """One line. A full disk is named as such, whatever layer noticed it (SQLAlchemy's own message starts
    with "Query-invoked autoflush"), and says that what was there is kept."""
    full = disk_full_cause(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if full and not isinstance(error, FraudopsError):
        return f"{full}; nothing was changed: free some space and run it again ({type(error).__name__})"
    return text
