"""Test helpers: a real trained model without any store, and API Gateway proxy events."""

from __future__ import annotations

import base64
import json
from typing import Any

from fraudops.config import Settings
from fraudops.data import load_training_frame
from fraudops.emulation import LambdaContext
from fraudops.model import FraudModel
from fraudops.serving import LoadedModel
from fraudops.store import ServingManifest
from fraudops.training import split_out_of_time, train_model


def train_local_model(settings: Settings, version: str = "7") -> LoadedModel:
    frame = load_training_frame(settings.db_path)
    trained = train_model(split_out_of_time(frame, 0.1, 0.2), settings)
    model = FraudModel(trained.booster, trained.spec, version=version)
    manifest = ServingManifest(
        model_name=settings.model_name,
        version=version,
        run_id="run-test",
        model_uri=f"models:/{settings.model_name}/{version}",
        artifact_location="s3://bucket/models/m-test/artifacts",
        booster_sha256="0" * 64,
        threshold=trained.spec.threshold,
        feature_names=list(trained.spec.feature_names),
        metrics={"auprc": trained.holdout.auprc},
        promoted_at="2026-11-25T00:00:00+00:00",
    )
    return LoadedModel(model, manifest, etag=f'"etag-{version}"', loaded_at=0.0)


def api_gateway_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A REST API (v1) Lambda proxy event, as API Gateway sends it (fields from the AWS docs sample)."""
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    all_headers = {"content-type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                   "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443", **(headers or {})}  # fmt: skip
    if base64_body and text is not None:
        text = base64.b64encode(text.encode()).decode()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "123456",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTime": "25/Nov/2026:03:00:00 +0000",
            "path": f"/prod{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123",
            "requestTimeEpoch": 1795575600000,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest", "apiKey": (headers or {}).get("x-api-key")},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": text,
        "isBase64Encoded": base64_body,
    }


def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="fraudops-test")
