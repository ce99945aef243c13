"""The API's one error shape: ``{"error": <code>, "message": <text>, "fields": [{"field", "message"}]}``,
and the handlers that turn every failure into it (never a 500 with a trace for anything a client sends)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudops.api.schemas import ORIGINAL_PROJECT_FIELDS
from fraudops.core.errors import ModelUnavailableError

log = logging.getLogger(__name__)

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
               422: "validation_error", 503: "unavailable"}  # fmt: skip

# Where the explanation lives (the project has no fixed public address; a test checks the anchor exists).
README_ORIGINAL_PROJECT = "README.md#coming-from-the-original-project"


def error_response(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(status_code=status, content=body)


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's error location as a dotted path (``transactions.3.amount``); an empty key as ``""``."""
    parts = [str(part) if str(part) else '""' for part in loc]
    if parts and parts[0] in {"body", "header", "query", "path"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def validation_fields(errors: Any) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        message = str(error.get("msg", "invalid value"))
        loc = error.get("loc", ("body",))
        if error.get("type") == "json_invalid":
            # pydantic puts the character offset in the location; it is no field name
            offset = f" at character {loc[1]}" if len(loc) > 1 else ""
            message = f"request body is not valid JSON{offset} ({error.get('ctx', {}).get('error', 'parse error')})"
            loc = ("body",)
        fields.append({"field": field_name(loc), "message": message})
    return fields


def original_project_hint(body: Any) -> str | None:
    """A body in the original project's shape (one-hot type columns) gets an explanation, not a bare 422."""
    if isinstance(body, dict) and ORIGINAL_PROJECT_FIELDS & set(body):
        return (
            "this looks like a request for the original project's model (one-hot columns such as "
            f"{', '.join(sorted(ORIGINAL_PROJECT_FIELDS & set(body)))}); fraudops takes `type` as one of "
            "CASH_IN, CASH_OUT, DEBIT, PAYMENT, TRANSFER instead of the one-hot fields, the amount unscaled "
            "(in currency units), and the four balance fields oldbalanceOrg, newbalanceOrig, oldbalanceDest, "
            "newbalanceDest, which carry most of the fraud signal. See the README section 'Coming from the "
            f"original project': {README_ORIGINAL_PROJECT}"
        )
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = validation_fields(exc.errors())
        hint = original_project_hint(exc.body)
        if hint is not None:
            return error_response(422, "validation_error", hint, fields)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(422, "validation_error", f"invalid request: {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body": invalid UTF-8 or JSON too deeply nested to decode.
            # It is still a body that fails validation, so 422 like every other invalid body.
            message = f"request body could not be parsed: {exc.detail}"
            return error_response(422, "validation_error", message, [{"field": "body", "message": str(exc.detail)}])
        response = error_response(exc.status_code, ERROR_CODES.get(exc.status_code, "http_error"), str(exc.detail))
        if exc.status_code == 401:
            response.headers["WWW-Authenticate"] = "ApiKey"
        return response

    @app.exception_handler(ModelUnavailableError)
    async def _on_unavailable(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        response = error_response(503, "model_unavailable", f"no model to serve: {exc}")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("unhandled error (request %s)", request_id)
        return error_response(500, "internal_error", f"internal error; quote request id {request_id}")
