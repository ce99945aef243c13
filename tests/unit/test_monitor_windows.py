"""Issue 17 item 7: consecutive monitor runs see every captured decision exactly once, with the capture
objects placed the way Firehose places them (buffered up to 300 s, named after the hour the oldest
record in the object arrived), across an hour boundary and inside the delivery delay. Also issue 18
item 4: the help warns that the monitor can start a retraining."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic_core import to_json

from fraudops.core.config import Settings
from fraudops.monitoring.capture import capture_record, read_captures
from fraudops.stages.monitor import monitor_window, run_monitor
from fraudops.store import blob_store

BUFFER = timedelta(seconds=300)  # BufferingHints.IntervalInSeconds in template.yaml
T = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def firehose_objects(decisions: list[tuple[datetime, str]], seed: int = 7) -> list[tuple[datetime, str, bytes]]:
    """(delivered at, key, gzip body) per object. Each record arrives 0-90 s (one in five: 2-4 minutes)
    after its decision (CloudWatch Logs' subscription); a buffer opens with its first record and is
    delivered 300 s later; the key's hour is the arrival hour of the object's oldest record, as the
    ``!{timestamp:...}`` prefix evaluates."""
    rng = random.Random(seed)
    lags = [rng.uniform(0, 90) if rng.random() < 0.8 else rng.uniform(120, 240) for _ in decisions]
    arrivals = sorted((when + timedelta(seconds=lag), line) for (when, line), lag in zip(decisions, lags, strict=True))
    objects: list[tuple[datetime, str, bytes]] = []
    opened: datetime | None = None
    lines: list[str] = []

    def deliver() -> None:
        assert opened is not None
        delivered = opened + BUFFER
        key = f"capture/{opened:%Y/%m/%d/%H}/fraudops-capture-1-{delivered:%Y-%m-%d-%H-%M-%S}-{len(objects)}.gz"
        objects.append((delivered, key, gzip.compress(("\n".join(lines) + "\n").encode())))

    for arrived, line in arrivals:
        if opened is not None and arrived >= opened + BUFFER:
            deliver()
            opened, lines = None, []
        if opened is None:
            opened = arrived
        lines.append(line)
    if lines:
        deliver()
    return objects


def decisions() -> list[tuple[datetime, str]]:
    """Steady traffic from 09:05 to 12:30, bursts across each hour boundary (10:00, 11:00, 12:00) and
    just before each run (inside the delivery delay)."""
    times = [T + timedelta(minutes=5, seconds=37 * i) for i in range(int(3.4 * 3600 / 37))]
    times += [T + timedelta(hours=h, seconds=s) for h in (1, 2, 3) for s in range(-30, 31, 2)]
    times += [T + timedelta(hours=h, minutes=8, seconds=s) for h in (1, 2, 3) for s in range(0, 60, 5)]
    out = []
    for index, when in enumerate(sorted(times)):
        record = capture_record({"step": index}, f"tx-{index}", "1", 0.1, 0.0, 0.5, f"req-{index}", when)
        out.append((when, to_json({**record, "seq": 0}).decode()))
    return out


def test_consecutive_runs_count_every_firehose_record_once(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", capture_delivery_delay_seconds=600, monitor_min_records=10**6)
    sent = decisions()
    objects = firehose_objects(sent)
    eleven = (T + timedelta(hours=2)).isoformat()

    def times_in(body: bytes) -> list[str]:
        return [json.loads(line)["time"] for line in gzip.decompress(body).splitlines()]

    # Both ways across 11:00: decisions after it under the 10/ prefix, decisions before it under 11/.
    assert any(key.split("/")[4] == "10" and max(times_in(body)) >= eleven for _, key, body in objects)
    assert any(key.split("/")[4] == "11" and min(times_in(body)) < eleven for _, key, body in objects)
    store = blob_store(settings)
    # Firehose retries a failed delivery: the same records may arrive twice in a second object.
    repeated = objects[len(objects) // 2]
    objects.append((repeated[0] + timedelta(seconds=40), repeated[1].replace(".gz", "-retry.gz"), repeated[2]))

    counted: list[str] = []
    put: set[str] = set()
    # Runs 10 minutes past each hour end their windows on the hour, where Firehose's prefixes disagree
    # with decision times; one run 2 minutes after another; the last run at an odd time.
    runs = [T + timedelta(hours=1, minutes=10), T + timedelta(hours=2, minutes=10), T + timedelta(hours=2, minutes=12),
            T + timedelta(hours=3, minutes=10), T + timedelta(hours=4, minutes=3)]  # fmt: skip
    windows = []
    for now in runs:
        for delivered, key, body in objects:  # only what Firehose has delivered by now is in the bucket
            if delivered <= now and key not in put:
                store.put(key, body)
                put.add(key)
        since, until = monitor_window(settings, now)
        assert until == (now - timedelta(seconds=600)).replace(second=0)
        in_window = read_captures(settings, since, until)
        report = run_monitor(settings, since, until)
        assert report["records"] == len(in_window)
        counted += [r["transaction_id"] for r in in_window]
        windows.append((since, until))

    assert windows[0][0] == windows[0][1] - timedelta(hours=1)  # the first run: the default window
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # no gap, no overlap
    last_until = windows[-1][1]
    expected = [line for when, line in sent if windows[0][0] <= when < last_until]
    assert len(counted) == len(set(counted)) == len(expected)  # each record once: none twice, none never
    boundary = {f"tx-{i}" for i, (when, _) in enumerate(sent) if abs(when - T - timedelta(hours=2)).seconds <= 20}
    assert boundary and boundary <= set(counted)


def test_a_run_inside_the_delivery_delay_leaves_the_rest_for_the_next(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", capture_delivery_delay_seconds=600, monitor_min_records=10**6)
    sent = decisions()
    store = blob_store(settings)
    now = T + timedelta(hours=2, minutes=10)  # records of the last 10 minutes are still in flight
    for delivered, key, body in firehose_objects(sent):
        if delivered <= now:
            store.put(key, body)
    since, until = monitor_window(settings, now)
    assert until == T + timedelta(hours=2)
    records = read_captures(settings, since, until)
    assert [r for r in records if r["time"] >= until.isoformat()] == []
    # Every decision of the window has been delivered by now, though some sit under the next hour's prefix.
    assert len(records) == sum(1 for when, _ in sent if since <= when < until)


def test_a_repeated_run_in_the_same_minute_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", monitor_min_records=10**6)
    now = datetime.now(UTC).replace(second=10)
    first = run_monitor(settings, *monitor_window(settings, now))
    second = run_monitor(settings, *monitor_window(settings, now + timedelta(seconds=5)))
    assert first["html_key"] and second["skipped"].startswith("nothing new to monitor")


def test_help_says_the_monitor_can_start_a_retraining_and_how_not_to(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 18 item 4: `make help` and `fraudops monitor --help` warn, and name the way out."""
    from fraudops_dev.cli import build_parser

    root = Path(__file__).resolve().parents[2]
    make_help = subprocess.run(["make", "-s", "help"], cwd=root, capture_output=True, text=True, check=True).stdout
    line = next(line for line in make_help.splitlines() if "make monitor" in line)
    assert "RETRAINING" in line and "NO_RETRAIN=1" in line
    dry_run = subprocess.run(["make", "-n", "monitor", "NO_RETRAIN=1"], cwd=root, capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    assert "fraudops monitor --no-retrain" in dry_run
    with pytest.raises(SystemExit):
        build_parser().parse_args(["monitor", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "STARTS A RETRAINING" in text and "--no-retrain to only report" in text
