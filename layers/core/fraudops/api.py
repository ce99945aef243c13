"""The fraud-scoring API (FastAPI). The same app runs under Mangum in Lambda and under uvicorn locally.

Every error is JSON: ``{"error": <code>, "message": <text>, "fields": [{"field", "message"}...]}``.
A malformed request is a 4xx naming the field; nothing a client sends can produce a 500 with a trace.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, Literal, cast

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudops.config import Settings
from fraudops.schema import RAW_FEATURE_COLUMNS
from fraudops.serving import ModelProvider, ModelUnavailableError

log = logging.getLogger(__name__)

MAX_MONEY = 1e12  # PaySim's largest balance is ~3.6e8; anything near float32's range is an input error
MAX_STEP = 1_000_000
API_KEY_HEADER = "x-api-key"

Money = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
TransactionType = Literal["CASH_IN", "CASH_OUT", "DEBIT", "PAYMENT", "TRANSFER"]

EXAMPLE_TRANSACTION: dict[str, Any] = {
    "step": 212,
    "type": "TRANSFER",
    "amount": 181000.0,
    "oldbalanceOrg": 181000.0,
    "newbalanceOrig": 0.0,
    "oldbalanceDest": 0.0,
    "newbalanceDest": 0.0,
}


class Transaction(BaseModel):
    """One transaction as the payment system sees it (PaySim field names). Balances are after/before
    the transaction as PaySim records them; labels (isFraud) are not inputs."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [cast(JsonDict, EXAMPLE_TRANSACTION)]}
    )

    step: int = Field(ge=0, le=MAX_STEP, description="Hour since the start of the simulation (1 step = 1 h).")
    type: TransactionType
    amount: Money
    oldbalanceOrg: Money
    newbalanceOrig: Money
    oldbalanceDest: Money
    newbalanceDest: Money
    nameOrig: str | None = Field(None, max_length=64, description="Origin account id (not used for scoring).")
    nameDest: str | None = Field(None, max_length=64, description="Destination account id (not used).")

    def raw(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RAW_FEATURE_COLUMNS}


class Prediction(BaseModel):
    probability: float = Field(description="Model fraud score in [0, 1] (class-weighted training).")
    prediction: float = Field(description="1.0 when probability >= the model's threshold, else 0.0.")
    threshold: float
    model_version: str


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    transactions: list[Transaction] = Field(min_length=1)


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


