"""Prediction capture: one record per decision, written off the request's critical path.

Two sinks behind one small base class:

* ``LogCaptureSink`` (AWS): one JSON line per decision on stdout, which Lambda ships to CloudWatch
  Logs; a subscription filter on ``$.fraudops_capture`` hands the lines to Kinesis Data Firehose,
  which batches them into gzip files under ``<artifact prefix>/capture/YYYY/MM/DD/HH/`` in the model
  bucket. No S3 call per request, nothing to flush when a container freezes, and the decision is in the
  logs even if delivery lags.
* ``FileCaptureSink`` (local default): the same line appended to
  ``<artifact dir>/capture/YYYY/MM/DD/HH/<host>-<pid>.jsonl``. A full disk can cut a write short: the
  sink then cuts the file back to its last whole line (and repairs a torn tail before it appends again),
  so no record is ever torn or glued onto a fragment; the decisions it could not write are counted
  (``CaptureSink.lost``), shown by ``/health`` (degraded) and published as the ``CapturesLost`` metric.

The monitor reads both layouts with ``read_captures``. A record holds the transaction as received,
the model version, probability, decision, threshold, outcome (with the rule or band that decided it
and the policy version), time, request id and the client's optional ``transaction_id``; never an API
key or anything else about the caller.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from fraudops.core.config import Settings, running_in_lambda
from fraudops.store import blob_store

CAPTURE_PREFIX = "capture/"
_HOUR = timedelta(hours=1)
MARKER = "fraudops_capture"


def capture_time(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds")


def capture_record(
    transaction: dict[str, Any],
    transaction_id: str | None,
    model_version: str,
    probability: float,
    prediction: float,
    threshold: float,
    request_id: str,
    now: datetime | str | None = None,
    decision: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``now`` may be given already formatted (``capture_time``): a batch shares one time. ``decision``:
    the outcome, what decided it and the policy version (the reasons are left out: the model and the
    transaction recorded here reproduce them)."""
    record = {
        MARKER: 1,
        "time": now if isinstance(now, str) else capture_time(now),
        "request_id": request_id,
        "transaction_id": transaction_id,
        "model_version": model_version,
        "probability": probability,
        "prediction": prediction,
        "threshold": threshold,
        "transaction": transaction,
    }
    if decision is not None:
        record["outcome"] = decision["outcome"]
        decided_by = decision["decided_by"]  # kind and name: the transaction here reproduces the evidence
        record["decided_by"] = {"kind": decided_by["kind"], "name": decided_by["name"]}
        record["policy_version"] = decision["policy_version"]
        if "aggregates" in decision:  # what the account did before: not in the transaction, needed to replay
            record["aggregates"] = decision["aggregates"]
    return record


class CaptureWriteError(OSError):
    """A write that stopped part-way: ``kept`` whole lines of it are stored, the rest is not."""

    def __init__(self, kept: int, cause: BaseException) -> None:
        super().__init__(getattr(cause, "errno", None), str(cause))
        self.kept = kept


# /health says "degraded" for this long after the last lost capture.
LOSS_VISIBLE_SECONDS = 600.0


class CaptureSink(ABC):
    def __init__(self) -> None:
        self.failures = 0  # decisions that could not be captured (lost), since the process started
        self.written = 0
        self.last_failure: str | None = None
        self._last_failure_at: float | None = None
        self._counts_lock = threading.Lock()

    @property
    def lost(self) -> int:
        return self.failures

    @abstractmethod
    def _write_line(self, line: bytes, when: datetime) -> None:
        """Store whole lines; raise ``CaptureWriteError`` when only the first ``kept`` got stored."""

    def write(self, record: dict[str, Any], when: datetime | None = None) -> None:
        """Never raises: a capture failure is counted, never a failed request."""
        self.write_many([record], when)

    def write_many(self, records: list[dict[str, Any]], when: datetime | None = None) -> None:
        """A batch's records in one write (one syscall, one flush)."""
        kept, problem = len(records), None
        try:
            # pydantic-core's Rust encoder: 4x faster than json's at 1,000 records (float repr dominates).
            # ``seq`` (the position in the request) keeps two equal decisions of one request two records:
            # the reader drops only exact repeats (a redelivered Firehose object).
            lines = b"".join(to_json({**record, "seq": index}) + b"\n" for index, record in enumerate(records))
            self._write_line(lines, when or datetime.now(UTC))
        except CaptureWriteError as error:
            kept, problem = error.kept, f"{type(error).__name__}: {error.strerror or error}"
        except Exception as error:
            kept, problem = 0, f"{type(error).__name__}: {error}"
        with self._counts_lock:
            self.written += kept
            if problem is not None:
                self.failures += len(records) - kept
                self.last_failure, self._last_failure_at = problem, time.monotonic()

    def problem(self) -> str | None:
        """What /health reports: recent lost captures, or None."""
        if self._last_failure_at is None or time.monotonic() - self._last_failure_at > LOSS_VISIBLE_SECONDS:
            return None
        return f"{self.failures} captured decisions lost since start (last: {self.last_failure})"


class LogCaptureSink(CaptureSink):
    def _write_line(self, line: bytes, when: datetime) -> None:
        sys.stdout.write(line.decode())
        sys.stdout.flush()


