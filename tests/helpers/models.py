"""A real trained model, loaded as the API would hold it, without any store."""

from __future__ import annotations

import os

import xgboost as xgb
from fraudops_dev.sqlite_io import load_training_frame

from fraudops.core.config import Settings
from fraudops.model.features import FeatureSpec
from fraudops.serving.provider import LoadedModel
from fraudops.serving.served import ServedModel
from fraudops.serving.treecompiler import compile_booster
from fraudops.store import ServingManifest
from fraudops.training.dataset import split_out_of_time
from fraudops.training.fit import train_model


def served(booster: xgb.Booster, spec: FeatureSpec, version: str = "7", compiled: bool = True) -> ServedModel:
    """As the API holds a promoted model: verified compiled trees, the booster through XGBoost's C library."""
    raw = bytes(booster.save_raw("ubj"))
    return ServedModel(spec, version, compile_booster(booster) if compiled else None, raw)


# Settings that training never reads: tests vary them around one model (its keys and where they come from,
# its state folder, request limits, refresh intervals). Every other setting, the data file's size and time
# and the version are the key of the model trained for them (_TRAINED).
NOT_READ_BY_TRAINING = {"state_dir", "max_batch_size", "max_body_bytes", "model_refresh_seconds"}
_TRAINED: dict[str, LoadedModel] = {}


def _training_key(settings: Settings, version: str) -> str:
    fields = {
        name: value
        for name, value in settings.model_dump().items()
        if name not in NOT_READ_BY_TRAINING and not name.startswith("api_")
    }
    data = os.stat(settings.db_path)
    return repr((sorted(fields.items(), key=str), data.st_size, data.st_mtime_ns, version))


def train_local_model(settings: Settings, version: str = "7") -> LoadedModel:
    """A model trained on ``settings.db_path``, once per process for the same training inputs: a dozen
    tests serve "a real model" and only read it (LoadedModel is frozen), so they share one training."""
    key = _training_key(settings, version)
    if key not in _TRAINED:
        _TRAINED[key] = _train_local_model(settings, version)
    return _TRAINED[key]


def _train_local_model(settings: Settings, version: str) -> LoadedModel:
    frame = load_training_frame(settings.db_path)
    trained = train_model(split_out_of_time(frame, 0.1, 0.2), settings)
    model = served(trained.booster, trained.spec, version)
    manifest = ServingManifest(
        model_name=settings.model_name,
        version=version,
        run_id="run-test",
        model_uri=f"models:/{settings.model_name}/{version}",
        artifact_location="s3://bucket/models/m-test/artifacts",
        booster_sha256="0" * 64,
        spec_sha256="0" * 64,
        metrics={"auprc": trained.holdout.auprc},
        promoted_at="2026-11-25T00:00:00+00:00",
    )
    return LoadedModel(model, manifest, etag=f'"etag-{version}"', loaded_at=0.0)
