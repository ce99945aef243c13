"""Route dependencies: the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Security
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudops.api.keys import KeyRing

API_KEY_HEADER = "x-api-key"

# Declares the scheme in the OpenAPI document ("Authorize" in /docs); the check itself is below.
_API_KEY_HEADER = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


def _matches(presented: bytes, keys: tuple[bytes, ...]) -> bool:
    matched = False
    for key in keys:  # no early exit: timing does not reveal which key, or how much, matched
        matched |= hmac.compare_digest(presented, key)
    return matched


class ApiKeyChecker:
    """Accepts a request when its x-api-key equals one accepted key (compared in constant time)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def __call__(self, x_api_key: Annotated[str | None, Security(_API_KEY_HEADER)] = None) -> None:
        if not x_api_key:
            if not self.ring.keys:
                self.ring.reload_if_due()
            if not self.ring.keys:
                raise StarletteHTTPException(503, "the API has no keys configured (set FRAUDOPS_API_KEYS)")
            raise StarletteHTTPException(401, f"missing API key: send it in the '{API_KEY_HEADER}' header")
        presented = x_api_key.encode()
        if _matches(presented, self.ring.keys):
            return
        # Unknown: perhaps added since the keys were read (rate-limited re-read).
        if self.ring.reload_if_due() and _matches(presented, self.ring.keys):
            return
        if not self.ring.keys:
            raise StarletteHTTPException(503, "the API has no keys configured (set FRAUDOPS_API_KEYS)")
        raise StarletteHTTPException(403, "invalid API key")