class ModelInfo(BaseModel):
    model_name: str
    version: str
    run_id: str
    model_uri: str
    threshold: float
    features: list[str]
    metrics: dict[str, float]
    promoted_at: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    model_version: str | None
    problem: str | None = None


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(status_code=status, content=body)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's error location as a dotted path (``transactions.3.amount``); an empty key as ``""``."""
    parts = [str(part) if str(part) else '""' for part in loc]
    if parts and parts[0] in {"body", "header", "query", "path"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _validation_fields(errors: Any) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            message = f"request body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
        fields.append({"field": _field_name(error.get("loc", ("body",))), "message": message})
    return fields


# Declares the scheme in the OpenAPI document ("Authorize" in /docs); the check itself is below.
_API_KEY_HEADER = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


class ApiKeyChecker:
    """Accepts a request when its x-api-key equals one configured key (compared in constant time)."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    async def __call__(self, x_api_key: Annotated[str | None, Security(_API_KEY_HEADER)] = None) -> None:
        if not self._keys:
            raise StarletteHTTPException(503, "the API has no keys configured (set FRAUDOPS_API_KEYS)")
        if not x_api_key:
            raise StarletteHTTPException(401, f"missing API key: send it in the '{API_KEY_HEADER}' header")
        presented = x_api_key.encode()
        matched = False
        for key in self._keys:  # no early exit: timing does not reveal which key, or how much, matched
            matched |= hmac.compare_digest(presented, key)
        if not matched:
            raise StarletteHTTPException(403, "invalid API key")


_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large", 415: "unsupported_media_type", 503: "unavailable"}  # fmt: skip


_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _request_id(scope: MutableMapping[str, Any], headers: dict[bytes, bytes]) -> str:
    """The caller's x-request-id if it is safe to echo, else API Gateway's request id, else a new one."""
    supplied = headers.get(b"x-request-id", b"").decode("latin-1")
    if _SAFE_REQUEST_ID.fullmatch(supplied):
        return supplied
    event = scope.get("aws.event")
    if isinstance(event, dict) and isinstance(event.get("requestContext"), dict):
        context_id = event["requestContext"].get("requestId")
        if isinstance(context_id, str) and _SAFE_REQUEST_ID.fullmatch(context_id):
            return context_id
    return uuid.uuid4().hex


class RequestGuard:
    """Pure ASGI middleware (no per-request task or stream, unlike ``@app.middleware``): gives every
    request a correlation id (``request.state.request_id``, echoed as ``x-request-id``) and refuses
    bodies over ``max_bytes`` with 413 before they are parsed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = _request_id(scope, headers)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        declared = headers.get(b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > self.max_bytes
        body = b""
        if not too_large:
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                more = bool(message.get("more_body"))
                if len(body) > self.max_bytes:
                    too_large = True
                    break
        if too_large:
            response = _error(413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes")
            await response(scope, receive, send_with_id)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send_with_id)


def create_app(settings: Settings, provider: ModelProvider, api_keys: list[str]) -> FastAPI:
    app = FastAPI(
        title="fraudops",
        version="0.1.0",
        summary="Fraud scores for PaySim-schema transactions from the Production XGBoost model.",
        description="Every route but /health and the docs needs an `x-api-key` header.",
    )
    app.state.model_provider = provider
    require_key = ApiKeyChecker(api_keys)
    Authorized = Depends(require_key)

    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_fields(exc.errors())
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return _error(422, "validation_error", f"invalid request: {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _ERROR_CODES.get(exc.status_code, "http_error")
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (a body it cannot even decode)
            message = f"request body could not be parsed: {exc.detail}"
            return _error(400, code, message, [{"field": "body", "message": str(exc.detail)}])
        response = _error(exc.status_code, code, str(exc.detail))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "ApiKey"
        return response

    @app.exception_handler(ModelUnavailableError)
    async def _on_unavailable(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        response = _error(503, "model_unavailable", f"no model to serve: {exc}")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("unhandled error (request %s)", request_id)
        return _error(500, "internal_error", f"internal error; quote request id {request_id}")

    def _prediction(probability: float, threshold: float, version: str) -> Prediction:
        return Prediction(
            probability=probability,
            prediction=1.0 if probability >= threshold else 0.0,
            threshold=threshold,
            model_version=version,
        )

    @app.get("/health", tags=["ops"])
    async def health() -> JSONResponse:
        """Open (no key): load balancers and `sam` smoke tests call it."""
        try:
            loaded = provider.get()
        except ModelUnavailableError as error:
            body = Health(status="unavailable", model_version=None, problem=str(error))
            return JSONResponse(status_code=503, content=body.model_dump())
        problem = provider.last_error
        body = Health(status="degraded" if problem else "ok", model_version=loaded.manifest.version, problem=problem)
        return JSONResponse(status_code=200, content=body.model_dump())

    @app.get("/model", dependencies=[Authorized], tags=["model"])
    async def model_info() -> ModelInfo:
        manifest = provider.get().manifest
        return ModelInfo(
            model_name=manifest.model_name,
            version=manifest.version,
            run_id=manifest.run_id,
            model_uri=manifest.model_uri,
            threshold=manifest.threshold,
            features=manifest.feature_names,
            metrics=manifest.metrics,
            promoted_at=manifest.promoted_at,
        )

    @app.post("/predict", dependencies=[Authorized], tags=["model"], response_model=Prediction)
    async def predict(transaction: Transaction) -> Response:
        """Returns the serialised Prediction itself: FastAPI would otherwise validate it a second time."""
        loaded = provider.get()
        probability = loaded.model.predict_one(transaction.raw())
        prediction = _prediction(probability, loaded.model.threshold, loaded.manifest.version)
        return Response(prediction.model_dump_json(), media_type="application/json")

    @app.post("/predict/batch", dependencies=[Authorized], tags=["model"])
    async def predict_batch(batch: BatchRequest) -> BatchPrediction:
        if len(batch.transactions) > settings.max_batch_size:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "transactions"),
                        "msg": f"at most {settings.max_batch_size} transactions per batch, got "
                        f"{len(batch.transactions)}",
                        "type": "too_long",
                    }
                ]
            )
        loaded = provider.get()
        columns = {name: [getattr(t, name) for t in batch.transactions] for name in RAW_FEATURE_COLUMNS}
        probabilities = loaded.model.predict_proba(columns)
        threshold, version = loaded.model.threshold, loaded.manifest.version
        return BatchPrediction(
            predictions=[_prediction(float(p), threshold, version) for p in probabilities],
            model_version=version,
        )

    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)
    return app


