"""The three Lambda handlers in process, with real API Gateway proxy and Step Functions event shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings, get_settings
from fraudops.core.errors import InvalidInputError
from tests.helpers.events import api_gateway_event, lambda_context
from tests.helpers.stack import fresh_import, use_settings

CONTEXT = lambda_context()


@pytest.fixture
def pipeline(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Train and promote through the handlers, as the state machine does."""
    use_settings(monkeypatch, settings)
    train = fresh_import("train_function")
    promote = fresh_import("promote_function")
    trained = train.handler({"feature_set": "engineered"}, CONTEXT)
    decision = promote.handler({"train": trained}, CONTEXT)
    yield {"trained": trained, "decision": decision}
    get_settings.cache_clear()


@pytest.mark.e2e
def test_train_then_promote_handlers(pipeline: dict[str, Any]) -> None:
    assert pipeline["trained"]["version"] == "1"
    assert pipeline["decision"]["outcome"] == "promoted"
    assert pipeline["decision"]["candidate_version"] == "1"
    json.dumps(pipeline["decision"])  # Step Functions needs JSON-serialisable output


@pytest.mark.e2e
def test_mangum_handler_serves_a_proxy_event(pipeline: dict[str, Any]) -> None:
    api = fresh_import("api_function")
    event = api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "key-one"})
    response = api.handler(event, CONTEXT)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["model_version"] == "1"
    assert 0.0 <= body["probability"] <= 1.0
    assert response["headers"]["x-request-id"] == event["requestContext"]["requestId"]

    base64_event = api_gateway_event(
        "POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "key-one"}, base64_body=True
    )
    assert api.handler(base64_event, CONTEXT)["statusCode"] == 200

    health = api.handler(api_gateway_event("GET", "/health"), CONTEXT)
    assert health["statusCode"] == 200
    assert json.loads(health["body"])["model_version"] == "1"


