"""Schemathesis fuzzes the live API (uvicorn on 127.0.0.1) from its own OpenAPI document: valid and
invalid requests generated for every operation, a bounded number per operation. Zero 5xx; every error
body is JSON with an error code, a message, and (for 422) the fields it names."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from fraudops.api import create_app
from fraudops.core.config import Settings
from fraudops.serving.provider import ModelProvider
from tests.helpers.stack import fast_settings, live_api

pytestmark = pytest.mark.e2e
KEY = "fuzz-key-0123456789"
FUZZ_EXAMPLES = 400  # per operation and generation mode; bounded so CI stays fast

# The OpenAPI document the app serves (a test below checks the live one is identical).
_schema_settings = Settings(api_keys=KEY)
OPENAPI = create_app(_schema_settings, ModelProvider(_schema_settings, loader=lambda _: None), [KEY]).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=FUZZ_EXAMPLES)


@pytest.fixture(scope="module")
def live_url(small_db: Path, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = fast_settings(
        db_path=small_db,
        state_dir=tmp_path_factory.mktemp("fuzz"),
        s3_endpoint_url=s3_endpoint,
        model_bucket=f"fuzz-{uuid.uuid4().hex[:12]}",
        api_keys=KEY,
        model_refresh_seconds=60,
        max_batch_size=20,
    )
    with live_api(configured) as base:
        yield base


def test_served_openapi_document_is_the_one_fuzzed(live_url: str) -> None:
    with urllib.request.urlopen(f"{live_url}/openapi.json", timeout=10) as response:
        assert json.loads(response.read()) == OPENAPI


def assert_error_contract(response: Any) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and body.get("error") and body.get("message"), body
        if response.status_code in {400, 422}:
            assert body["fields"] and all(f["field"] for f in body["fields"]), body


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_with_a_key(case: schemathesis.Case, live_url: str) -> None:
    response = case.call(base_url=live_url, headers={"x-api-key": KEY}, timeout=10)
    assert_error_contract(response)
    if case.path in {"/predict", "/predict/batch"} and response.status_code == 200:
        body = response.json()
        version = body.get("model_version")
        assert version == "1", body


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=30)
def test_fuzz_without_a_key(case: schemathesis.Case, live_url: str) -> None:
    response = case.call(base_url=live_url, timeout=10)
    assert_error_contract(response)
    if case.path != "/health":
        # Never served without the key: 401/403 (schemathesis also invents keys), or 405/415/422 first.
        assert response.status_code in {400, 401, 403, 405, 415, 422}, response.text