def invalid_event_response(event: Any) -> dict[str, Any] | None:
    """A 400 response for events that are not API Gateway proxy events (Mangum would raise on them)."""
    problem = None
    if not isinstance(event, dict):
        problem = f"event must be a JSON object, got {type(event).__name__}"
    elif not isinstance(event.get("requestContext"), dict):
        problem = "event has no requestContext: not an API Gateway proxy event"
    elif event.get("version") == "2.0":
        if not isinstance(event["requestContext"].get("http"), dict):
            problem = "HTTP API event has no requestContext.http"
    elif not isinstance(event.get("httpMethod"), str) or not isinstance(event.get("path"), str):
        problem = "REST API event lacks httpMethod or path"
    elif event.get("body") is not None and not isinstance(event.get("body"), str):
        problem = "event body must be a string"
    if problem is None:
        return None
    return {
        "statusCode": 400,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"error": "bad_event", "message": problem}),
        "isBase64Encoded": False,
    }


def usage_plan_keys(plan_name: str, region: str) -> list[str]:
    """The values of the enabled API keys attached to an API Gateway usage plan (the same keys API
    Gateway enforces, so the app's own check agrees with it)."""
    import boto3

    client = boto3.client("apigateway", region_name=region)
    plans = [p for page in client.get_paginator("get_usage_plans").paginate() for p in page.get("items", [])]
    matching = [plan for plan in plans if plan.get("name") == plan_name]
    if not matching:
        raise LookupError(f"no API Gateway usage plan named {plan_name!r}")
    keys: list[str] = []
    for plan in matching:
        pages = client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan["id"])
        for item in (item for page in pages for item in page.get("items", [])):
            key = client.get_api_key(apiKey=item["id"], includeValue=True)
            if key.get("enabled", True) and key.get("value"):
                keys.append(str(key["value"]))
    return keys


def load_api_keys(settings: Settings) -> list[str]:
    """Keys from FRAUDOPS_API_KEYS, an SSM SecureString and/or the usage plan; never from the repo.
    A source that cannot be read is logged and skipped: with no key at all the API fails closed."""
    keys = settings.api_key_values()
    if settings.api_keys_ssm_parameter:
        import boto3

        try:
            ssm = boto3.client("ssm", region_name=settings.aws_region)
            parameter = ssm.get_parameter(Name=settings.api_keys_ssm_parameter, WithDecryption=True)
            keys += [key.strip() for key in str(parameter["Parameter"]["Value"]).split(",") if key.strip()]
        except Exception as error:  # botocore errors vary; the cause goes to the log, not to clients
            log.error("cannot read API keys from SSM parameter %s: %s", settings.api_keys_ssm_parameter, error)
    if settings.api_usage_plan_name:
        try:
            keys += usage_plan_keys(settings.api_usage_plan_name, settings.aws_region)
        except Exception as error:
            log.error("cannot read API keys of usage plan %s: %s", settings.api_usage_plan_name, error)
    return keys


def build_default_app(settings: Settings | None = None) -> FastAPI:
    """The app as the Lambda handler and `fraudops serve` build it from configuration."""
    from fraudops.config import get_settings

    settings = settings or get_settings()
    return create_app(settings, ModelProvider(settings), load_api_keys(settings))


__all__ = ["Transaction", "build_default_app", "create_app", "invalid_event_response"]
