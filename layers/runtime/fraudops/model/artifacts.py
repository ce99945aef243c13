"""The names of a model's files, logged with the MLflow model and named by the serving manifest (here, so
that readers such as the API need not import xgboost to know them)."""

BOOSTER_ARTIFACT = "booster.ubj"
SPEC_ARTIFACT = "feature_spec.json"
