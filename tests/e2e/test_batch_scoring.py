"""Batch scoring end to end on the local default: the state machine's steps (pin, read, batch, score in
worker processes, write parts), every output row checked against /predict, bad rows reported by line."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fraudops_dev.batch_local import BatchRunFailed, RunOptions, error_rows, results_rows, run_batch_locally
from fraudops_dev.sqlite_io import load_training_frame

from fraudops.core.config import Settings
from fraudops.core.errors import InvalidInputError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.stages.promote import run_promotion
from fraudops.stages.train import run_training
from tests.helpers.stack import fast_settings

ROWS = 1_500
KEY = {"x-api-key": "key-one"}
OPTIONS = RunOptions(rows_per_batch=200, max_concurrency=2, tolerated_failure_percentage=0)


@pytest.fixture(scope="module")
def promoted_state(tmp_path_factory: pytest.TempPathFactory, small_db: Path) -> Path:
    """A state folder with one trained and promoted version, made once for the module (its tests read
    that version; one trains a second on its own copy)."""
    state = tmp_path_factory.mktemp("promoted") / "state"
    template = fast_settings(db_path=small_db, state_dir=state, api_keys="key-one,key-two")
    run_training(template)
    run_promotion(template)
    return state


@pytest.fixture
def promoted(local_settings: Settings, promoted_state: Path) -> Settings:
    """The test's own copy of that state: a local registry follows its folder when it is copied
    (fraudops.store.registry.follow_moved_state), as `fraudops up` on a copied state folder does."""
    shutil.copytree(promoted_state, local_settings.state_dir)
    return local_settings


def _transactions(db: Path) -> list[dict[str, Any]]:
    frame = load_training_frame(db).head(ROWS)
    rows = frame[[*RAW_FEATURE_COLUMNS, "isFraud"]].to_dict("records")
    return [{"transaction_id": f"t{i}", **row} for i, row in enumerate(rows)]


def _write_csv(path: Path, rows: list[dict[str, Any]], bad_lines: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        handle.writelines(line + "\n" for line in bad_lines)


def _predict_each(settings: Settings, rows: list[dict[str, str]]) -> list[float]:
    """/predict, one request per row, on the API built from the same store."""
    from fraudops.api.app import build_default_app

    with TestClient(build_default_app(settings)) as client:
        probabilities = []
        for row in rows:
            body: dict[str, Any] = {name: row[name] for name in RAW_FEATURE_COLUMNS}
            body = {k: (v if k == "type" else (int(v) if k == "step" else float(v))) for k, v in body.items()}
            response = client.post("/predict", json=body, headers=KEY)
            assert response.status_code == 200, response.text
            probabilities.append(response.json()["probability"])
    return probabilities


def test_every_row_is_scored_as_predict_scores_it_and_bad_rows_are_reported(promoted: Settings, tmp_path: Path) -> None:
    rows = _transactions(promoted.db_path)
    header_fields = len(rows[0])
    bad = [
        "t-neg,1,TRANSFER,-5.0,10.0,0.0,0.0,0.0,0",  # negative amount
        "t-type,1,WIRE,5.0,10.0,5.0,0.0,0.0,0",  # unknown type
        "t-long," + ",".join(["1"] * header_fields),  # one value too many
    ]
    source = tmp_path / "day.csv"
    _write_csv(source, rows, bad)
    run = run_batch_locally(
        promoted, source, str(tmp_path / "out"), options=OPTIONS, workers=2, progress=lambda _: None
    )

    assert (run.rows, run.scored, run.rejected, run.failed_batches) == (ROWS + 3, ROWS, 3, [])
    assert run.batches == -(-(ROWS + 3) // OPTIONS.rows_per_batch)
    output = list(results_rows(run.output))
    assert [r["transaction_id"] for r in output] == [r["transaction_id"] for r in rows]  # every row, in order
    assert {r["model_version"] for r in output} == {"1"}
    assert all(r["isFraud"] in {"0", "1"} for r in output)  # label kept beside the score for back-tests
    assert [int(r["line"]) for r in output] == list(range(2, ROWS + 2))
    expected = _predict_each(promoted, output)
    assert [float(r["probability"]) for r in output] == expected  # bit for bit, as /predict answers
    threshold = float(output[0]["threshold"])
    assert all(int(r["decision"]) == int(float(r["probability"]) >= threshold) for r in output)

    errors = {int(e["line"]): e["error"] for e in error_rows(run.output)}
    assert sorted(errors) == [ROWS + 2, ROWS + 3, ROWS + 4]
    assert "amount" in errors[ROWS + 2] and "greater than or equal to 0" in errors[ROWS + 2]
    assert errors[ROWS + 3].startswith("type:")
    assert "header has" in errors[ROWS + 4]
    summary = json.loads((Path(run.output) / "summary.json").read_text())
    assert summary["scored"] == ROWS


def test_a_named_version_is_pinned_for_the_whole_run_and_json_lines_work(promoted: Settings, tmp_path: Path) -> None:
    run_training(promoted)  # version 2, not promoted: a candidate to back-test
    rows = _transactions(promoted.db_path)[:300]
    source = tmp_path / "day.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    run = run_batch_locally(promoted, source, str(tmp_path / "out"), model_version="2", options=OPTIONS,
                            workers=1, progress=lambda _: None)  # fmt: skip
    output = list(results_rows(run.output))
    assert run.model_version == "2" and {r["model_version"] for r in output} == {"2"}
    assert len(output) == 300 and [e["line"] for e in error_rows(run.output)] == ["301"]


def test_failed_batches_fail_the_run_beyond_the_tolerated_percentage(promoted: Settings, tmp_path: Path) -> None:
    source = tmp_path / "day.csv"
    _write_csv(source, _transactions(promoted.db_path)[:400], [])
    broken = RunOptions(rows_per_batch=200, max_concurrency=1, tolerated_failure_percentage=0)
    # an output folder that cannot be created makes every batch fail in its Lambda
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BatchRunFailed, match="400 of 400 rows were in failed batches"):
        run_batch_locally(promoted, source, str(blocker / "out"), options=broken, workers=1, progress=lambda _: None)
    with pytest.raises(InvalidInputError, match="no such file"):
        run_batch_locally(promoted, tmp_path / "missing.csv", options=broken, progress=lambda _: None)


def test_outcomes_come_from_the_policy_pinned_for_the_run_as_predict_decides(
    promoted: Settings, tmp_path: Path
) -> None:
    from fraudops.api.app import build_default_app
    from fraudops.decisions import publish_policy

    rows = _transactions(promoted.db_path)[:300]
    rows[0]["nameDest"] = "C-mule"
    for row in rows[1:]:
        row["nameDest"] = ""  # an empty CSV cell: no name
    publish_policy(
        promoted,
        {"name": "batch", "rules": [{"name": "cash-out", "when": "type == 'CASH_OUT' and amount > 100000",
                                     "outcome": "review"}],
         "lists": {"deny": {"nameDest": ["C-mule"]}}},
        "test",
    )  # fmt: skip
    source = tmp_path / "day.csv"
    _write_csv(source, rows, [])
    run = run_batch_locally(promoted, source, str(tmp_path / "out"), options=OPTIONS, workers=1,
                            progress=lambda _: None)  # fmt: skip
    publish_policy(promoted, {"name": "later", "bands": {"review_at": 0.0, "block_at": None}}, "after the pin")
    output = list(results_rows(run.output))
    assert {r["policy_version"] for r in output} == {"1"}
    assert output[0]["outcome"] == "block" and output[0]["decided_by"] == "list:deny.nameDest"
    assert any(r["decided_by"] == "rule:cash-out" for r in output)
    flagged = [r for r in output if r["outcome"] != "approve"]
    assert flagged and all(json.loads(r["reasons"]) for r in flagged)
    assert all(r["reasons"] == "" for r in output if r["outcome"] == "approve")

    from fraudops.decisions import rollback_policy

    rollback_policy(promoted, "back to the pinned one", expected_from=2)
    with TestClient(build_default_app(promoted)) as client:
        for row, result in zip(rows, output, strict=True):
            body = {k: v for k, v in row.items() if k not in ("isFraud", "transaction_id") and v != ""}
            answer = client.post("/predict", json=body, headers=KEY).json()
            assert (answer["outcome"], f"{answer['decided_by']['kind']}:{answer['decided_by']['name']}") == (
                result["outcome"], result["decided_by"]
            )  # fmt: skip


def test_batch_check_is_never_recorded_as_live_traffic(promoted: Settings, tmp_path: Path) -> None:
    """Issue 18 item 3: tooling must not feed the monitor's drift, flagged rate or realized performance."""
    from datetime import UTC, datetime, timedelta

    from fraudops_dev.batch_check import check_against_predict

    from fraudops.monitoring.capture import read_captures

    source = tmp_path / "day.csv"
    _write_csv(source, _transactions(promoted.db_path)[:150], [])
    started = datetime.now(UTC) - timedelta(minutes=1)
    run = run_batch_locally(promoted, source, str(tmp_path / "out"), options=OPTIONS, workers=1,
                            progress=lambda _: None)  # fmt: skip
    report = check_against_predict(promoted, run.output, workers=1, progress=lambda _: None)
    assert (report["rows_checked"], report["mismatches"]) == (150, 0)
    assert read_captures(promoted, started, datetime.now(UTC) + timedelta(minutes=1)) == []


