"""Issue 27 item 4 as a fraud team calls it: traffic through /predict/batch, labels through /feedback's
store, `fraudops curate`, then `fraudops policy backtest DRAFT.json` prints the draft beside the active
(built-in) policy; a bad draft is refused with the validator's errors and nothing written; the monitor's
per-rule table on the same live traffic equals the back-test's replay of the policy that decided it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from fraudops_dev.cli import main
from fraudops_dev.datagen import GeneratorConfig, generate

from fraudops.api import build_default_app
from fraudops.core.config import Settings
from fraudops.monitoring.labels import store_labels
from fraudops.stages.monitor import run_monitor
from fraudops.store import blob_store
from tests.helpers.stack import train_and_promote, use_settings

pytestmark = pytest.mark.e2e
KEY = {"x-api-key": "key-one"}
FIELDS = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest", "oldbalanceDest",
          "newbalanceDest"]  # fmt: skip


def serve(client: TestClient, rows: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    """Every row through /predict/batch (captured); the answers, in order."""
    records = rows[FIELDS].to_dict("records")
    answers: list[dict[str, Any]] = []
    for start in range(0, len(records), 500):
        batch = [{**r, "transaction_id": f"{prefix}-{start + i}"} for i, r in enumerate(records[start : start + 500])]
        response = client.post("/predict/batch", json={"transactions": batch}, headers=KEY)
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    return answers


def files_of(*folders: Path) -> dict[str, int]:
    """Every file and when it changed; but the registry's lock file, which a registry read takes too."""
    return {str(p): p.stat().st_mtime_ns for folder in folders for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".lock"}  # fmt: skip


def cells(text: str, starts: str) -> tuple[str, list[str], list[str]]:
    """A row of the printed table: its outcome, the active policy's cells and the draft's."""
    line = next(row for row in text.splitlines() if row.startswith(starts))
    name, active, draft = line.split("|")
    return name.split()[-1], active.split(), draft.split()


