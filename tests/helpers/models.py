"""A real trained model, loaded as the API would hold it, without any store."""

from __future__ import annotations

from fraudops.config import Settings
from fraudops.data import load_training_frame, split_out_of_time
from fraudops.model import FraudModel
from fraudops.serving import LoadedModel
from fraudops.store import ServingManifest
from fraudops.training import train_model


def train_local_model(settings: Settings, version: str = "7") -> LoadedModel:
    frame = load_training_frame(settings.db_path)
    trained = train_model(split_out_of_time(frame, 0.1, 0.2), settings)
    model = FraudModel(trained.booster, trained.spec, version=version, fast_path=True)
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
