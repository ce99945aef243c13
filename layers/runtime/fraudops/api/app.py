"""The fraud-scoring API (FastAPI). The same app runs under Mangum in Lambda and under uvicorn locally.

Routes live here; request/response models in ``schemas``, the error shape in ``errors``, the key check
in ``deps``, key sources in ``keys``, body and content-type checks in ``middleware``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic_core import to_json

from fraudops.aggregates import AGGREGATE_NAMES, AggregateStore, aggregate_store
from fraudops.aggregates.online import response_values
from fraudops.api.deps import ApiKeyChecker
from fraudops.api.errors import error_response, install_error_handlers
from fraudops.api.keys import KeyRing
from fraudops.api.middleware import RequestGuard
from fraudops.api.schemas import (
    BatchPrediction,
    BatchRequest,
    FeedbackRequest,
    FeedbackResult,
    Health,
    ModelInfo,
    Prediction,
    Transaction,
    batch_prediction_json,
    prediction_json,
    validate_batch_rows,
)
from fraudops.core.config import Settings, get_settings
from fraudops.core.errors import ModelUnavailableError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.monitoring.capture import CaptureSink, capture_record, capture_sink, capture_time
from fraudops.serving.decide import PolicyProvider, decide_rows
from fraudops.serving.entities import row_aggregates
from fraudops.serving.provider import ModelProvider

DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


@lru_cache(maxsize=4)
def _docs_asset(name: str) -> bytes:
    """Swagger UI's files from the swagger-ui-bundle package: /docs works offline, no CDN."""
    from swagger_ui_bundle import swagger_ui_path

    return (Path(str(swagger_ui_path)) / name).read_bytes()


def _capture(
    sink: CaptureSink | None,
    request: Request,
    transactions: list[Transaction],
    probabilities: list[float],
    decisions: list[float],
    threshold: float,
    version: str,
    outcomes: list[dict[str, Any]],
) -> None:
    """One record per decision, in one write; the time is formatted once for the whole request."""
    if sink is not None:
        now = datetime.now(UTC)
        when, request_id = capture_time(now), getattr(request.state, "request_id", "-")
        records = [
            capture_record(t.as_received(), t.transaction_id, version, p, d, threshold, request_id, when, o)
            for t, p, d, o in zip(transactions, probabilities, decisions, outcomes, strict=True)
        ]
        sink.write_many(records, now)


# ``?explain=true``: read from the query string by hand (a declared Query parameter costs ~20 us per
# request in FastAPI's dependency solver, 4% of /predict) and declared in the OpenAPI document here.
EXPLAIN_PARAMETER = {
    "name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
    "description": "Reasons for every outcome (review and block outcomes always carry them).",
}  # fmt: skip
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off", ""})


def _explain(request: Request) -> bool:
    value = request.query_params.get("explain")
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise RequestValidationError(
        [
            {
                "loc": ("query", "explain"),
                "msg": "Input should be a valid boolean (true or false)",
                "type": "bool_parsing",
            }
        ]
    )


