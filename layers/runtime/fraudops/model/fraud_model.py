"""A trained fraud model: an XGBoost booster plus the feature spec it was trained with (training,
promotion, the pyfunc wrapper; the API holds ``served.ServedModel`` instead, without xgboost).

Every path that scores a transaction goes through the same feature code and the same booster file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xgboost as xgb

from fraudops.core.errors import ModelLoadError
from fraudops.model.artifacts import BOOSTER_ARTIFACT, SPEC_ARTIFACT
from fraudops.model.features import Columns, FeatureMismatchError, FeatureSpec, build_features

__all__ = ["BOOSTER_ARTIFACT", "SPEC_ARTIFACT", "FraudModel"]


class FraudModel:
    def __init__(self, booster: xgb.Booster, spec: FeatureSpec, version: str | None = None) -> None:
        spec.validate()
        if booster.num_features() != len(spec.feature_names):
            raise FeatureMismatchError(
                f"booster expects {booster.num_features()} features, spec lists {len(spec.feature_names)}"
            )
        self.booster = booster
        self.spec = spec
        self.version = version

    @classmethod
    def from_bytes(
        cls,
        booster_raw: bytes,
        spec_raw: bytes,
        version: str | None = None,
        n_threads: int = 1,
    ) -> FraudModel:
        try:
            spec = FeatureSpec.from_dict(json.loads(spec_raw))
        except ValueError as error:
            raise ModelLoadError(f"feature spec is not valid JSON: {error}") from error
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(booster_raw))
        except xgb.core.XGBoostError as error:
            raise ModelLoadError(f"booster artifact cannot be loaded: {str(error).splitlines()[0]}") from error
        booster.set_param({"nthread": n_threads})
        try:
            return cls(booster, spec, version)
        except FeatureMismatchError as error:
            raise ModelLoadError(str(error)) from error

    @classmethod
    def from_dir(cls, directory: Path, version: str | None = None, n_threads: int = 1) -> FraudModel:
        try:
            booster_raw = (directory / BOOSTER_ARTIFACT).read_bytes()
            spec_raw = (directory / SPEC_ARTIFACT).read_bytes()
        except OSError as error:
            raise ModelLoadError(f"model artifact missing: {error}") from error
        return cls.from_bytes(booster_raw, spec_raw, version, n_threads)

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    def features(self, columns: Columns) -> np.ndarray:
        return build_features(columns, self.spec.feature_names)

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Fraud probability per row of raw columns."""
        matrix = self.features(columns)
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64).reshape(-1)
