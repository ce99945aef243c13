"""Training as compute and record: the training set's fingerprint and out-of-time split, XGBoost with the
decision bands, and one MLflow run that registers a version. The train stage (``fraudops.stages.train``)
and the Spark job (``fraudops.spark_training``) call it; promotion uses only ``dataset`` (the same split).

- ``dataset``: ``fingerprint``, ``split_out_of_time``, ``holdout_slice`` (training and promotion cut alike);
- ``fit``: pure compute: features -> XGBoost -> threshold and bands -> evaluation (``train_model``);
- ``tracking``: one MLflow run with everything, then a registered version (``log_and_register``).

Imports ``fraudops.core``, ``store``, ``model``, ``monitoring`` (the profile) and ``decisions`` (money bands).
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "fingerprint": "fraudops.training.dataset",
    "split_out_of_time": "fraudops.training.dataset",
    "train_model": "fraudops.training.fit",
    "TrainedModel": "fraudops.training.fit",
    "log_and_register": "fraudops.training.tracking",
    "TrainingResult": "fraudops.training.tracking",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
