"""Settings for tests, the "which version is Production?" questions, and a trained, promoted, served model."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from fraudops.core.config import Settings, get_settings
from fraudops.stages.promote import production_model_version
from fraudops.store import ModelStore, read_manifest


def lake_of(db_path: Path) -> Path:
    """The lake folder holding the same rows as the SQLite file ``db_path`` (made once, beside it)."""
    lake = db_path.with_name(db_path.name + ".lake")
    if not (lake / "transactions" / "metadata").exists() and db_path.exists():
        from fraudops_dev.sqlite_io import iter_transactions

        from fraudops.lake import Lake
        from fraudops.lake.transactions import write_transaction_frames

        table = Lake(Settings(lake_uri=str(lake))).transactions
        write_transaction_frames(table, iter_transactions(db_path), source="generate")
    return lake


def fast_settings(**overrides: object) -> Settings:
    """Small, fast training settings; a ``db_path`` brings its lake (``lake_of``) unless ``lake_uri`` is given."""
    if isinstance(overrides.get("db_path"), Path) and "lake_uri" not in overrides:
        overrides["lake_uri"] = str(lake_of(overrides["db_path"]))  # type: ignore[arg-type]
    values: dict[str, object] = {
        "n_estimators": 60,
        "early_stopping_rounds": 10,
        "n_threads": 2,
        "model_refresh_seconds": 0.0,
        "promotion_floor": 0.3,
        # The tests' data has 1% fraud (conftest), 8x PaySim's share: more frauds per 1,000 than the default
        # budget of 10 flags, and the small model's top score ties over 11 per 1,000 of them.
        "alert_budget_per_1000": 40.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def production_version(settings: Settings) -> str | None:
    """The version the registry's Production alias names (None when there is none)."""
    with ModelStore(settings).session() as client:
        version = production_model_version(client, settings)
    return str(version.version) if version else None


def version_count(settings: Settings) -> int:
    with ModelStore(settings).session() as client:
        return len(client.search_model_versions(f"name='{settings.model_name}'"))


def manifest_version(settings: Settings) -> str | None:
    """The version the serving manifest names (what the API serves)."""
    manifest, _ = read_manifest(settings)
    return manifest.version if manifest else None


def train_and_promote(settings: Settings, feature_set: str = "engineered") -> str:
    """Train a version and make it Production whatever the rule says (floor 0). Returns the version."""
    from fraudops.stages.promote import run_promotion
    from fraudops.stages.train import run_training

    if settings.storage == "s3":
        from fraudops.store import ensure_bucket

        ensure_bucket(settings)
    version = run_training(settings, feature_set=feature_set).version
    anything_goes = {"promotion_floor": 0.0, "promotion_margin": -1.0, "guardrail_tolerance": 1.0}
    assert run_promotion(settings.model_copy(update=anything_goes), version).production_version == version
    return version


@contextlib.contextmanager
def live_api(settings: Settings, feature_set: str = "engineered") -> Iterator[str]:
    """A model trained and promoted into ``settings``' store, served by uvicorn on 127.0.0.1."""
    from fraudops_dev.local import free_port, serve_in_thread

    from fraudops.api import build_default_app

    train_and_promote(settings, feature_set)
    with serve_in_thread(build_default_app(settings), free_port()) as base:
        yield base


def use_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    values = {
        "FRAUDOPS_DB_PATH": str(settings.db_path),
        "FRAUDOPS_LAKE_URI": settings.lake_uri or "",
        "FRAUDOPS_STATE_DIR": str(settings.state_dir),
        "FRAUDOPS_STORAGE": settings.storage,
        "FRAUDOPS_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FRAUDOPS_REGISTRY_S3_KEY": settings.registry_s3_key or "",
        "FRAUDOPS_MODEL_BUCKET": settings.model_bucket,
        "FRAUDOPS_API_KEYS": "key-one",
        "FRAUDOPS_N_ESTIMATORS": str(settings.n_estimators),
        "FRAUDOPS_EARLY_STOPPING_ROUNDS": str(settings.early_stopping_rounds),
        "FRAUDOPS_PROMOTION_FLOOR": str(settings.promotion_floor),
        "FRAUDOPS_MODEL_REFRESH_SECONDS": "0",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def fresh_import(name: str) -> ModuleType:
    """A cold start: the module (and its app, model cache) built anew from the environment."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)
