"""The API through FastAPI's TestClient: auth, bad input (each case names the field), health states."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.api import create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.core.errors import StoreError
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

KEY = {"x-api-key": "key-one"}


@pytest.fixture(scope="module")
def api_settings(small_db: Any) -> Settings:
    return fast_settings(db_path=small_db, api_keys="key-one,key-two", max_batch_size=50, max_body_bytes=20_000)


@pytest.fixture(scope="module")
def loaded(api_settings: Settings) -> LoadedModel:
    return train_local_model(api_settings)


@pytest.fixture(scope="module")
def client(api_settings: Settings, loaded: LoadedModel) -> TestClient:
    provider = ModelProvider(api_settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    return TestClient(create_app(api_settings, provider, api_settings.api_key_values()))


def field_names(response: Any) -> list[str]:
    return [f["field"] for f in response.json()["fields"]]


def test_predict_scores_with_the_served_model(client: TestClient, loaded: LoadedModel) -> None:
    response = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 200
    body = response.json()
    expected = loaded.model.predict_one({k: v for k, v in EXAMPLE_TRANSACTION.items()})
    assert body["probability"] == pytest.approx(expected, abs=1e-9)
    assert body["prediction"] == (1.0 if expected >= loaded.model.threshold else 0.0)
    assert body["model_version"] == "7"
    assert body["threshold"] == pytest.approx(loaded.model.threshold)
    assert response.headers["x-request-id"]


def test_takeover_scores_above_a_payment(client: TestClient) -> None:
    payment = {**EXAMPLE_TRANSACTION, "type": "PAYMENT", "amount": 120.0, "oldbalanceOrg": 5000.0,
               "newbalanceOrig": 4880.0, "step": 14}  # fmt: skip
    takeover = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).json()["probability"]
    ordinary = client.post("/predict", json=payment, headers=KEY).json()["probability"]
    assert takeover > 0.5 > ordinary


def test_batch_matches_single_predictions(client: TestClient) -> None:
    rows = [EXAMPLE_TRANSACTION, {**EXAMPLE_TRANSACTION, "type": "CASH_IN", "step": 3}]
    batch = client.post("/predict/batch", json={"transactions": rows}, headers=KEY)
    assert batch.status_code == 200
    singles = [client.post("/predict", json=row, headers=KEY).json()["probability"] for row in rows]
    assert [p["probability"] for p in batch.json()["predictions"]] == pytest.approx(
        singles, abs=1e-6
    )  # single rows take the compiled fast path


@pytest.mark.parametrize("path", ["/predict", "/predict/batch", "/model"])
def test_missing_key_is_401_and_wrong_key_is_403(client: TestClient, path: str) -> None:
    method = client.get if path == "/model" else client.post
    kwargs: dict[str, Any] = {} if path == "/model" else {"json": EXAMPLE_TRANSACTION}
    missing = method(path, **kwargs)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert "x-api-key" in missing.json()["message"]
    wrong = method(path, headers={"x-api-key": "not-the-key"}, **kwargs)
    assert wrong.status_code == 403
    assert "not-the-key" not in wrong.text  # never echoed


def test_second_configured_key_works(client: TestClient) -> None:
    assert client.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "key-two"}).status_code == 200


def test_no_keys_configured_fails_closed(api_settings: Settings, loaded: LoadedModel) -> None:
    provider = ModelProvider(api_settings, loader=lambda _: loaded)
    app = create_app(api_settings, provider, api_keys=[])
    response = TestClient(app).post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 503
    assert "FRAUDOPS_API_KEYS" in response.json()["message"]


def test_health_is_open_and_model_needs_a_key(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model_version": "7", "problem": None, "captures_lost": 0}
    info = client.get("/model", headers=KEY)
    assert info.status_code == 200
    assert info.json()["model_version"] == "7"
    assert "balance_error_orig" in info.json()["features"]
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": -1.0}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"amount": 1e300}, "amount"),
        ({"type": "BITCOIN"}, "type"),
        ({"type": 3}, "type"),
        ({"step": 1.5}, "step"),
        ({"step": -1}, "step"),
        ({"step": True}, "step"),
        ({"oldbalanceOrg": None}, "oldbalanceOrg"),
        ({"newbalanceDest": [1]}, "newbalanceDest"),
        ({"isFraud": 1}, "isFraud"),
        ({"nameOrig": "C" * 65}, "nameOrig"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    response = client.post("/predict", json={**EXAMPLE_TRANSACTION, **change}, headers=KEY)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert field in field_names(response)
    assert field in response.json()["message"]


def test_missing_field_is_named(client: TestClient) -> None:
    body = {k: v for k, v in EXAMPLE_TRANSACTION.items() if k != "newbalanceOrig"}
    response = client.post("/predict", json=body, headers=KEY)
    assert response.status_code == 422
    assert field_names(response) == ["newbalanceOrig"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(client: TestClient, literal: str) -> None:
    raw = json.dumps(EXAMPLE_TRANSACTION).replace("181000.0,", f"{literal},", 1)
    response = client.post("/predict", content=raw, headers={**KEY, "content-type": "application/json"})
    assert response.status_code == 422
    assert "amount" in field_names(response)


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", '"text"', "null", "12"])
def test_malformed_or_non_object_json(client: TestClient, raw: str) -> None:
    response = client.post("/predict", content=raw, headers={**KEY, "content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"]


def test_wrong_content_type_is_a_4xx(client: TestClient) -> None:
    response = client.post("/predict", content="amount=5", headers={**KEY, "content-type": "text/plain"})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


def test_oversized_batch_and_body(client: TestClient) -> None:
    too_many = client.post("/predict/batch", json={"transactions": [EXAMPLE_TRANSACTION] * 51}, headers=KEY)
    assert too_many.status_code == 422
    assert field_names(too_many) == ["transactions"]
    assert "at most 50" in too_many.json()["message"]
    empty = client.post("/predict/batch", json={"transactions": []}, headers=KEY)
    assert empty.status_code == 422
    huge = client.post(
        "/predict", content=b"{" + b" " * 30_000 + b"}", headers={**KEY, "content-type": "application/json"}
    )
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"


def test_bad_row_in_batch_is_named_with_its_index(client: TestClient) -> None:
    # issue 27: the bad row is answered beside the good one instead of failing the request (was a 422)
    rows = [EXAMPLE_TRANSACTION, {**EXAMPLE_TRANSACTION, "amount": -5}]
    response = client.post("/predict/batch", json={"transactions": rows}, headers=KEY)
    assert response.status_code == 200
    assert [f["field"] for f in response.json()["errors"][0]["fields"]] == ["transactions.1.amount"]


def test_one_bad_row_fails_only_itself_and_the_others_are_scored(client: TestClient) -> None:
    from fraudops.api.schemas import BatchPrediction

    good = [{**EXAMPLE_TRANSACTION, "transaction_id": "t-0"}, {**EXAMPLE_TRANSACTION, "type": "CASH_IN", "step": 3}]
    rows = [good[0], {**EXAMPLE_TRANSACTION, "amount": -5, "transaction_id": "t-bad"}, "not a row",
            {**EXAMPLE_TRANSACTION, "isFraud": 1}, good[1]]  # fmt: skip
    response = client.post("/predict/batch", json={"transactions": rows}, headers=KEY)
    assert response.status_code == 200, response.text
    body = response.json()
    BatchPrediction.model_validate(body)
    alone = client.post("/predict/batch", json={"transactions": good}, headers=KEY).json()
    assert alone["errors"] == [] and len(alone["predictions"]) == 2
    assert [p is None for p in body["predictions"]] == [False, True, True, True, False]
    assert [body["predictions"][0], body["predictions"][4]] == alone["predictions"]  # the same answers
    assert [(e["index"], e.get("transaction_id")) for e in body["errors"]] == [(1, "t-bad"), (2, None), (3, None)]
    assert body["errors"][0]["message"] == "amount: Input should be greater than or equal to 0"
    assert body["errors"][0]["fields"] == [
        {"field": "transactions.1.amount", "message": "Input should be greater than or equal to 0"}
    ]
    assert body["errors"][1]["message"].startswith("row: ")
    assert [f["field"] for f in body["errors"][2]["fields"]] == ["transactions.3.isFraud"]
    every_row_bad = client.post("/predict/batch", json={"transactions": [1, {}]}, headers=KEY)
    assert every_row_bad.status_code == 200
    assert every_row_bad.json()["predictions"] == [None, None] and len(every_row_bad.json()["errors"]) == 2


@pytest.mark.parametrize(
    "body", [{"transactions": "abc"}, {"transactions": {"0": EXAMPLE_TRANSACTION}}, {}, {"rows": []}, [1]]
)
def test_a_batch_that_is_not_a_list_of_rows_is_still_a_whole_request_error(client: TestClient, body: Any) -> None:
    response = client.post("/predict/batch", json=body, headers=KEY)
    assert response.status_code == 422 and response.json()["error"] == "validation_error"
    assert response.json()["fields"]
    bad_row_no_key = client.post("/predict/batch", json={"transactions": [{"amount": -5}]})
    assert bad_row_no_key.status_code == 401


def test_the_batch_document_still_says_each_row_is_a_transaction(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    items = document["components"]["schemas"]["BatchRequest"]["properties"]["transactions"]["items"]
    assert items == {"$ref": "#/components/schemas/Transaction"}
    assert "Transaction" in document["components"]["schemas"]


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/nope", headers=KEY).status_code == 404
    wrong_method = client.get("/predict", headers=KEY)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


def test_no_model_yet_is_503_not_500(api_settings: Settings) -> None:
    provider = ModelProvider(api_settings, loader=lambda _: None)
    client = TestClient(create_app(api_settings, provider, ["key-one"]))
    response = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert response.status_code == 503
    assert response.json()["error"] == "model_unavailable"
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


def test_failed_refresh_keeps_serving_and_reports_on_health(api_settings: Settings, loaded: LoadedModel) -> None:
    calls = {"n": 0}

    def flaky_loader(_: Settings) -> LoadedModel:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StoreError("S3 is down")
        return loaded

    provider = ModelProvider(api_settings, loader=flaky_loader, etag_reader=lambda _: '"changed"')
    client = TestClient(create_app(api_settings, provider, ["key-one"]))
    assert client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY).status_code == 200
    again = client.post("/predict", json=EXAMPLE_TRANSACTION, headers=KEY)
    assert again.status_code == 200
    assert again.json()["model_version"] == "7"
    health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert "S3 is down" in health["problem"]


def test_probability_is_finite(client: TestClient) -> None:
    zeros = {**EXAMPLE_TRANSACTION, "amount": 0.0, "oldbalanceOrg": 0.0}
    body = client.post("/predict", json=zeros, headers=KEY).json()
    assert math.isfinite(body["probability"]) and 0.0 <= body["probability"] <= 1.0


def test_an_empty_unknown_key_is_still_named(client: TestClient) -> None:
    """Found by the schemathesis fuzz run: {"": 0} used to be reported with an empty field name."""
    response = client.post("/predict", json={**EXAMPLE_TRANSACTION, "": 0}, headers=KEY)
    assert response.status_code == 422
    assert field_names(response) == ['""']


# --- issue 8: rough edges and users of the original project ------------------------------------------------


def test_wrong_content_type_is_415_and_named(client: TestClient) -> None:
    response = client.post("/predict", content="amount=5", headers={**KEY, "content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert field_names(response) == ["content-type"] and "application/json" in response.json()["message"]
    form = client.post("/predict", data={"amount": "5"}, headers=KEY)  # what `curl -d` sends
    assert form.status_code == 415


@pytest.mark.parametrize(
    "raw", [b'{"step": "\xff\xfe"}', b"[" * 5000 + b"]" * 5000], ids=["invalid-utf8", "deep-nesting"]
)
def test_undecodable_bodies_are_422_naming_the_body(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={**KEY, "content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert field_names(response) == ["body"]


def test_truncated_body_names_the_body_not_an_offset(client: TestClient) -> None:
    raw = json.dumps(EXAMPLE_TRANSACTION)[:40]
    response = client.post("/predict", content=raw, headers={**KEY, "content-type": "application/json"})
    assert response.status_code == 422
    assert field_names(response) == ["body"]
    assert "at character" in response.json()["fields"][0]["message"]


def test_single_and_batch_give_the_same_probability(client: TestClient) -> None:
    rows = [EXAMPLE_TRANSACTION, {**EXAMPLE_TRANSACTION, "type": "PAYMENT", "amount": 12.34, "newbalanceOrig": 5.0}]
    batch = client.post("/predict/batch", json={"transactions": rows}, headers=KEY).json()["predictions"]
    for row, in_batch in zip(rows, batch, strict=True):
        single = client.post("/predict", json=row, headers=KEY).json()
        assert single["probability"] == in_batch["probability"]  # exactly, not to the 7th digit


def test_original_project_request_gets_an_explanation(client: TestClient) -> None:
    old = {"amount": 0.4, "step": 50, "TRANSFER": 1, "PAYMENT": 0, "CASH_OUT": 0, "DEBIT": 0}
    response = client.post("/predict", json=old, headers=KEY)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "original project" in message and "`type`" in message and "oldbalanceOrg" in message
    assert "Coming from the original project" in message and "unscaled" in message


def test_docs_work_offline_and_under_a_stage_prefix(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert "url: 'openapi.json'" in page.text or '"openapi.json"' in page.text  # relative: /<stage>/openapi.json
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000
    assert client.get("/docs/assets/other.js").status_code == 404


def test_health_never_shows_internal_locations(api_settings: Settings) -> None:
    def broken(_: Settings) -> LoadedModel:
        raise StoreError("cannot read s3://fraudops-models-123/mlflow/serving/x.json at /tmp/fraudops/cache: denied")

    client = TestClient(create_app(api_settings, ModelProvider(api_settings, loader=broken), ["key-one"]))
    problem = client.get("/health").json()["problem"]
    assert "s3://" not in problem and "/tmp" not in problem and "fraudops-models-123" not in problem
    assert problem.startswith("StoreError") and "denied" in problem


OUTCOME_FIELDS = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(["approve", "review", "block"]),
        "decided_by": st.fixed_dictionaries(
            {"kind": st.sampled_from(["list", "rule", "band"]), "name": st.text(min_size=1, max_size=10)}
        ),
        "policy_version": st.sampled_from(["builtin", "3"]),
    },
    optional={
        "reasons": st.lists(
            st.fixed_dictionaries(
                {
                    "feature": st.just("amount"),
                    "label": st.just("amount"),
                    "value": st.floats(0, 1e6),
                    "contribution": st.floats(-3, 3).filter(bool),
                    "direction": st.just("raises"),
                },
                optional={"field": st.just("amount"), "field_value": st.floats(0, 1e6)},
            ),
            max_size=3,
        )
    },
)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0, 1), st.one_of(st.none(), st.text(min_size=1, max_size=20)), OUTCOME_FIELDS),
        min_size=1,
        max_size=50,
    ),
    threshold=st.floats(0, 1),
)
def test_the_batch_response_writer_gives_the_schemas_document(
    rows: list[tuple[float, str | None, dict[str, Any]]], threshold: float
) -> None:
    from fraudops.api.schemas import BatchPrediction, Prediction, batch_prediction_json

    probabilities = [p for p, _, _ in rows]
    decisions = [1.0 if p >= threshold else 0.0 for p in probabilities]
    ids = [i for _, i, _ in rows]
    order = ("outcome", "decided_by", "policy_version", "reasons")  # as decisions.serving writes them
    outcomes = [{key: o[key] for key in order if key in o} for _, _, o in rows]
    written = batch_prediction_json(probabilities, decisions, ids, threshold, "4", outcomes)
    expected = BatchPrediction(
        predictions=[Prediction(probability=p, prediction=d, threshold=threshold, model_version="4", transaction_id=i,
                                **o)
                     for p, d, i, o in zip(probabilities, decisions, ids, outcomes, strict=True)],
        model_version="4",
    ).model_dump_json(exclude_none=True)  # fmt: skip
    assert json.loads(written) == json.loads(expected)
    assert list(json.loads(written)["predictions"][0]) == list(json.loads(expected)["predictions"][0])


def test_the_batch_response_writer_puts_errors_where_the_schema_says() -> None:
    from fraudops.api.schemas import BatchPrediction, batch_prediction_json

    outcome = {"outcome": "approve", "decided_by": {"kind": "band", "name": "approve"}, "policy_version": "builtin"}
    error = {"index": 1, "message": "amount: bad", "fields": [{"field": "transactions.1.amount", "message": "bad"}]}
    written = json.loads(batch_prediction_json([0.1, 0.2], [0.0, 0.0], [None, "b"], 0.5, "4", [outcome, outcome],
                                               [error], [0, 2], 3))  # fmt: skip
    assert [p and p["probability"] for p in written["predictions"]] == [0.1, None, 0.2]
    assert written["errors"] == [error]
    assert written == json.loads(BatchPrediction.model_validate(written).model_dump_json(exclude_none=True))