def test_policy_backtest_on_served_traffic_beside_the_active_policy(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = local_settings.model_copy(update={"label_maturity_days": 0.0})  # every label-less one has matured
    train_and_promote(settings)
    use_settings(monkeypatch, settings)
    monkeypatch.setenv("FRAUDOPS_LABEL_MATURITY_DAYS", "0")
    since = datetime.now(UTC) - timedelta(seconds=1)
    rows = generate(GeneratorConfig(2_000, seed=21, fraud_rate=0.03, step_offset=744))
    answers = serve(TestClient(build_default_app(settings)), rows, "bt")
    until = datetime.now(UTC) + timedelta(seconds=1)
    store_labels(settings, [(f"bt-{i}", bool(f)) for i, f in enumerate(rows["isFraud"])], "test")
    assert main(["curate"]) == 0

    fraud = rows["isFraud"].to_numpy() == 1
    amount = rows["amount"].to_numpy()
    score = np.array([a["probability"] for a in answers])
    live = np.array([a["outcome"] for a in answers])
    denied = sorted(set(rows.loc[fraud, "nameDest"].iloc[:3]))
    # Bands from this small model's own scores (60 trees: its top score is far below 1): block the top one.
    distinct = np.unique(score)
    review_at, block_at = float(distinct[-4]), float(distinct[-1])
    draft = {"name": "tighter", "bands": {"review_at": review_at, "block_at": block_at},
             "rules": [{"name": "big-transfer", "outcome": "review",
                        "when": "type == 'TRANSFER' and amount > 200000"}],
             "lists": {"deny": {"nameDest": denied}}}  # fmt: skip
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft))
    state, lake = Path(settings.state_dir), Path(str(settings.lake_uri))
    before = files_of(state, lake)
    capsys.readouterr()
    assert main(["policy", "backtest", str(path)]) == 0
    text = capsys.readouterr().out
    assert files_of(state, lake) == before  # a back-test writes nothing

    # The draft, computed here from the rows and their scores, as the document says it decides.
    deny = rows["nameDest"].isin(denied).to_numpy()
    rule = ~deny & (rows["type"] == "TRANSFER").to_numpy() & (amount > 200_000)
    block = ~deny & ~rule & (score >= block_at)
    review = ~deny & ~rule & ~block & (score >= review_at)
    n = len(rows)
    for starts, mask, outcome in (("list deny.nameDest", deny, "block"), ("rule big-transfer", rule, "review"),
                                  ("band block", block, "block"), ("band review", review, "review")):  # fmt: skip
        shown, _, mine = cells(text, starts)
        assert shown == outcome and int(mine[0].replace(",", "")) == int(mask.sum()), starts
        assert mine[1] == f"{1000 * mask.sum() / n:.2f}" and int(mine[2]) == int((mask & fraud).sum()), starts
        assert mine[3] == f"{amount[mask & fraud].sum():,.0f}" and int(mine[4]) == int((mask & ~fraud).sum())
    assert int(rule.sum()) and int(block.sum()) and int(review.sum()) and int(deny.sum()) >= 3  # each part decided

    # Beside it, the active (built-in) policy replayed: exactly what the API decided on this traffic.
    assert "beside the built-in (no policy published) policy 'model bands'" in text
    assert f"on {n:,} captured decisions" in text and f"{int(fraud.sum()):,} confirmed fraud" in text
    for outcome in ("review", "approve"):
        _, active, _ = cells(text, f"band {outcome}")
        assert int(active[0].replace(",", "")) == int((live == outcome).sum())
    caught = next(row for row in text.splitlines() if row.startswith("confirmed frauds caught"))
    flagged = np.isin(live, ["review", "block"])
    drafted = deny | rule | block | review
    assert caught.split()[-3:-1] == [f"{(flagged & fraud).sum():,}", f"{(drafted & fraud).sum():,}"]
    friction = next(row for row in text.splitlines() if row.startswith("friction: legitimate reviewed"))
    assert friction.split()[-2] == f"{((rule | review) & ~fraud).sum():,}"

    # The monitor's per-rule table on the same live traffic: the recorded outcomes, the same figures.
    assert main(["policy", "backtest", str(path), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)["active"]
    report = run_monitor(settings, since, until)
    fired = [row for row in replayed["rows"] if row["hits"]]  # the replay also lists what nothing hit
    assert list(report["rules"]["rows"]) == fired and report["rules"]["frauds_caught"] == replayed["frauds_caught"]
    page = blob_store(settings).get(report["html_key"]).decode()
    assert "By list, rule and band" in page and f"{int((live == 'review').sum()):,}</td>" in page


def test_a_bad_draft_or_an_empty_lake_is_refused_with_one_line_and_nothing_written(
    local_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_settings(monkeypatch, local_settings)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "bands": {"review_at": 2},
                               "rules": [{"name": "r", "when": "amount >", "outcome": "block"}]}))  # fmt: skip
    state, lake = Path(local_settings.state_dir), Path(str(local_settings.lake_uri))
    before = files_of(state, lake)
    capsys.readouterr()
    assert main(["policy", "backtest", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "the policy is not valid (2 problem(s))" in err and "bands.review_at" in err and "rules[0].when" in err
    assert main(["policy", "backtest", str(tmp_path / "missing.json")]) == 2
    assert "cannot read the policy file" in capsys.readouterr().err
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "ok", "bands": {"review_at": 0.5, "block_at": None}}))
    assert main(["policy", "backtest", str(good)]) == 2  # the lake holds history, no captured decisions yet
    assert "the lake has no captured decisions to back-test on" in capsys.readouterr().err
    assert main(["policy", "backtest", str(good), "--days", "-1"]) == 2
    assert "--days must be a positive number" in capsys.readouterr().err
    assert files_of(state, lake) == before
