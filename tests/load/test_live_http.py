"""The API as a real HTTP server (uvicorn on 127.0.0.1): auth over the wire, hostile requests, a bounded
load test, and a soak with a promotion in the middle. All traffic stays on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fraudops_dev.loadtest import run_load

from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.stages.promote import run_promotion
from fraudops.stages.train import run_training
from tests.helpers.stack import fast_settings, live_api

pytestmark = pytest.mark.e2e
KEY = "live-key-0123456789"


@pytest.fixture(scope="module")
def live(small_db: Path, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = fast_settings(
        db_path=small_db,
        state_dir=tmp_path_factory.mktemp("live"),
        s3_endpoint_url=s3_endpoint,
        model_bucket=f"live-{uuid.uuid4().hex[:12]}",
        api_keys=KEY,
        model_refresh_seconds=0.5,
        max_batch_size=100,
        max_body_bytes=50_000,
    )
    with live_api(settings, feature_set="seed") as base:
        yield {"settings": settings, "port": int(base.rsplit(":", 1)[1])}


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post(
    port: int, body: Any, key: str | None = KEY, content_type: str = "application/json", path: str = "/predict"
) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type}
    if key is not None:
        headers["x-api-key"] = key
    status, _, payload = request(port, "POST", path, raw, headers)
    return status, json.loads(payload)


# --- auth over HTTP -------------------------------------------------------------------------------------


def test_every_route_but_health_and_docs_needs_a_key(live: dict[str, Any]) -> None:
    port = live["port"]
    assert request(port, "GET", "/health")[0] == 200
    assert request(port, "GET", "/docs")[0] == 200
    assert request(port, "GET", "/openapi.json")[0] == 200
    for method, path, body in (
        ("POST", "/predict", EXAMPLE_TRANSACTION),
        ("POST", "/predict/batch", {"transactions": [EXAMPLE_TRANSACTION]}),
        ("GET", "/model", None),
    ):
        raw = json.dumps(body).encode() if body else None
        missing = request(port, method, path, raw, {"content-type": "application/json"})
        wrong = request(port, method, path, raw, {"content-type": "application/json", "x-api-key": "wrong-key"})
        good = request(port, method, path, raw, {"content-type": "application/json", "x-api-key": KEY})
        assert (missing[0], wrong[0], good[0]) == (401, 403, 200), path
        assert json.loads(missing[2])["error"] == "unauthorized"
        assert json.loads(wrong[2])["error"] == "forbidden"


def test_keys_are_never_echoed_or_logged(live: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    secret = "attacker-guess-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    status, headers, payload = request(live["port"], "POST", "/predict", json.dumps(EXAMPLE_TRANSACTION).encode(),
                                       {"content-type": "application/json", "x-api-key": secret})  # fmt: skip
    assert status == 403
    assert secret not in payload.decode() and secret not in json.dumps(headers)
    assert KEY not in payload.decode()
    assert secret not in caplog.text and KEY not in caplog.text


# --- hostile requests over HTTP -------------------------------------------------------------------------

HOSTILE: list[tuple[str, bytes, str, str]] = [
    ("JSON that is not an object", b"[1, 2, 3]", "application/json", "body"),
    ("a JSON string", b'"TRANSFER"', "application/json", "body"),
    ("huge number", json.dumps({**EXAMPLE_TRANSACTION, "amount": 1e308}).encode(), "application/json", "amount"),
    ("integer overflow", json.dumps({**EXAMPLE_TRANSACTION, "step": 10**40}).encode(), "application/json", "step"),
    (
        "NaN",
        json.dumps({**EXAMPLE_TRANSACTION, "oldbalanceOrg": float("nan")}).encode(),
        "application/json",
        "oldbalanceOrg",
    ),
    (
        "Infinity",
        json.dumps({**EXAMPLE_TRANSACTION, "newbalanceDest": float("inf")}).encode(),
        "application/json",
        "newbalanceDest",
    ),
    (
        "string for a number",
        json.dumps({**EXAMPLE_TRANSACTION, "amount": "181000"}).encode(),
        "application/json",
        "amount",
    ),
    ("unknown field", json.dumps({**EXAMPLE_TRANSACTION, "isFraud": 1}).encode(), "application/json", "isFraud"),
    ("empty body", b"", "application/json", "body"),
    ("truncated JSON", b'{"step": 1, "type": "TRANS', "application/json", "body"),
    ("deeply nested", b"[" * 5000 + b"]" * 5000, "application/json", "body"),
    ("invalid UTF-8", b'{"type": "\xff\xfe"}', "application/json", "body"),
]


@pytest.mark.parametrize(("what", "raw", "content_type", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_4xx_naming_the_field(
    live: dict[str, Any], what: str, raw: bytes, content_type: str, field: str
) -> None:
    status, body = post(live["port"], raw, content_type=content_type)
    assert 400 <= status < 500, (what, status, body)
    assert body["error"] and body["message"]
    if status == 422:
        assert field in [f["field"] for f in body["fields"]] or field in body["message"], body


def test_wrong_content_type_oversized_body_and_batch_over_the_limit(live: dict[str, Any]) -> None:
    port = live["port"]
    status, body = post(port, json.dumps(EXAMPLE_TRANSACTION).encode(), content_type="text/plain")
    assert 400 <= status < 500 and body["error"]
    status, body = post(port, b'{"pad": "' + b"x" * 60_000 + b'"}')
    assert status == 413 and body["error"] == "payload_too_large"
    status, body = post(port, {"transactions": [EXAMPLE_TRANSACTION] * 101}, path="/predict/batch")
    assert status == 422 and body["fields"][0]["field"] == "transactions"


# --- load and soak --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_20000_requests_at_concurrency_32_without_errors(live: dict[str, Any]) -> None:
    body = json.dumps(EXAMPLE_TRANSACTION).encode()
    headers = {"content-type": "application/json", "x-api-key": KEY}
    result = run_load(
        "127.0.0.1", live["port"], "/predict", body, headers, requests=20_000, concurrency=32, deadline_s=240
    )
    p99 = result.summary()["p99_ms"]
    print(f"\nload: {result.requests} requests, {result.errors} errors, {result.rps:.0f} rps, p99 {p99:.1f} ms")
    assert result.requests == 20_000
    assert result.errors == 0 and result.statuses == {200: 20_000}


@pytest.mark.slow
def test_soak_with_a_promotion_in_the_middle(live: dict[str, Any]) -> None:
    """Traffic for SOAK_SECONDS (default 90); halfway through, a better model is trained and promoted.
    Zero failed requests, and every response names the version that answered (1 before, 2 after)."""
    seconds = float(os.environ.get("FRAUDOPS_SOAK_SECONDS", "90"))
    settings: Settings = live["settings"]
    body = json.dumps(EXAMPLE_TRANSACTION).encode()
    stop = time.monotonic() + seconds
    seen: list[list[tuple[float, str]]] = [[] for _ in range(4)]
    failures: list[str] = []

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", live["port"], timeout=10)
        while time.monotonic() < stop:
            try:
                connection.request(
                    "POST", "/predict", body=body, headers={"content-type": "application/json", "x-api-key": KEY}
                )
                response = connection.getresponse()
                payload = json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError) as error:
                failures.append(repr(error))
                connection = http.client.HTTPConnection("127.0.0.1", live["port"], timeout=10)
                continue
            if response.status != 200 or not payload.get("model_version"):
                failures.append(f"{response.status} {payload}")
            else:
                seen[index].append((time.monotonic(), payload["model_version"]))
            time.sleep(0.002)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 2)
    run_training(settings)  # engineered features: better than the seed model in Production
    promoted_at = time.monotonic()
    assert run_promotion(settings).promoted
    for thread in threads:
        thread.join(timeout=seconds + 30)
    responses = sorted(x for per in seen for x in per)
    print(f"\nsoak: {len(responses)} responses over {seconds:.0f}s, {len(failures)} failures")
    assert failures == []
    assert len(responses) > 100
    versions = [version for _, version in responses]
    assert set(versions) == {"1", "2"}
    switched = versions.index("2")
    assert set(versions[switched:]) == {"2"}  # once the new version answers, the old one never does again
    assert responses[switched][0] >= promoted_at - 1.0
