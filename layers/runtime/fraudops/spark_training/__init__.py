"""Training past one Lambda: the same features, hyper-parameters, early stopping and metrics as
``fraudops.training.fit``, on Spark (``xgboost.spark.SparkXGBClassifier``), for training windows too large
for the train Lambda's memory (docs/scaling.md).

One entry point, ``train_on_spark``: read the training window's committed Parquet files (the lake's
``transactions``, the same window the train Lambda reads, frozen by the plan step), split out of time,
build the features with ``fraudops.model.features`` inside ``mapInPandas`` (never a second implementation),
train with ``num_workers`` XGBoost workers, evaluate on the holdout, and write the booster, feature spec, profile and
metrics under an output URI. ``register_spark_output`` (the register step) logs and registers that output
exactly as a Lambda-trained model is registered, so promotion and serving do not know the difference.

In AWS the job runs on EMR Serverless (``python -m fraudops.spark_training`` in the job image); on a laptop
``fraudops train --engine spark`` runs the same code on PySpark in local mode
(``fraudops_dev.spark_local``: laptop tooling, so it is not in the images).

Modules: ``plan`` (size the window from the lake, choose the engine, freeze its committed files), ``job``
(``train_on_spark``), ``output`` (what the job writes), ``storage`` (the job's input and output files),
``register`` (the register step, in its own module: it needs MLflow, which the job image does not carry).
Imports ``fraudops.core``, ``store``, ``model``, ``monitoring``, ``lake`` and ``training``.
"""

from fraudops.spark_training.job import train_on_spark
from fraudops.spark_training.output import SparkTrainingOutput, read_output
from fraudops.spark_training.plan import TrainingPlan, TrainingWindow, plan_training, training_window

__all__ = [
    "SparkTrainingOutput",
    "TrainingPlan",
    "TrainingWindow",
    "plan_training",
    "read_output",
    "train_on_spark",
    "training_window",
]