def test_json_lines_values_that_are_not_objects_are_bad_rows_of_a_whole_run(promoted: Settings, tmp_path: Path) -> None:
    """Issue 17 item 9: with the default tolerance (0%), one such line must not fail the run."""
    rows = _transactions(promoted.db_path)[:50]
    source = tmp_path / "day.jsonl"
    source.write_text(json.dumps(rows[0]) + "\n[1, 2]\n\n7\n" + "".join(json.dumps(r) + "\n" for r in rows[1:]))
    run = run_batch_locally(promoted, source, str(tmp_path / "out"), options=OPTIONS, workers=1,
                            progress=lambda _: None)  # fmt: skip
    assert (run.scored, run.rejected, run.failed_batches) == (50, 2, [])
    errors = {int(e["line"]): e["error"] for e in error_rows(run.output)}
    assert sorted(errors) == [2, 4] and all("not a JSON object" in message for message in errors.values())
    assert [int(r["line"]) for r in results_rows(run.output)][:2] == [1, 5]


def test_a_folder_is_named_as_a_folder(promoted: Settings, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder"):
        run_batch_locally(promoted, tmp_path, progress=lambda _: None)


def test_make_batch_score_scores_a_day_csv_through_the_cli(
    promoted: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `make batch-score FILE=day.csv` (`fraudops batch-score day.csv`): the CLI scores each
    valid row with Production, reports the bad one by line, and prints where the results are."""
    from fraudops_dev.cli import main

    from fraudops.core.config import get_settings

    rows = _transactions(promoted.db_path)[:120]
    source = tmp_path / "day.csv"
    _write_csv(source, rows, ["t-neg,1,TRANSFER,-5.0,10.0,0.0,0.0,0.0,0"])
    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(promoted.state_dir))
    monkeypatch.setenv("FRAUDOPS_LAKE_URI", str(promoted.lake_uri))
    get_settings.cache_clear()
    try:
        assert main(["batch-score", str(source)]) == 0
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    run = json.loads(out)
    assert (run["rows"], run["scored"], run["rejected"], run["failed_batches"]) == (121, 120, 1, [])
    assert run["model_version"] == "1" and Path(run["output"]).is_relative_to(promoted.state_dir)
    assert f"results: {run['output']}/results/" in err
    results = list(results_rows(run["output"]))
    assert [r["transaction_id"] for r in results] == [r["transaction_id"] for r in rows]
    assert {r["model_version"] for r in results} == {"1"}
    assert all(0.0 <= float(r["probability"]) <= 1.0 for r in results)
    errors = list(error_rows(run["output"]))
    assert [int(e["line"]) for e in errors] == [122] and "amount" in errors[0]["error"]