def create_app(
    settings: Settings,
    provider: ModelProvider,
    api_keys: KeyRing | list[str],
    capture: CaptureSink | None = None,
    policies: PolicyProvider | None = None,
    aggregates: AggregateStore | None = None,
) -> FastAPI:
    """``aggregates``: the entity aggregate store; None counts nothing and scores with them missing."""
    app = FastAPI(
        title="fraudops",
        version="0.1.0",
        summary="Fraud scores for PaySim-schema transactions from the Production XGBoost model.",
        description="Every route but /health and the docs needs an `x-api-key` header.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.model_provider = provider
    policies = policies or PolicyProvider(settings)
    app.state.policies = policies
    app.state.capture = capture
    app.state.aggregates = aggregates
    ring = api_keys if isinstance(api_keys, KeyRing) else KeyRing.fixed(api_keys)
    app.state.key_ring = ring
    authorized = Depends(ApiKeyChecker(ring))
    install_error_handlers(app)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Relative URLs: behind API Gateway the page lives under /<stage>/docs and so do these.
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title="fraudops API",
            swagger_js_url="docs/assets/swagger-ui-bundle.js",
            swagger_css_url="docs/assets/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in DOCS_ASSETS:
            return error_response(404, "not_found", f"no docs asset {name!r}")
        return Response(_docs_asset(name), media_type=DOCS_ASSETS[name], headers={"cache-control": "max-age=86400"})

    @app.get("/health", tags=["ops"])
    async def health() -> JSONResponse:
        """Open (no key): load balancers and smoke tests call it. Says what is wrong, never where."""
        lost = capture.lost if capture is not None else 0
        try:
            loaded = provider.get()
        except ModelUnavailableError:
            body = Health(status="unavailable", model_version=None, problem=provider.last_error, captures_lost=lost)
            return JSONResponse(status_code=503, content=body.model_dump())
        # Decisions that could not be captured (a full disk) are invisible to the monitor: say so.
        problem = provider.last_error or policies.last_error or (capture.problem() if capture is not None else None)
        body = Health(status="degraded" if problem else "ok", model_version=loaded.manifest.version, problem=problem,
                      captures_lost=lost)  # fmt: skip
        return JSONResponse(status_code=200, content=body.model_dump())

    @app.get("/model/history", dependencies=[authorized], tags=["model"])
    async def model_history(limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Every change of Production (and every kept decision), oldest first: the newest ``limit``."""
        from fraudops.production.history import read_history

        return [change.as_dict() for change in read_history(settings, limit)]

    @app.get("/model", dependencies=[authorized], tags=["model"])
    async def model_info() -> ModelInfo:
        loaded = provider.get()
        manifest, spec = loaded.manifest, loaded.model.spec
        active = policies.get()
        return ModelInfo(
            model_name=manifest.model_name,
            model_version=manifest.version,
            run_id=manifest.run_id,
            model_uri=manifest.model_uri,
            threshold=spec.threshold,
            features=list(spec.feature_names),
            metrics=manifest.metrics,
            promoted_at=manifest.promoted_at,
            decision_bands=spec.extra.get("decision_bands"),
            policy={"version": active.version, "sha256": active.policy.sha256, "document": active.policy.to_dict()},
        )

    @app.post(
        "/predict", dependencies=[authorized], tags=["model"], response_model=Prediction,
        openapi_extra={"parameters": [EXPLAIN_PARAMETER]},
    )  # fmt: skip
    async def predict(transaction: Transaction, request: Request) -> Response:
        """Returns the serialised Prediction itself: FastAPI would otherwise validate it a second time."""
        loaded = provider.get()
        model = loaded.model
        explain = _explain(request)
        row = transaction.__dict__
        aggregates = row_aggregates(app.state.aggregates, [row])[0]
        features = model.row_features({**transaction.raw(), **aggregates})
        probability = model.score_row(features)
        threshold, version = model.threshold, loaded.manifest.version
        prediction = 1.0 if probability >= threshold else 0.0
        outcome = decide_rows(model, policies.get(), [{**row, **aggregates}], [probability], explain,
                              settings.top_reasons, features)[0]  # fmt: skip
        if app.state.aggregates is not None:
            outcome["aggregates"] = response_values(aggregates)
        _capture(app.state.capture, request, [transaction], [probability], [prediction], threshold, version, [outcome])
        body = prediction_json(probability, prediction, threshold, version, transaction.transaction_id, outcome)
        return Response(to_json(body), media_type="application/json")

    @app.post(
        "/predict/batch", dependencies=[authorized], tags=["model"], response_model=BatchPrediction,
        openapi_extra={"parameters": [EXPLAIN_PARAMETER]},
    )  # fmt: skip
    async def predict_batch(batch: BatchRequest, request: Request) -> Response:
        """Scores the valid rows as columns in one call and writes the response without building a
        Prediction per row (the per-row objects cost more than the model itself at 1,000 rows). A bad
        row is answered in ``errors`` beside the others' predictions; only the request itself (not a
        list, empty, too many rows, no key) fails as a whole."""
        if len(batch.transactions) > settings.max_batch_size:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "transactions"),
                        "msg": f"at most {settings.max_batch_size} transactions per batch, "
                        f"got {len(batch.transactions)}",
                        "type": "too_long",
                    }
                ]
            )
        explain = _explain(request)
        positions, transactions, errors = validate_batch_rows(batch.transactions)
        loaded = provider.get()
        threshold, version = loaded.model.threshold, loaded.manifest.version
        probabilities: list[float] = []
        decisions: list[float] = []
        outcomes: list[dict[str, Any]] = []
        rows = [t.__dict__ for t in transactions]  # validated fields, no model_dump copy per row
        if rows:
            aggregates = row_aggregates(app.state.aggregates, rows)  # in the batch's order
            rows = [{**row, **values} for row, values in zip(rows, aggregates, strict=True)]
            columns = {name: [row[name] for row in rows] for name in (*RAW_FEATURE_COLUMNS, *AGGREGATE_NAMES)}
            probabilities = loaded.model.predict_proba(columns).tolist()
            decisions = [1.0 if p >= threshold else 0.0 for p in probabilities]
            outcomes = decide_rows(loaded.model, policies.get(), rows, probabilities, explain, settings.top_reasons)
            if app.state.aggregates is not None:
                for outcome, values in zip(outcomes, aggregates, strict=True):
                    outcome["aggregates"] = response_values(values)
            _capture(app.state.capture, request, transactions, probabilities, decisions, threshold, version, outcomes)
        ids = [row["transaction_id"] for row in rows]
        body = batch_prediction_json(probabilities, decisions, ids, threshold, version, outcomes, errors, positions,
                                     len(batch.transactions))  # fmt: skip
        return Response(body, media_type="application/json")

    @app.post("/feedback", dependencies=[authorized], tags=["monitoring"])
    async def feedback(body: FeedbackRequest) -> FeedbackResult:
        """Confirmed outcomes, days later: one durable object per request; the newest word per id wins."""
        from fraudops.monitoring.labels import store_labels

        counts = store_labels(settings, [(label.transaction_id, bool(label.is_fraud)) for label in body.labels], "api")
        return FeedbackResult(accepted=len(body.labels), **counts)

    app.add_middleware(RequestGuard, max_bytes=settings.max_body_bytes)
    return app


def build_default_app(settings: Settings | None = None) -> FastAPI:
    """The app as the Lambda handler and `fraudops serve` build it from configuration."""
    settings = settings or get_settings()
    from fraudops.store.registry import registry_alias_version

    provider = ModelProvider(settings, alias_reader=registry_alias_version)
    return create_app(
        settings,
        provider,
        KeyRing.from_settings(settings),
        capture_sink(settings),
        PolicyProvider(settings),
        aggregate_store(settings),
    )
