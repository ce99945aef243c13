"""Keeps the Production model in memory for the API: fetched once per container, re-checked at most every
``model_refresh_seconds`` (one HEAD request), swapped only for a model that loads and verifies.

A refresh that fails keeps the model already loaded and records the problem for ``/health``; with no
model at all the API answers 503 instead of crashing, so a broken store never causes a crash loop.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fraudops.core.config import Settings
from fraudops.core.errors import ArtifactMissingError, ModelLoadError, ModelUnavailableError, StoreError
from fraudops.model.features import FeatureSpec
from fraudops.serving.compiled import CompiledTrees
from fraudops.serving.served import ServedModel
from fraudops.store import ServingManifest, blob_store, manifest_etag, read_manifest, read_uri, sha256_hex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    model: ServedModel
    manifest: ServingManifest
    etag: str
    loaded_at: float


def _verified(raw: bytes, expected: str, what: str, version: str) -> bytes:
    if sha256_hex(raw) != expected:
        raise ModelLoadError(f"{what} of version {version} does not match the checksum recorded at promotion")
    return raw


def served_model(settings: Settings, manifest: ServingManifest, booster_threads: int = 1) -> ServedModel:
    """The model a manifest names: spec, compiled trees (if promotion published them) and booster, every
    file checked against the manifest's checksum."""
    spec_raw = _verified(read_uri(settings, manifest.spec_uri), manifest.spec_sha256, "feature spec", manifest.version)
    try:
        spec = FeatureSpec.from_dict(json.loads(spec_raw))
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"feature spec of version {manifest.version} is not valid: {error}") from error
    compiled = None
    if manifest.compiled_key and manifest.compiled_sha256:
        raw = blob_store(settings).get(manifest.compiled_key)
        compiled = CompiledTrees.from_bytes(
            _verified(raw, manifest.compiled_sha256, "compiled trees", manifest.version)
        )

    booster = _verified(read_uri(settings, manifest.booster_uri), manifest.booster_sha256, "booster", manifest.version)
    return ServedModel(spec, manifest.version, compiled, booster, booster_threads)


def load_from_manifest(settings: Settings) -> LoadedModel | None:
    """The Production model, verified against the checksums promotion recorded; None if none promoted."""
    manifest, etag = read_manifest(settings)
    if manifest is None or etag is None:
        return None
    return LoadedModel(served_model(settings, manifest), manifest, etag, time.time())


_LOCATIONS = re.compile(r"(?:[a-z][a-z0-9+.-]*://\S+|(?<![\w.])/[^\s:,;'\"]+|\bbucket \S+)")


def public_problem(error: Exception) -> str:
    """What /health may say about a failure: its kind and gist, never a URL, path or bucket name
    (the unauthenticated endpoint must not map the internals). The full error goes to the log."""
    if isinstance(error, ArtifactMissingError):
        return "ArtifactMissingError: a file of the Production model is missing from the store"
    lines = str(error).splitlines()
    message = _LOCATIONS.sub("<location>", lines[0]) if lines else ""
    return f"{type(error).__name__}: {message}"[:300]


class ModelProvider:
    """Thread-safe holder of the served model (uvicorn may call from several threads)."""

    def __init__(
        self,
        settings: Settings,
        loader: Callable[[Settings], LoadedModel | None] = load_from_manifest,
        etag_reader: Callable[[Settings], str | None] = manifest_etag,
        clock: Callable[[], float] = time.monotonic,
        alias_reader: Callable[[Settings], str | None] | None = None,
    ) -> None:
        self._settings = settings
        self._loader = loader
        self._etag_reader = etag_reader
        self._clock = clock
        self._current: LoadedModel | None = None
        self._last_check: float | None = None
        self._last_error: str | None = None
        self._alias_reader = alias_reader
        self._alias_problem: str | None = None
        self._lock = threading.Lock()

    @property
    def last_error(self) -> str | None:
        """What /health reports: a failed refresh, or a served version the registry no longer names."""
        return self._last_error or self._alias_problem

    def get(self) -> LoadedModel:
        """The model to answer with; refreshes when the staleness bound has passed."""
        if self._refresh_due():
            with self._lock:
                if self._refresh_due():  # another thread may have refreshed while we waited
                    self._refresh()
        if self._current is None:
            raise ModelUnavailableError(self._last_error or "no model has been promoted to Production yet")
        return self._current

    def _refresh_due(self) -> bool:
        if self._last_check is None:
            return True
        # Without a model, retry sooner than the staleness bound, but not on every request.
        interval = self._settings.model_refresh_seconds
        if self._current is None:
            interval = min(5.0, interval)
        return self._clock() - self._last_check >= interval

    def _refresh(self) -> None:
        self._last_check = self._clock()
        self._load_if_moved()
        self._check_alias()

    def _check_alias(self) -> None:
        """The registry's alias is the source of truth; say so when what we serve differs from it."""
        if self._alias_reader is None or self._current is None:
            return
        try:
            alias = self._alias_reader(self._settings)
        except Exception as error:  # an unreadable registry is not a serving problem: log it only
            log.warning("cannot read the registry's Production alias: %s", error)
            return
        served = self._current.manifest.version
        self._alias_problem = None
        if alias is not None and alias != served:
            self._alias_problem = (
                f"the registry's '{self._settings.production_alias}' alias names version {alias}, but version "
                f"{served} is served: run `fraudops reconcile` (or the promote function with action reconcile)"
            )

    def _load_if_moved(self) -> None:
        try:
            if self._current is not None and self._etag_reader(self._settings) == self._current.etag:
                self._last_error = None
                return
            loaded = self._loader(self._settings)
        except (StoreError, ModelLoadError, OSError) as error:
            self._last_error = public_problem(error)
            log.error("model refresh failed; keeping version %s: %s", self.version or "none", error)
            return
        except Exception as error:  # botocore raises many kinds; never let a refresh crash a request
            self._last_error = public_problem(error)
            log.exception("model refresh failed unexpectedly")
            return
        if loaded is None:
            self._last_error = None if self._current else "no model has been promoted to Production yet"
            return
        if self._current is None or loaded.manifest.version != self._current.manifest.version:
            log.info("serving model version %s", loaded.manifest.version)
        self._current = loaded
        self._last_error = None

    @property
    def version(self) -> str | None:
        return self._current.manifest.version if self._current else None
