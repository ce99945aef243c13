"""Lambda events and contexts for tests, built from the real event JSON files in ``tests/events`` (the
way the Powertools test suite loads its events)."""

from __future__ import annotations

import base64
import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from fraudops_dev.emulation import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/events/<name>``."""
    return copy.deepcopy(_load(name))


def api_gateway_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
    base64_body: bool = False,
    stage: str = "prod",
) -> dict[str, Any]:
    """A REST API (v1) Lambda proxy event for ``method path``, from the AWS sample event."""
    event = load_event("apiGatewayProxyEvent.json")
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if base64_body and text is not None:
        text = base64.b64encode(text.encode()).decode()
    all_headers = {**event["headers"], **(headers or {})}
    context = event["requestContext"]
    context |= {"httpMethod": method, "path": f"/{stage}{path}", "stage": stage}
    context["identity"]["apiKey"] = (headers or {}).get("x-api-key")
    event |= {
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "pathParameters": {"proxy": path.lstrip("/")},
        "body": text,
        "isBase64Encoded": base64_body,
    }
    return event


def lambda_context(function_name: str = "fraudops-test") -> LambdaContext:
    return LambdaContext(function_name=function_name)