@pytest.mark.e2e
def test_mangum_handler_auth_and_bad_input(pipeline: dict[str, Any]) -> None:
    api = fresh_import("api_function")
    unauthorized = api.handler(api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION), CONTEXT)
    assert unauthorized["statusCode"] == 401
    forbidden = api.handler(api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "nope"}), CONTEXT)
    assert forbidden["statusCode"] == 403
    bad = api.handler(
        api_gateway_event("POST", "/predict", {**EXAMPLE_TRANSACTION, "amount": -3}, {"x-api-key": "key-one"}), CONTEXT
    )
    assert bad["statusCode"] == 422
    assert json.loads(bad["body"])["fields"][0]["field"] == "amount"
    garbage = api.handler(
        api_gateway_event("POST", "/predict", raw_body="{oops", headers={"x-api-key": "key-one"}), CONTEXT
    )
    assert garbage["statusCode"] == 422


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "text",
        {},
        {"requestContext": {}},
        {"requestContext": {}, "httpMethod": "GET"},
        {"version": "2.0", "requestContext": {}},
        {"requestContext": {}, "httpMethod": "POST", "path": "/predict", "body": 5},
    ],
)
def test_api_handler_answers_malformed_events_with_400(
    event: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    api = fresh_import("api_function")
    response = api.handler(event, CONTEXT)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "bad_event"
    get_settings.cache_clear()


def test_cold_start_without_a_model_answers_503(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, settings)
    api = fresh_import("api_function")
    response = api.handler(
        api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "key-one"}), CONTEXT
    )
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "model_unavailable"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([1, 2], "JSON object"),
        ({"feature_set": "everything"}, "feature_set"),
        ({"feature_set": 3}, "feature_set"),
    ],
)
def test_train_handler_rejects_bad_input(
    event: Any, message: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    train = fresh_import("train_function")
    with pytest.raises(InvalidInputError, match=message):
        train.handler(event, CONTEXT)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("3", "JSON object"),
        ({"version": "latest"}, "version"),
        ({"version": True}, "version"),
        ({"train": {"version": [1]}}, "version"),
    ],
)
def test_promote_handler_rejects_bad_input(
    event: Any, message: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings(monkeypatch, settings)
    promote = fresh_import("promote_function")
    with pytest.raises(InvalidInputError, match=message):
        promote.handler(event, CONTEXT)
    get_settings.cache_clear()


@pytest.mark.e2e
def test_a_lost_capture_is_a_metric_and_degrades_health(
    pipeline: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22 item 8: a decision served but not captured shows as the CapturesLost EMF metric."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # the suite turns metrics off elsewhere
    api = fresh_import("api_function")
    sink = api.app.state.capture

    def broken(line: bytes, when: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink, "_write_line", broken)
    capsys.readouterr()
    event = api_gateway_event("POST", "/predict/batch", {"transactions": [EXAMPLE_TRANSACTION] * 3},
                              {"x-api-key": "key-one"})  # fmt: skip
    assert api.handler(event, CONTEXT)["statusCode"] == 200
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(doc.get("CapturesLost") in (3.0, [3.0]) for doc in emf), emf
    health = json.loads(api.handler(api_gateway_event("GET", "/health"), CONTEXT)["body"])
    assert health["status"] == "degraded" and health["captures_lost"] == 3
    assert "No space left on device" in health["problem"]


@pytest.mark.e2e
def test_batch_scoring_steps_in_s3_mode_as_step_functions_runs_them(
    pipeline: dict[str, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """batch_score.asl.json's steps on the AWS code path: PinModel (the promote handler's "pin"), then one
    Distributed Map child per batch (the batch handler, writing its part to the data bucket). The calls
    Step Functions makes itself are recorded from AWS's documentation, so the IAM check covers the
    BatchScore function's and the state machine's roles (tests/helpers/aws_calls.py)."""
    import boto3

    from tests.helpers.aws_calls import record_batch_run

    data_bucket = f"data-{settings.model_bucket}"
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket=data_bucket)
    # The data bucket, as the template names it to the functions (the check maps buckets by these URIs).
    monkeypatch.setenv("FRAUDOPS_SPARK_OUTPUT_URI", f"s3://{data_bucket}/spark-training")
    header = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest",
              "oldbalanceDest", "newbalanceDest"]  # fmt: skip
    rows = [dict(zip(header, ["1", "TRANSFER", f"{100.0 + i}", f"C{i}", "500.0", "0.0", f"C9{i}", "0.0", "0.0"],
                     strict=True)) for i in range(5)]  # fmt: skip
    rows.append({**rows[0], "amount": "not a number"})
    lines = [",".join(header), *(",".join(row[name] for name in header) for row in rows)]
    s3.put_object(Bucket=data_bucket, Key="batch/input/day.csv", Body="\n".join(lines).encode())  # the user's file
    execution = "exec-1"
    output = f"s3://{data_bucket}/batch/results/{execution}"

    pinned = fresh_import("promote_function").handler({"action": "pin", "version": None}, CONTEXT)
    batch = fresh_import("batch_function")
    items = [{"index": index, "row": row} for index, row in enumerate(rows)]
    batch_input = {"model": pinned["model"], "policy": pinned["policy"], "format": "csv", "output": output}
    results = [batch.handler({"Items": part, "BatchInput": batch_input}, CONTEXT) for part in (items[:3], items[3:])]
    record_batch_run(data_bucket, "batch/input/day.csv", data_bucket, execution, batches=len(results))

    assert [r["scored"] for r in results] == [3, 2] and [r["rejected"] for r in results] == [0, 1]
    written = s3.list_objects_v2(Bucket=data_bucket, Prefix=f"batch/results/{execution}/")["Contents"]
    assert sorted(o["Key"].split(f"{execution}/")[1] for o in written) == [
        "errors/part-000000000003.csv", "results/part-000000000000.csv", "results/part-000000000003.csv"]  # fmt: skip
