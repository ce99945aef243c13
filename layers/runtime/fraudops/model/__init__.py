"""What a model is: the one feature definition, the model's files, the metrics it is judged by, and the
booster with its feature spec. Training, promotion and serving all build on it.

- ``features``: THE feature definition (``build_features``, ``FeatureSpec``, ``FEATURE_SETS``); no xgboost;
- ``artifacts``: the names of a model's files (readers need not import xgboost to know them);
- ``metrics``: pure metrics and the paired bootstrap of the AUPRC gain (scikit-learn);
- ``fraud_model``: ``FraudModel`` = booster + ``FeatureSpec`` (xgboost);
- ``pyfunc`` / ``pyfunc_entry``: the registered model's MLflow flavour ("models from code").

Imports only ``fraudops.core`` (the store names a model's files from ``artifacts``).
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "FEATURE_SETS": "fraudops.model.features",
    "FeatureSpec": "fraudops.model.features",
    "build_features": "fraudops.model.features",
    "BOOSTER_ARTIFACT": "fraudops.model.artifacts",
    "SPEC_ARTIFACT": "fraudops.model.artifacts",
    "EvaluationMetrics": "fraudops.model.metrics",
    "evaluate": "fraudops.model.metrics",
    "paired_bootstrap_auprc_gain": "fraudops.model.metrics",
    "FraudModel": "fraudops.model.fraud_model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
