"""From the serving manifest to a decision: what the API and the batch Lambda hold and run, without the
xgboost package, scikit-learn or pandas (the API image has none of them).

- ``provider``: ``ModelProvider`` keeps Production in memory (fetched once, re-checked every refresh
  interval, verified), ``served_model`` builds one from a manifest;
- ``served``: ``ServedModel`` = feature spec + compiled trees + XGBoost's C library;
- ``compiled``: the booster's trees as padded numpy arrays (load, save, walk);
- ``treecompiler``: booster -> compiled trees, proved equal to the booster (promotion runs it; xgboost);
- ``native``: XGBoost's C library through ctypes (large batches, models the compiled form cannot express);
- ``treeshap``: exact TreeSHAP contributions from per-leaf tables (numpy);
- ``entities``: the entity aggregates of the rows being scored, from the aggregate store (missing, never an
  error, when it cannot be read);
- ``decide``: the active policy (``PolicyProvider``) applied to scores: outcome, ``decided_by``, reasons
  (``decide_rows``): the one place a request's score becomes a decision.

Imports ``fraudops.core``, ``fraudops.aggregates``, ``fraudops.store``, ``fraudops.model`` and ``fraudops.decisions``.
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "ModelProvider": "fraudops.serving.provider",
    "LoadedModel": "fraudops.serving.provider",
    "served_model": "fraudops.serving.provider",
    "ServedModel": "fraudops.serving.served",
    "PolicyProvider": "fraudops.serving.decide",
    "decide_rows": "fraudops.serving.decide",
    "compile_booster": "fraudops.serving.treecompiler",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
