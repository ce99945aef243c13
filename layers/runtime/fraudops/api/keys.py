"""Where the API's keys come from: FRAUDOPS_API_KEYS, an SSM SecureString (read through Powertools'
``parameters`` utility) and/or the API Gateway usage plan. Never from the repo.

``KeyRing`` holds them. A key it does not know makes it re-read its sources, at most once per
``min_reload_seconds`` (a flood of bad keys cannot hammer SSM or the API Gateway control plane), so
a key added after a cold start is accepted without recycling the container, and a failed lookup at
cold start is retried instead of failing closed for the container's whole life.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fraudops.core.config import Settings

log = logging.getLogger(__name__)


def usage_plan_keys(plan_name: str | None, region: str, plan_id: str | None = None) -> list[str]:
    """The values of the enabled API keys attached to an API Gateway usage plan (the same keys API
    Gateway enforces, so the app's own check agrees with it). By id (what the template passes: one
    call, no account-wide search), or by name."""
    import boto3

    client = boto3.client("apigateway", region_name=region)
    if plan_id:
        plan_ids = [plan_id]
    else:
        plans = [p for page in client.get_paginator("get_usage_plans").paginate() for p in page.get("items", [])]
        plan_ids = [plan["id"] for plan in plans if plan.get("name") == plan_name]
        if not plan_ids:
            raise LookupError(f"no API Gateway usage plan named {plan_name!r}")
    keys: list[str] = []
    for found_id in plan_ids:
        pages = client.get_paginator("get_usage_plan_keys").paginate(usagePlanId=found_id)
        for item in (item for page in pages for item in page.get("items", [])):
            key = client.get_api_key(apiKey=item["id"], includeValue=True)
            if key.get("enabled", True) and key.get("value"):
                keys.append(str(key["value"]))
    return keys


def ssm_keys(parameter_name: str) -> list[str]:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(parameter_name, decrypt=True, force_fetch=True)
    return [key.strip() for key in str(value).split(",") if key.strip()]


def load_api_keys(settings: Settings) -> list[str]:
    """Every key the sources give; a source that cannot be read is logged and skipped (with no key at
    all the API fails closed, and the next unknown key tries again)."""
    keys = settings.api_key_values()
    if settings.api_keys_ssm_parameter:
        try:
            keys += ssm_keys(settings.api_keys_ssm_parameter)
        except Exception as error:  # botocore errors vary; the cause goes to the log, not to clients
            log.error("cannot read API keys from SSM parameter %s: %s", settings.api_keys_ssm_parameter, error)
    if settings.api_usage_plan_id or settings.api_usage_plan_name:
        plan = settings.api_usage_plan_id or settings.api_usage_plan_name
        try:
            keys += usage_plan_keys(settings.api_usage_plan_name, settings.aws_region, settings.api_usage_plan_id)
        except Exception as error:
            log.error("cannot read API keys of usage plan %s: %s", plan, error)
    return keys


class KeyRing:
    """The accepted keys, re-read on an unknown key no more often than ``min_reload_seconds``."""

    def __init__(
        self,
        loader: Callable[[], list[str]],
        min_reload_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._min_reload = min_reload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[bytes, ...] = ()
        self._loaded_at: float | None = None
        self._reload()

    @classmethod
    def fixed(cls, keys: list[str]) -> KeyRing:
        return cls(lambda: list(keys), min_reload_seconds=float("inf"))

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        static = not (settings.api_keys_ssm_parameter or settings.api_usage_plan_name or settings.api_usage_plan_id)
        return cls(lambda: load_api_keys(settings), float("inf") if static else settings.api_key_reload_seconds)

    def _reload(self) -> None:
        keys = self._loader()
        self._keys = tuple(key.encode() for key in keys)
        self._loaded_at = self._clock()

    @property
    def keys(self) -> tuple[bytes, ...]:
        return self._keys

    def reload_if_due(self) -> bool:
        """Re-read the sources unless that happened less than ``min_reload_seconds`` ago."""
        with self._lock:
            if self._loaded_at is not None and self._clock() - self._loaded_at < self._min_reload:
                return False
            self._reload()
            return True
