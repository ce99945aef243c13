"""Pure ASGI middleware (no per-request task or stream, unlike ``@app.middleware``): a correlation id
for every request, and the checks that need no route: body size and content type."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fraudops.api.errors import error_response

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
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if not too_large and body and content_type and not _is_json(content_type):
            response = error_response(
                415,
                "unsupported_media_type",
                f"request body must be JSON: send 'Content-Type: application/json' (got {content_type[:60]!r})",
                [{"field": "content-type", "message": f"{content_type[:60]!r} is not application/json"}],
            )
            await response(scope, receive, send_with_id)
            return
        if too_large:
            response = error_response(413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes")
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


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")
