"""Outcomes, what decided them and reasons, through the API (FastAPI's TestClient, a real trained model,
policies published to the local store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fraudops.api import create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION, Prediction
from fraudops.core.config import Settings
from fraudops.decisions import publish_policy
from fraudops.monitoring.capture import FileCaptureSink, read_captures
from fraudops.serving.decide import PolicyProvider
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

KEY = {"x-api-key": "key-one"}
PAYMENT = {**EXAMPLE_TRANSACTION, "type": "PAYMENT", "amount": 120.0, "oldbalanceOrg": 5000.0,
           "newbalanceOrig": 4880.0, "step": 14}  # fmt: skip


@pytest.fixture(scope="module")
def loaded(small_db: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return train_local_model(fast_settings(db_path=small_db, state_dir=tmp_path_factory.mktemp("model")))


@pytest.fixture
def api(local_settings: Settings, loaded: LoadedModel) -> tuple[TestClient, Settings]:
    provider = ModelProvider(local_settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    capture = FileCaptureSink(local_settings.local_artifact_dir)
    app = create_app(local_settings, provider, local_settings.api_key_values(), capture, PolicyProvider(local_settings))
    return TestClient(app), local_settings


def test_existing_fields_stay_and_the_outcome_comes_with_what_decided_it(
    api: tuple[TestClient, Settings], loaded: LoadedModel
) -> None:
    client, _ = api
    flagged = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()
    assert {"probability", "prediction", "threshold", "model_version"} <= set(flagged)
    Prediction.model_validate(flagged)
    bands = loaded.model.spec.extra["decision_bands"]
    expected = "block" if bands["block_at"] is not None and flagged["probability"] >= bands["block_at"] else "review"
    assert flagged["outcome"] == expected
    threshold = bands["block_at"] if expected == "block" else bands["review_at"]
    assert flagged["decided_by"] == {
        "kind": "band", "name": expected, "condition": flagged["decided_by"]["condition"],
        "values": {"score": flagged["probability"]}, "summary": flagged["decided_by"]["summary"],
    }  # fmt: skip
    assert flagged["decided_by"]["condition"].startswith(f"score >= {threshold!r} ")
    assert flagged["policy_version"] == "builtin"
    assert 1 <= len(flagged["reasons"]) <= 3
    assert flagged["reasons"][0]["contribution"] > 0

    approved = client.post("/predict", json=PAYMENT, headers=KEY).json()
    assert approved["outcome"] == "approve" and "reasons" not in approved
    explained = client.post("/predict?explain=true", json=PAYMENT, headers=KEY).json()
    assert explained["outcome"] == "approve" and explained["reasons"]


def test_a_published_policy_decides_with_rules_and_lists(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    publish_policy(
        settings,
        {
            "name": "ops",
            "bands": {"review_at": 0.2, "block_at": 0.999},
            "rules": [{"name": "small-payment", "when": "type == 'PAYMENT' and amount < 500", "outcome": "review"}],
            "lists": {"deny": {"nameDest": ["C-mule"]}},
        },
        "test",
    )
    body = client.post("/predict", json=PAYMENT, headers=KEY).json()
    assert (body["outcome"], body["decided_by"]["kind"], body["decided_by"]["name"], body["policy_version"]) == (
        "review", "rule", "small-payment", "1"
    )  # fmt: skip
    assert body["decided_by"]["values"] == {"type": "PAYMENT", "amount": 120.0}
    assert body["reasons"]  # flagged by a rule: reasons all the same
    denied = client.post("/predict", json={**PAYMENT, "amount": 900.0, "nameDest": "C-mule"}, headers=KEY).json()
    assert denied["outcome"] == "block" and denied["decided_by"]["name"] == "deny.nameDest"
    assert denied["decided_by"]["kind"] == "list" and denied["decided_by"]["values"] == {"nameDest": "C-mule"}

    rows = [PAYMENT, {**PAYMENT, "amount": 900.0, "nameDest": "C-mule"}, EXAMPLE_TRANSACTION,
            {**PAYMENT, "amount": 900.0, "type": "CASH_IN"}]  # fmt: skip
    batch = client.post("/predict/batch", json={"transactions": rows}, headers=KEY).json()["predictions"]
    singles = [client.post("/predict", json=row, headers=KEY).json() for row in rows]
    keys = ("outcome", "decided_by", "policy_version")
    assert [[p[k] for k in keys] for p in batch] == [[p[k] for k in keys] for p in singles]
    assert [bool(p.get("reasons")) for p in batch] == [p["outcome"] != "approve" for p in batch]
    # /predict explains with the features it scored; the batch builds them per batch: the same reasons
    assert [p.get("reasons") for p in batch] == [p.get("reasons") for p in singles]

    info = client.get("/model", headers=KEY).json()
    assert info["policy"]["version"] == "1" and info["policy"]["document"]["name"] == "ops"
    assert info["decision_bands"]["cost_model"]["review_cost"] == settings.review_cost


def test_captured_decisions_record_the_outcome(api: tuple[TestClient, Settings]) -> None:
    from datetime import UTC, datetime, timedelta

    client, settings = api
    client.post("/predict", json={**EXAMPLE_TRANSACTION, "transaction_id": "t-1"}, headers=KEY)
    now = datetime.now(UTC)
    records = read_captures(settings, now - timedelta(minutes=5), now + timedelta(minutes=5))
    record: dict[str, Any] = next(r for r in records if r["transaction_id"] == "t-1")
    assert record["outcome"] in ("review", "block") and record["decided_by"]["kind"] == "band"
    assert record["policy_version"] == "builtin"


def test_a_policy_that_cannot_be_read_keeps_the_one_in_memory(api: tuple[TestClient, Settings]) -> None:
    client, settings = api
    publish_policy(settings, {"name": "ops", "bands": {"review_at": 0.0, "block_at": None}}, "everything to review")
    assert client.post("/predict", json=PAYMENT, headers=KEY).json()["outcome"] == "review"
    broken = settings.local_artifact_dir / "policies" / settings.model_name / "activations" / "00000002.json"
    broken.write_text("{not json")
    body = client.post("/predict", json=PAYMENT, headers=KEY).json()
    assert (body["outcome"], body["policy_version"]) == ("review", "1")
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "decision policy" in health["problem"]


def test_explain_is_a_documented_boolean_query_parameter(api: tuple[TestClient, Settings]) -> None:
    client, _ = api
    assert "reasons" in client.post("/predict?explain=1", json=PAYMENT, headers=KEY).json()
    assert "reasons" not in client.post("/predict?explain=false", json=PAYMENT, headers=KEY).json()
    bad = client.post("/predict?explain=maybe", json=PAYMENT, headers=KEY)
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "explain"
    document = client.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        parameters = document["paths"][path]["post"]["parameters"]
        assert [p["name"] for p in parameters if p["in"] == "query"] == ["explain"]


# --- what decided it, and reasons that never argue against it (issue 27, item 2) ------------------------

LOW_SCORE = {**PAYMENT, "nameDest": "C-mule"}  # a small payment: the model lowers its score


def _explained_api(local_settings: Settings, loaded: LoadedModel) -> TestClient:
    """The app with every non-zero contribution as a reason, so a test sees all of them."""
    settings = local_settings.model_copy(update={"top_reasons": 30})
    provider = ModelProvider(settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    return TestClient(create_app(settings, provider, settings.api_key_values(), None, PolicyProvider(settings)))


def test_a_deny_list_block_says_which_entry_and_no_reason_argues_against_it(
    local_settings: Settings, loaded: LoadedModel
) -> None:
    client = _explained_api(local_settings, loaded)
    approved = client.post("/predict?explain=true", json=LOW_SCORE, headers=KEY).json()
    assert approved["outcome"] == "approve"
    assert any(r["direction"] == "lowers" for r in approved["reasons"])  # the model argues for approving it
    publish_policy(local_settings, {"name": "ops", "lists": {"deny": {"nameDest": ["C-mule"]}}}, "mule")
    batch = client.post("/predict/batch", json={"transactions": [PAYMENT, LOW_SCORE]}, headers=KEY).json()
    for body in (client.post("/predict", json=LOW_SCORE, headers=KEY).json(), batch["predictions"][1]):
        Prediction.model_validate(body)
        assert body["outcome"] == "block"
        assert body["decided_by"] == {
            "kind": "list", "name": "deny.nameDest", "condition": "nameDest is on the deny list",
            "values": {"nameDest": "C-mule"}, "summary": "nameDest 'C-mule' is on the deny list",
            "score_outcome": "approve",
        }  # fmt: skip
        assert all(r["direction"] == "raises" for r in body["reasons"]), body["reasons"]


def test_a_rule_decision_shows_its_condition_with_the_values_that_met_it(
    local_settings: Settings, loaded: LoadedModel
) -> None:
    client = _explained_api(local_settings, loaded)
    rules = [
        {"name": "big-payment", "when": "amount > 10000 and type == 'PAYMENT'", "outcome": "review"},
        {"name": "trusted-transfer", "when": "type == 'TRANSFER' and score > 0.0", "outcome": "approve"},
    ]
    publish_policy(local_settings, {"name": "ops", "rules": rules}, "rules")
    big = {**PAYMENT, "amount": 25000.0, "oldbalanceOrg": 30000.0, "newbalanceOrig": 5000.0}
    body = client.post("/predict", json=big, headers=KEY).json()
    assert body["outcome"] == "review"
    assert body["decided_by"]["kind"] == "rule" and body["decided_by"]["name"] == "big-payment"
    assert body["decided_by"]["condition"] == "amount > 10000 and type == 'PAYMENT'"
    assert body["decided_by"]["values"] == {"amount": 25000.0, "type": "PAYMENT"}
    assert body["decided_by"]["summary"] == (
        "rule 'big-payment' matched: amount > 10000 and type == 'PAYMENT' with amount=25000, type='PAYMENT'"
    )
    assert all(r["direction"] == "raises" for r in body["reasons"])
    # an approval by a rule (the model would flag it) shows only what lowers the score, with ?explain
    takeover = client.post("/predict?explain=true", json=EXAMPLE_TRANSACTION, headers=KEY).json()
    assert takeover["outcome"] == "approve" and takeover["decided_by"]["score_outcome"] in ("review", "block")
    assert takeover["decided_by"]["values"] == {"type": "TRANSFER", "score": takeover["probability"]}
    assert all(r["direction"] == "lowers" for r in takeover["reasons"])


def test_a_zero_balance_error_does_not_read_as_money_missing(local_settings: Settings, loaded: LoadedModel) -> None:
    client = _explained_api(local_settings, loaded)
    exact = {**PAYMENT, "amount": 120.0, "oldbalanceOrg": 5000.0, "newbalanceOrig": 4880.0}  # 4880 + 120 - 5000
    body = client.post("/predict?explain=true", json=exact, headers=KEY).json()
    reason = next(r for r in body["reasons"] if r["feature"] == "balance_error_orig")
    assert reason["value"] == 0.0
    assert "missing" not in reason["label"] and reason["label"] == "origin's balance fell by exactly the amount"
    for r in body["reasons"]:
        if r["feature"].startswith("type_") and r["value"] == 0.0:
            assert " is not " in r["label"]


def test_after_a_rollback_to_the_built_in_policy_the_api_decides_with_the_models_bands(
    api: tuple[TestClient, Settings],
) -> None:
    from fraudops.decisions import rollback_policy

    client, settings = api
    publish_policy(settings, {"name": "ops", "bands": {"review_at": 0.0, "block_at": None}}, "everything to review")
    assert client.post("/predict", json=PAYMENT, headers=KEY).json()["outcome"] == "review"
    rollback_policy(settings, "too many alerts", expected_from=1)  # the only version: back to the built-in
    body = client.post("/predict", json=PAYMENT, headers=KEY).json()
    assert (body["outcome"], body["decided_by"]["kind"], body["policy_version"]) == ("approve", "band", "builtin")
    info = client.get("/model", headers=KEY).json()["policy"]
    assert info["version"] == "builtin" and info["document"]["bands"] == "model"
