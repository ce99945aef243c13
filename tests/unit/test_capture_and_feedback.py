"""Issue 9: the capture path, feedback validation and idempotency (local default store)."""

from __future__ import annotations

import gzip
import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.api import create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.monitoring.capture import FileCaptureSink, LogCaptureSink, capture_record, read_captures
from fraudops.monitoring.labels import read_labels, store_labels
from fraudops.serving.provider import LoadedModel, ModelProvider
from fraudops.store import blob_store
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

KEY = {"x-api-key": "secret-key-value"}


@pytest.fixture(scope="module")
def loaded(small_db: Path) -> LoadedModel:
    return train_local_model(fast_settings(db_path=small_db))


@pytest.fixture
def local(tmp_path: Path, small_db: Path) -> Settings:
    return fast_settings(db_path=small_db, state_dir=tmp_path / "state", api_keys=KEY["x-api-key"])


def app_for(local: Settings, loaded: LoadedModel, sink: Any) -> TestClient:
    provider = ModelProvider(local, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    return TestClient(create_app(local, provider, local.api_key_values(), sink))


def test_every_decision_is_captured_with_its_id_and_never_the_key(local: Settings, loaded: LoadedModel) -> None:
    sink = FileCaptureSink(local.local_artifact_dir)
    client = app_for(local, loaded, sink)
    start = datetime.now(UTC) - timedelta(seconds=1)
    one = client.post("/predict", json={**EXAMPLE_TRANSACTION, "transaction_id": "tx-1"}, headers=KEY).json()
    assert one["transaction_id"] == "tx-1"
    batch = [{**EXAMPLE_TRANSACTION, "transaction_id": f"tx-b{i}"} for i in range(3)] + [EXAMPLE_TRANSACTION]
    answer = client.post("/predict/batch", json={"transactions": batch}, headers={**KEY, "x-request-id": "req-9"})
    assert [p.get("transaction_id") for p in answer.json()["predictions"]] == ["tx-b0", "tx-b1", "tx-b2", None]
    records = read_captures(local, start, datetime.now(UTC) + timedelta(seconds=1))
    assert [r["transaction_id"] for r in records] == ["tx-1", "tx-b0", "tx-b1", "tx-b2", None]
    first = records[0]
    assert first["probability"] == one["probability"] and first["model_version"] == "7"
    assert first["transaction"] == EXAMPLE_TRANSACTION and first["threshold"] == one["threshold"]
    assert records[1]["request_id"] == "req-9"
    files = list((local.local_artifact_dir / "capture").rglob("*.jsonl"))
    assert files and KEY["x-api-key"] not in "".join(f.read_text() for f in files)
    assert sink.written == 5 and sink.failures == 0


def test_a_capture_failure_never_fails_a_request(local: Settings, loaded: LoadedModel, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture folder should be")
    sink = FileCaptureSink(blocker)
    client = app_for(local, loaded, sink)
    assert client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).status_code == 200
    assert sink.failures == 1 and sink.written == 0


def test_the_log_sink_writes_one_json_line_the_subscription_filter_matches() -> None:
    record = capture_record({"step": 1}, "t", "3", 0.5, 1.0, 0.4, "r")
    out = io.StringIO()
    with redirect_stdout(out):
        sink = LogCaptureSink()
        sink._write_line = lambda line, when: out.write(line.decode())  # type: ignore[method-assign,assignment]
        sink.write(record)
    line = json.loads(out.getvalue())
    assert line["fraudops_capture"] == 1 and line["transaction_id"] == "t"


def test_firehose_gzip_objects_are_read_like_local_files(local: Settings) -> None:
    when = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    lines = [json.dumps(capture_record({"step": i}, f"t{i}", "1", 0.1, 0.0, 0.5, "r", when)) for i in range(3)]
    body = gzip.compress(("\n".join(lines) + "\n{torn").encode())
    blob_store(local).put("capture/2026/11/25/10/fraudops-capture-1-2026-11-25-10-31.gz", body)
    records = read_captures(local, when - timedelta(minutes=1), when + timedelta(minutes=1))
    assert [r["transaction_id"] for r in records] == ["t0", "t1", "t2"]


def test_feedback_is_idempotent_and_the_newest_word_wins(local: Settings, loaded: LoadedModel) -> None:
    client = app_for(local, loaded, None)
    labels = {"labels": [{"transaction_id": "a", "is_fraud": True}, {"transaction_id": "b", "is_fraud": False}]}
    first = client.post("/feedback", json=labels, headers=KEY).json()
    assert (first["accepted"], first["stored"], first["repeated"]) == (2, 2, 0)
    client.post("/feedback", json=labels, headers=KEY)
    assert read_labels(local) == {"a": True, "b": False}  # sending twice changes nothing
    flipped = client.post("/feedback", json={"labels": [{"transaction_id": "b", "is_fraud": True}]}, headers=KEY)
    assert flipped.json()["stored"] == 1
    assert read_labels(local) == {"a": True, "b": True}
    assert client.post("/feedback", json=labels).status_code == 401
    twice = store_labels(local, [("a", False), ("c", True), ("a", True)], "file")
    assert twice == {"stored": 2, "repeated": 1}  # the last word inside one call wins
    assert read_labels(local) == {"a": True, "b": True, "c": True}


def test_a_feedback_request_costs_one_write_however_many_labels(
    local: Settings, loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One object per request, nothing read: 1,000 labels per object each were 2,000 S3 requests."""
    from fraudops.store.blobs import LocalBlobStore

    calls: list[str] = []

    def counting(name: str) -> Any:
        original = getattr(LocalBlobStore, name)

        def call(self: LocalBlobStore, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(self, *args, **kwargs)

        return call

    for name in ("put", "get", "get_or_none"):
        monkeypatch.setattr(LocalBlobStore, name, counting(name))
    client = app_for(local, loaded, None)
    body = {"labels": [{"transaction_id": f"t-{i}", "is_fraud": i % 7 == 0} for i in range(1000)]}
    answer = client.post("/feedback", json=body, headers=KEY)
    assert answer.status_code == 200 and answer.json()["stored"] == 1000
    assert calls == ["put"]
    monkeypatch.undo()
    labels = read_labels(local)
    assert len(labels) == 1000 and sum(labels.values()) == len(range(0, 1000, 7))


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5),
        st.lists(
            st.dictionaries(
                st.sampled_from(["transaction_id", "is_fraud", "other"]),
                st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=140)),
            )
        ),
    )
)
def test_any_feedback_body_is_stored_or_a_422_naming_the_field(
    local: Settings, loaded: LoadedModel, labels: Any
) -> None:
    client = app_for(local, loaded, None)
    response = client.post("/feedback", json={"labels": labels}, headers=KEY)
    assert response.status_code in {200, 422}, response.text
    if response.status_code == 422:
        assert response.json()["fields"] and all(f["field"].startswith("labels") for f in response.json()["fields"])
    else:
        assert response.json()["accepted"] == len(labels)


def test_feedback_accepts_paysim_style_0_and_1_as_import_labels_does(local: Settings, loaded: LoadedModel) -> None:
    client = app_for(local, loaded, None)
    labels = {"labels": [{"transaction_id": "p", "is_fraud": 1}, {"transaction_id": "q", "is_fraud": 0}]}
    answer = client.post("/feedback", json=labels, headers=KEY)
    assert answer.status_code == 200, answer.text
    assert read_labels(local) == {"p": True, "q": False}
    for wrong in (2, -1, "1", 0.5):
        refused = client.post("/feedback", json={"labels": [{"transaction_id": "r", "is_fraud": wrong}]}, headers=KEY)
        assert refused.status_code == 422, wrong
