"""Property-based tests of request validation: any JSON value in any field gives 200 or a 4xx naming
that field, never a 500; every valid transaction is scored with a probability in [0, 1]."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fraudops.api import create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION, Transaction
from fraudops.core.config import Settings
from fraudops.core.schema import MAX_MONEY
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

KEY = {"x-api-key": "k"}
FIELDS = list(EXAMPLE_TRANSACTION)

money = st.floats(min_value=0, max_value=MAX_MONEY, allow_nan=False, allow_infinity=False)
valid_transactions = st.fixed_dictionaries(
    {
        "step": st.integers(min_value=0, max_value=1_000_000),
        "type": st.sampled_from(["CASH_IN", "CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER"]),
        "amount": money,
        "oldbalanceOrg": money,
        "newbalanceOrig": money,
        "oldbalanceDest": money,
        "newbalanceDest": money,
    }
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def client(small_db: Any) -> TestClient:
    api_settings: Settings = fast_settings(db_path=small_db, api_keys="k")
    loaded: LoadedModel = train_local_model(api_settings)
    provider = ModelProvider(api_settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    return TestClient(create_app(api_settings, provider, ["k"]))


def post_raw(client: TestClient, body: Any) -> Any:
    """Python's encoder writes NaN/Infinity literals, as a careless client would."""
    return client.post("/predict", content=json.dumps(body), headers={**KEY, "content-type": "application/json"})


@given(valid_transactions)
def test_valid_transactions_validate(payload: dict[str, Any]) -> None:
    transaction = Transaction.model_validate(payload)
    assert transaction.raw() == payload


@given(valid_transactions, st.sampled_from(FIELDS), json_values)
def test_model_rejects_by_field_name(payload: dict[str, Any], field: str, value: Any) -> None:
    candidate = {**payload, field: value}
    try:
        Transaction.model_validate(candidate)
    except ValidationError as error:
        assert {str(e["loc"][0]) for e in error.errors()} == {field}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_transactions)
def test_every_valid_transaction_is_scored(client: TestClient, payload: dict[str, Any]) -> None:
    response = client.post("/predict", json=payload, headers=KEY)
    assert response.status_code == 200, response.text
    probability = response.json()["probability"]
    assert math.isfinite(probability) and 0.0 <= probability <= 1.0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(valid_transactions, st.sampled_from(FIELDS), json_values)
def test_any_value_in_any_field_is_200_or_422_naming_it(
    client: TestClient, payload: dict[str, Any], field: str, value: Any
) -> None:
    response = post_raw(client, {**payload, field: value})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        body = response.json()
        assert body["error"] == "validation_error"
        assert [f["field"] for f in body["fields"]] == [field]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_any_json_body_is_never_a_5xx(client: TestClient, body: Any) -> None:
    response = post_raw(client, body)
    assert response.status_code == 422
    assert response.json()["fields"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_bytes_are_never_a_5xx(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={**KEY, "content-type": "application/json"})
    assert 400 <= response.status_code < 500