def _whole_lines_end(fd: int, size: int) -> int:
    """The offset just after the last newline of the file's first ``size`` bytes (0 if none)."""
    position, chunk = size, 4096
    while position > 0:
        start = max(0, position - chunk)
        block = os.pread(fd, position - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


class FileCaptureSink(CaptureSink):
    """One file per process and hour. Only this process writes it, so it knows where the whole lines
    end (``_size``): a short write (``ENOSPC`` part-way) is cut back to the last whole line, and while
    that cut cannot be made nothing is appended (the next write retries the repair first)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self._name = f"{socket.gethostname()}-{os.getpid()}.jsonl"
        self._fd: int | None = None
        self._hour_of: datetime | None = None
        self._size = 0  # where the file's whole lines end
        self._torn = False  # the file holds bytes after _size that could not be cut yet
        self._lock = threading.Lock()

    def _open(self, when: datetime) -> int:
        if (
            self._fd is not None
            and self._hour_of is not None
            and when.hour == self._hour_of.hour
            and when - self._hour_of < _HOUR
        ):
            return self._fd
        hour = when.strftime("%Y/%m/%d/%H")
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        folder = self.root / CAPTURE_PREFIX / hour
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / self._name, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        # A file left by an earlier process with this pid may end in a fragment: never append onto it.
        self._size = _whole_lines_end(fd, size)
        self._torn = self._size != size
        self._fd, self._hour_of = fd, when.replace(minute=0, second=0, microsecond=0)
        return fd

    def _cut(self, fd: int) -> None:
        """Drop everything after the last whole line; remember when that fails (never append then)."""
        try:
            os.ftruncate(fd, self._size)
            self._torn = False
        except OSError:
            self._torn = True
            raise

    def _write_line(self, line: bytes, when: datetime) -> None:
        with self._lock:
            fd = self._open(when)
            if self._torn:
                self._cut(fd)  # raises (nothing of this batch written) while the fragment stays
            done = 0
            try:
                while done < len(line):
                    written = os.write(fd, line[done:])
                    if written <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
            except OSError as error:
                whole = line.rfind(b"\n", 0, done) + 1
                self._size += whole
                if whole != done:
                    with contextlib.suppress(OSError):  # still torn: the next write repairs it first
                        self._cut(fd)
                raise CaptureWriteError(line.count(b"\n", 0, whole), error) from error
            self._size += done


def capture_sink(settings: Settings) -> CaptureSink | None:
    """The sink for this process: the log in Lambda, the local store's folder on a laptop."""
    if not settings.capture:
        return None
    if running_in_lambda() or settings.storage == "s3":
        return LogCaptureSink()
    return FileCaptureSink(settings.local_artifact_dir)


def delivery_delay(settings: Settings) -> timedelta:
    """How long after a decision its capture record may still be on its way to the store.

    Local files are written during the request (no delay). In AWS a record travels through CloudWatch
    Logs' subscription filter to Firehose, which buffers up to ``BufferingHints.IntervalInSeconds``
    (300 s in template.yaml; "Buffer incoming data for the specified period of time, in seconds, before
    delivering it to the destination", AWS Firehose API reference, BufferingHints:
    https://docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html) before it writes
    the object. ``FRAUDOPS_CAPTURE_DELIVERY_DELAY_SECONDS`` overrides the default (600 s in AWS).
    """
    if settings.capture_delivery_delay_seconds is not None:
        return timedelta(seconds=settings.capture_delivery_delay_seconds)
    if settings.storage == "s3" or running_in_lambda():
        return timedelta(seconds=600)
    return timedelta(0)


def _hours(since: datetime, until: datetime) -> Iterator[str]:
    hour = since.replace(minute=0, second=0, microsecond=0)
    while hour < until:
        yield hour.strftime("%Y/%m/%d/%H")
        hour += timedelta(hours=1)


def _lines(body: bytes) -> Iterator[tuple[bytes, dict[str, Any]]]:
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    for raw in body.splitlines():
        raw = raw.strip()
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a torn last line of a writer killed mid-write: skip it
        if isinstance(record, dict) and record.get(MARKER) == 1:
            yield raw, record


def read_captures(settings: Settings, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Every record with ``since <= time < until`` (local .jsonl files or Firehose's gzip objects), once.

    A record is filed by its decision time, but its object's prefix is not: Firehose names the hour
    prefix (``!{timestamp:yyyy/MM/dd/HH}`` in template.yaml) after "the approximate arrival timestamp of
    the oldest record that's contained in the Amazon S3 object being written" (AWS, Custom Prefixes for
    Amazon S3 Objects: https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html), so a decision
    at 10:59:58 can sit under ``10/`` or ``11/``, and one at 11:00:30 under ``10/`` when its object
    started buffering before the hour. The prefixes read therefore reach one delivery delay beyond both
    ends of the window; the time filter then gives each record to exactly one window. Firehose retries a
    failed delivery (https://docs.aws.amazon.com/firehose/latest/dev/retry.html), so an object can be
    delivered twice: an exact repeat of a line is counted once (``seq`` keeps two equal decisions of
    one request apart).
    """
    store = blob_store(settings)
    delay = delivery_delay(settings)
    records, seen = [], set()
    for hour in _hours(since - delay, until + delay):
        for key in store.list_keys(f"{CAPTURE_PREFIX}{hour}/"):
            body = store.get_or_none(key)
            if body is None:
                continue
            for raw, record in _lines(body):
                when = datetime.fromisoformat(record["time"])
                if since <= when < until and raw not in seen:
                    seen.add(raw)
                    records.append(record)
    return sorted(records, key=lambda r: r["time"])


def iter_capture_lines(body: bytes) -> Iterator[dict[str, Any]]:
    """The capture records in one file's bytes (a local .jsonl or a Firehose gzip object)."""
    return (record for _, record in _lines(body))
