"""Issue 17 item 8: the one-retraining-at-a-time lease holds under a race, because it is a conditional
write (S3's on the moto server, the sidecar-locked compare-and-rename on disk), not a listing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudops.core.config import Settings
from fraudops.production.retraining_lock import LEASE_SECONDS, LOCK_KEY, acquire, release
from fraudops.store.blobs import BlobStore, LocalBlobStore, PreconditionFailed, blob_store
from fraudops.store.s3 import ensure_bucket

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "artifacts")
    settings: Settings = request.getfixturevalue("settings")
    ensure_bucket(settings)
    return blob_store(settings)


def test_conditional_put_lets_one_of_two_writers_win(store: BlobStore) -> None:
    store.put_if("k.json", b"first", None)
    with pytest.raises(PreconditionFailed):
        store.put_if("k.json", b"second", None)  # it exists now
    etag = store.etag("k.json")
    store.put_if("k.json", b"third", etag)
    with pytest.raises(PreconditionFailed):
        store.put_if("k.json", b"fourth", etag)  # that version is gone
    assert store.get("k.json") == b"third"


def test_of_executions_starting_together_exactly_one_trains(store: BlobStore) -> None:
    executions = [f"arn:aws:states:us-east-1:123456789012:execution:retrain:run-{n}" for n in range(6)]
    barrier = threading.Barrier(len(executions))
    outcomes = {}

    def start(execution: str) -> None:
        barrier.wait()
        outcomes[execution] = acquire(store, execution)

    threads = [threading.Thread(target=start, args=(e,)) for e in executions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [e for e, outcome in outcomes.items() if outcome.acquired]
    assert len(outcomes) == len(executions) and len(winners) == 1, outcomes
    assert all(o.holder == winners[0] and winners[0] in o.reason for e, o in outcomes.items() if e != winners[0])
    assert json.loads(store.get(LOCK_KEY))["execution"] == winners[0]


def test_release_frees_the_lease_and_only_its_holder_can_release(store: BlobStore) -> None:
    assert acquire(store, "run-a").acquired
    assert acquire(store, "run-a").acquired  # a retried step of the holder
    assert not acquire(store, "run-b").acquired
    assert release(store, "run-b") is False  # not the holder: untouched
    assert not acquire(store, "run-c").acquired
    assert release(store, "run-a") is True
    assert acquire(store, "run-b").acquired


def test_a_lease_left_by_a_dead_execution_expires(store: BlobStore) -> None:
    started = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert acquire(store, "aborted-run", now=started).acquired  # never released
    assert not acquire(store, "next-run", now=started + timedelta(seconds=LEASE_SECONDS - 1)).acquired
    later = acquire(store, "next-run", now=started + timedelta(seconds=LEASE_SECONDS + 1))
    assert later.acquired and "aborted-run" in later.reason


def test_the_lease_lasts_as_long_as_the_state_machine_may_run() -> None:
    """A lease must never expire under a live execution: it lasts the state machine's TimeoutSeconds."""
    definition = json.loads((ROOT / "infra" / "statemachine" / "retrain.asl.json").read_text())
    assert definition["TimeoutSeconds"] == LEASE_SECONDS
