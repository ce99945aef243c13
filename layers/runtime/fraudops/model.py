"""A trained fraud model: an XGBoost booster plus the feature spec it was trained with.

``FraudModel`` is what serving, promotion and the MLflow pyfunc wrapper all use, so every path that
scores a transaction goes through the same feature code and the same booster file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from fraudops.errors import ModelLoadError
from fraudops.features import Columns, FeatureMismatchError, FeatureSpec, build_features
from fraudops.treeeval import CompiledTrees, UnsupportedModelError

log = logging.getLogger(__name__)

# A model is these two files, logged with the MLflow model and named by the serving manifest.
BOOSTER_ARTIFACT = "booster.ubj"
SPEC_ARTIFACT = "feature_spec.json"


class FraudModel:
    def __init__(
        self, booster: xgb.Booster, spec: FeatureSpec, version: str | None = None, fast_path: bool = False
    ) -> None:
        spec.validate()
        if booster.num_features() != len(spec.feature_names):
            raise FeatureMismatchError(
                f"booster expects {booster.num_features()} features, spec lists {len(spec.feature_names)}"
            )
        self.booster = booster
        self.spec = spec
        self.version = version
        self.compiled: CompiledTrees | None = None
        if fast_path:
            try:
                compiled = CompiledTrees.from_booster(booster)
                compiled.verify(booster)
                self.compiled = compiled
            except UnsupportedModelError as error:
                log.warning("single-row fast path off for version %s: %s", version, error)

    @classmethod
    def from_bytes(
        cls,
        booster_raw: bytes,
        spec_raw: bytes,
        version: str | None = None,
        n_threads: int = 1,
        fast_path: bool = True,
    ) -> FraudModel:
        """Serving scores one request at a time: one thread (no pool hand-off) and the verified
        single-row fast path by default."""
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
            return cls(booster, spec, version, fast_path=fast_path)
        except FeatureMismatchError as error:
            raise ModelLoadError(str(error)) from error

    @classmethod
    def from_dir(cls, directory: Path, version: str | None = None, n_threads: int = 1) -> FraudModel:
        try:
            booster_raw = (directory / BOOSTER_ARTIFACT).read_bytes()
            spec_raw = (directory / SPEC_ARTIFACT).read_bytes()
        except OSError as error:
            raise ModelLoadError(f"model artifact missing: {error}") from error
        return cls.from_bytes(booster_raw, spec_raw, version, n_threads, fast_path=False)

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    def features(self, columns: Columns) -> np.ndarray:
        return build_features(columns, self.spec.feature_names)

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Fraud probability per row of raw columns."""
        matrix = self.features(columns)
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64).reshape(-1)

    def predict_one(self, transaction: Mapping[str, Any]) -> float:
        row = self.features({key: [value] for key, value in transaction.items()})
        if self.compiled is not None and not np.isnan(row).any():
            return self.compiled.predict_one(row[0])
        return float(self.booster.inplace_predict(row)[0])
