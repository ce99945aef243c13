"""Issue 22 item 8: a full disk never tears a capture record. Real uvicorn, concurrent /predict/batch, the
capture folder on a real 1 MB tmpfs filled to its last kilobytes (root only; elsewhere the injected test
below covers the same logic): every stored line is a whole record, nothing is ever glued onto a fragment,
and the decisions that could not be captured are counted and shown by /health."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fraudops_dev.local import free_port, serve_in_thread

from fraudops.api import create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.monitoring import capture as capture_module
from fraudops.monitoring.capture import FileCaptureSink, read_captures
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

pytestmark = pytest.mark.e2e
KEY = "capture-disk-key"
BATCH = 100


@pytest.fixture(scope="module")
def loaded(small_db: Path) -> LoadedModel:
    return train_local_model(fast_settings(db_path=small_db))


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    path.mkdir(parents=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); the injected test runs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A filler file taking all but ``leave`` bytes of the filesystem."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(free - leave, 0))
    return filler


def whole_records(root: Path) -> list[dict[str, Any]]:
    """Every capture line, asserting none is torn: each file ends with a newline, each line is a record."""
    records = []
    for path in sorted((root / "capture").rglob("*.jsonl")):
        body = path.read_bytes()
        assert body == b"" or body.endswith(b"\n"), f"{path} ends in a fragment"
        for line in body.splitlines():
            record = json.loads(line)  # a torn or glued line fails here
            assert record["fraudops_capture"] == 1
            records.append(record)
    return records


def send_batches(base: str, count: int, workers: int = 4) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()
    batch = {"transactions": [{**EXAMPLE_TRANSACTION, "amount": 100.0 + i} for i in range(BATCH)]}

    def work(number: int) -> None:
        with httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30) as client:
            for _ in range(number):
                status = client.post("/predict/batch", json=batch).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=work, args=(count // workers,)) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_full_tmpfs_under_load_tears_no_record_and_counts_the_lost(tmp_path: Path, loaded: LoadedModel) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        settings = Settings(state_dir=disk / "state", api_keys=KEY)
        sink = FileCaptureSink(settings.local_artifact_dir)
        provider = ModelProvider(settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
        app = create_app(settings, provider, [KEY], sink)
        (settings.local_artifact_dir / "capture").mkdir(parents=True)
        filler = fill(disk, leave=150_000)  # room for about 3 of the 40 batches below
        with serve_in_thread(app, free_port()) as base:
            assert httpx.get(f"{base}/health").json()["status"] == "ok"
            statuses = send_batches(base, 40)
            assert statuses == [200] * 40  # serving never fails for a capture
            health = httpx.get(f"{base}/health").json()
            assert health["status"] == "degraded" and health["captures_lost"] == sink.lost > 0
            assert "No space left on device" in health["problem"]
            stored_while_full = whole_records(settings.local_artifact_dir)
            assert 0 < len(stored_while_full) == sink.written < 40 * BATCH

            filler.unlink()  # space returns: the next records are whole and readable
            assert send_batches(base, 8) == [200] * 8
        records = whole_records(settings.local_artifact_dir)
        assert len(records) == sink.written and sink.written + sink.lost == 48 * BATCH
        assert len(records) - len(stored_while_full) == 8 * BATCH
        assert len(read_captures(settings, *_span(records))) == len(records)


def _span(records: list[dict[str, Any]]) -> tuple[Any, Any]:
    from datetime import datetime, timedelta

    times = [datetime.fromisoformat(r["time"]) for r in records]
    return min(times), max(times) + timedelta(seconds=1)


def test_a_short_write_is_cut_back_and_never_appended_onto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same guarantees with ENOSPC injected: a write stops part-way, and the cut back fails once too."""
    sink = FileCaptureSink(tmp_path / "artifacts")
    records = [{"fraudops_capture": 1, "time": "2026-11-25T10:00:00+00:00", "n": i} for i in range(10)]
    sink.write_many(records)
    real_write, real_truncate = os.write, os.ftruncate
    plan = {"writes": ["partial", "fail", "fail"], "truncates": ["fail"]}

    def write(fd: int, data: bytes) -> int:
        step = plan["writes"].pop(0) if plan["writes"] else "ok"
        if step == "partial":
            return real_write(fd, data[: len(data) // 2 + 7])  # stops mid-record
        if step == "fail":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def ftruncate(fd: int, size: int) -> None:
        if plan["truncates"] and plan["truncates"].pop(0) == "fail":
            raise OSError(errno.ENOSPC, "injected: cannot cut yet")
        real_truncate(fd, size)

    monkeypatch.setattr(capture_module.os, "write", write)
    monkeypatch.setattr(capture_module.os, "ftruncate", ftruncate)
    sink.write_many(records)  # half written, then ENOSPC; the cut back fails: the fragment stays for now
    kept = sink.written - 10
    assert 0 < kept < 10 and sink.lost == 10 - kept
    path = next((tmp_path / "artifacts" / "capture").rglob("*.jsonl"))
    assert not path.read_bytes().endswith(b"\n")  # torn on disk, remembered by the sink
    sink.write_many(records)  # repairs the tail first, then the write fails: nothing appended
    assert path.read_bytes().endswith(b"\n") and sink.lost == 20 - kept
    sink.write_many(records)  # space is back
    assert len(whole_records(tmp_path / "artifacts")) == sink.written == 20 + kept
    assert "No space left on device" in str(sink.problem())


def test_a_fragment_left_by_a_killed_writer_is_cut_before_appending(tmp_path: Path) -> None:
    first = FileCaptureSink(tmp_path / "artifacts")
    first.write_many([{"fraudops_capture": 1, "n": 1}])
    path = next((tmp_path / "artifacts" / "capture").rglob("*.jsonl"))
    with path.open("ab") as torn:
        torn.write(b'{"fraudops_capture":1,"n":')  # killed mid-write
    again = FileCaptureSink(tmp_path / "artifacts")  # same host and pid: the same file
    again.write_many([{"fraudops_capture": 1, "n": 2}])
    assert [r["n"] for r in whole_records(tmp_path / "artifacts")] == [1, 2]
